//! What every error answers (retryable? not found?) and the constructors backends use.

use super::{BoxError, Error, ResourceKind};

/// What kind of answer an [`Error`] is: see [`Error::category`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCategory {
    /// Bad input, refused before anything was created or destroyed.
    Input,
    /// The engine refused: the state of the service (locked, halted, unfinished, split
    /// traffic, a fleet it does not own, a finished deployment, an old fleet too unhealthy to
    /// take traffic back) does not allow it. Nothing was done; a person decides what next.
    Refused,
    /// A backend answered: not found, already exists, in use, not supported, throttled,
    /// transient, timed out, or a provider error. The provider's own error is the
    /// [`source`](std::error::Error::source), when there is one.
    Backend,
    /// The state store could not read or write, or another engine wrote first.
    Store,
    /// The run was suspended on request; its record is saved for a resume.
    Suspended,
}

impl Error {
    /// What kind of answer this is: the engine's refusal, bad input, a backend's or the
    /// store's failure.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Error::InvalidInput { .. } => ErrorCategory::Input,
            Error::Locked { .. }
            | Error::UnfinishedDeployment { .. }
            | Error::TrafficSplit { .. }
            | Error::ServingTargetNotOwned { .. }
            | Error::AdoptionRefused { .. }
            | Error::TargetServing { .. }
            | Error::DeploymentFinished { .. }
            | Error::NothingToRollBack { .. }
            | Error::NotRunningHere { .. }
            | Error::Halted { .. }
            | Error::WrongPhase { .. }
            | Error::BlueUnhealthy { .. }
            | Error::NotOwned { .. } => ErrorCategory::Refused,
            Error::StaleVersion { .. } | Error::StaleWave { .. } | Error::Store { .. } => {
                ErrorCategory::Store
            }
            Error::Suspended { .. } => ErrorCategory::Suspended,
            Error::NotFound { .. }
            | Error::AlreadyExists { .. }
            | Error::Conflict { .. }
            | Error::NotSupported { .. }
            | Error::ImageInUse { .. }
            | Error::Throttled { .. }
            | Error::Transient { .. }
            | Error::Timeout { .. }
            | Error::Provider { .. } => ErrorCategory::Backend,
        }
    }

    /// The same error with `source` as its [`source`](std::error::Error::source): what a
    /// backend mapped it from. Variants that carry no source are returned unchanged.
    #[must_use]
    pub fn with_source(mut self, cause: impl Into<BoxError>) -> Self {
        match &mut self {
            Error::NotFound { source, .. }
            | Error::AlreadyExists { source, .. }
            | Error::InvalidInput { source, .. }
            | Error::Conflict { source, .. }
            | Error::Throttled { source, .. }
            | Error::Transient { source, .. }
            | Error::Provider { source, .. }
            | Error::Store { source, .. } => *source = Some(cause.into()),
            _ => {}
        }
        self
    }

    /// Whether the same call may succeed if it is simply repeated later.
    ///
    /// Throttling and transient failures are retryable; everything else is not.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Throttled { .. } | Error::Transient { .. })
    }

    /// Whether this is [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Builds [`Error::NotFound`].
    pub fn not_found(kind: ResourceKind, id: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            id: id.into(),
            source: None,
        }
    }

    /// Builds [`Error::AlreadyExists`].
    pub fn already_exists(kind: ResourceKind, id: impl Into<String>) -> Self {
        Error::AlreadyExists {
            kind,
            id: id.into(),
            source: None,
        }
    }

    /// Builds [`Error::InvalidInput`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// Builds [`Error::NotSupported`].
    pub fn not_supported(operation: impl Into<String>, message: impl Into<String>) -> Self {
        Error::NotSupported {
            operation: operation.into(),
            message: message.into(),
        }
    }

    /// Builds [`Error::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict {
            message: message.into(),
            source: None,
        }
    }

    /// Builds [`Error::Provider`] without a source.
    pub fn provider(message: impl Into<String>) -> Self {
        Error::Provider {
            message: message.into(),
            source: None,
        }
    }

    /// Builds [`Error::Throttled`] without a source.
    pub fn throttled(message: impl Into<String>) -> Self {
        Error::Throttled {
            message: message.into(),
            source: None,
        }
    }

    /// Builds [`Error::Transient`] without a source.
    pub fn transient(message: impl Into<String>) -> Self {
        Error::Transient {
            message: message.into(),
            source: None,
        }
    }

    /// Builds [`Error::Store`].
    pub fn store(message: impl Into<String>, source: impl Into<Option<BoxError>>) -> Self {
        Error::Store {
            message: message.into(),
            source: source.into(),
        }
    }
}
