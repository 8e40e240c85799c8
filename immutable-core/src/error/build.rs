//! What every error answers (retryable? not found?) and the constructors backends use.

use super::{BoxError, Error, ResourceKind};

impl Error {
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
        }
    }

    /// Builds [`Error::InvalidInput`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
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
