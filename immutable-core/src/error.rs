//! The one error type of the SDK, classified where a provider error is mapped.

use std::time::Duration;

/// A boxed error kept as the source of a provider failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of resource an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ResourceKind {
    /// An image (an AMI on AWS).
    Image,
    /// A fleet of instances.
    Fleet,
    /// One instance.
    Instance,
    /// A routing target (a target group on AWS).
    Target,
    /// A service's entry point (an ALB listener or rule on AWS).
    EntryPoint,
    /// A deployment record.
    Deployment,
    /// A service lease.
    Lease,
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResourceKind::Image => "image",
            ResourceKind::Fleet => "fleet",
            ResourceKind::Instance => "instance",
            ResourceKind::Target => "target",
            ResourceKind::EntryPoint => "entry point",
            ResourceKind::Deployment => "deployment",
            ResourceKind::Lease => "lease",
        })
    }
}

/// Every error the SDK returns.
///
/// Backends map their provider's errors into these variants where the provider error arises,
/// so that the one retry policy ([`crate::RetryPolicy`]) can read [`Error::is_retryable`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The resource does not exist (or no longer exists).
    #[error("{kind} `{id}` not found")]
    NotFound {
        /// What kind of resource was looked up.
        kind: ResourceKind,
        /// The id, name or reference that was looked up.
        id: String,
    },

    /// The resource exists already where the call required it not to.
    #[error("{kind} `{id}` already exists")]
    AlreadyExists {
        /// What kind of resource.
        kind: ResourceKind,
        /// Its id.
        id: String,
    },

    /// Another deployment of the service holds its lease.
    #[error(
        "service `{service}` is locked by {holder} (deployment {deployment}); \
         wait for it to finish, or resume it"
    )]
    Locked {
        /// The service.
        service: String,
        /// Who holds the lease.
        holder: String,
        /// The deployment that holds the lease.
        deployment: String,
    },

    /// The call conflicts with the current state, for example detaching the target that takes
    /// traffic, retiring an image a live fleet uses, or saving a stale record version.
    #[error("conflict: {message}")]
    Conflict {
        /// What conflicts, and what to do about it.
        message: String,
    },

    /// The backend cannot do this at all (it has no preview entry point, say). A capability
    /// missing, not a failure: the engine skips optional steps on this variant only.
    #[error("not supported: {operation}: {message}")]
    NotSupported {
        /// The operation asked for.
        operation: String,
        /// What the backend lacks, and how to provide it if it can be configured.
        message: String,
    },

    /// Retiring an image was refused because live instances still run it.
    #[error("image `{image}` is used by {users} live instance(s); terminate them first")]
    ImageInUse {
        /// The image.
        image: String,
        /// How many live instances run it.
        users: usize,
    },

    /// An operator rollback was refused because the old fleet cannot take the traffic back:
    /// it has fewer healthy instances than the deployment's `min_healthy` (invariant I1).
    /// Nothing was changed.
    #[error(
        "service `{service}`: the old fleet behind target {target} has {healthy} healthy \
         instance(s), {needed} needed, so traffic cannot return to it; the new fleet keeps \
         serving. Redeploy the previous image {image} as a new fleet with \
         `Engine::rollback_with(\"{service}\", RollbackMode::Redeploy)`"
    )]
    BlueUnhealthy {
        /// The service.
        service: String,
        /// The old fleet's target.
        target: String,
        /// The old fleet's image, which a redeployment would launch.
        image: String,
        /// Its healthy instances.
        healthy: usize,
        /// Healthy instances needed before traffic may move to it.
        needed: usize,
    },

    /// Bad input; nothing was created or destroyed.
    #[error("invalid input: `{field}` {reason}")]
    InvalidInput {
        /// The offending field.
        field: String,
        /// What is wrong with it and what would be accepted.
        reason: String,
    },

    /// The resource exists but does not carry this service's ownership tags, so the SDK refuses
    /// to touch it (invariant I6).
    #[error("{kind} `{id}` is not owned by service `{service}`; the SDK will not touch it")]
    NotOwned {
        /// What kind of resource.
        kind: ResourceKind,
        /// Its id.
        id: String,
        /// The service that asked.
        service: String,
    },

    /// The provider throttled the call. Retryable.
    #[error("throttled: {message}")]
    Throttled {
        /// The provider's message.
        message: String,
        /// The provider error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// A passing failure (a 5xx, a dropped connection). Retryable.
    #[error("transient failure: {message}")]
    Transient {
        /// The provider's message.
        message: String,
        /// The provider error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// A wait ran out of time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long the SDK waited.
        after: Duration,
    },

    /// The provider refused the call for a reason the SDK does not classify further. Not
    /// retryable.
    #[error("provider error: {message}")]
    Provider {
        /// The provider's message.
        message: String,
        /// The provider error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// The state store could not read or write a record.
    #[error("state store: {message}")]
    Store {
        /// What failed, naming the file or key.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttling_and_transient_are_retryable() {
        assert!(Error::throttled("slow down").is_retryable());
        assert!(Error::transient("503").is_retryable());
        assert!(!Error::provider("denied").is_retryable());
        assert!(!Error::invalid("capacity", "must be > 0").is_retryable());
        assert!(!Error::not_found(ResourceKind::Fleet, "f-1").is_retryable());
        assert!(!Error::conflict("x").is_retryable());
    }

    #[test]
    fn invalid_input_names_the_field() {
        let e = Error::invalid("capacity", "must be at least 1");
        assert_eq!(
            e.to_string(),
            "invalid input: `capacity` must be at least 1"
        );
    }
}
