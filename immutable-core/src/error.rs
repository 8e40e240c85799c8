//! The one error type of the SDK, classified where a provider error is mapped.

use std::time::Duration;

mod build;
mod reasons;
pub use build::ErrorCategory;
pub use reasons::{AdoptRefusal, NoRollback, ResourceKind};

use crate::{DeploymentId, Halt, ImageId, Phase, Routing, ServiceName, TargetId, WaveId};

/// A boxed error kept as the source of a provider failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the SDK returns.
///
/// Backends map their provider's errors into these variants where the provider error arises,
/// so that the one retry policy ([`crate::RetryPolicy`]) can read [`Error::is_retryable`], and
/// keep the provider's error (with its request id) as [`source`](std::error::Error::source).
/// [`Error::category`] tells the engine's refusals (nothing was done; a person decides) from
/// what a backend or the store answered.
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
        /// The provider's error, when a backend mapped one (with its request id, where the
        /// provider gives one).
        #[source]
        source: Option<BoxError>,
    },

    /// The resource exists already where the call required it not to.
    #[error("{kind} `{id}` already exists")]
    AlreadyExists {
        /// What kind of resource.
        kind: ResourceKind,
        /// Its id.
        id: String,
        /// The provider's error, when a backend mapped one (with its request id, where the
        /// provider gives one).
        #[source]
        source: Option<BoxError>,
    },

    /// Another deployment of the service holds its lease.
    #[error(
        "service `{service}` is locked by {holder} (deployment {deployment}); \
         wait for it to finish, or resume it"
    )]
    Locked {
        /// The service.
        service: ServiceName,
        /// Who holds the lease.
        holder: String,
        /// The deployment that holds the lease.
        deployment: DeploymentId,
    },

    /// A record was saved from a stale copy: another engine advanced it meanwhile.
    #[error(
        "deployment {deployment} is at version {stored} in the store, but this copy is at \
         version {ours}; another engine is advancing it"
    )]
    StaleVersion {
        /// The deployment.
        deployment: DeploymentId,
        /// The version in the store.
        stored: u64,
        /// The version of the copy being saved.
        ours: u64,
    },

    /// The service has a deployment that has not finished; it must be resumed (or finish)
    /// before another starts.
    #[error(
        "deployment {deployment} of service `{service}` is unfinished (phase {phase}); resume \
         it with Engine::resume before deploying again"
    )]
    UnfinishedDeployment {
        /// The service.
        service: ServiceName,
        /// The unfinished deployment.
        deployment: DeploymentId,
        /// Where it stopped.
        phase: Phase,
    },

    /// The service's traffic is split between several targets, so there is no one fleet to
    /// replace.
    #[error(
        "traffic of service `{service}` is split ({routing}); an earlier deployment did not \
         finish: resume it, or route all traffic to one target first"
    )]
    TrafficSplit {
        /// The service.
        service: ServiceName,
        /// The split, as read.
        routing: Routing,
    },

    /// The service's entry point routes to a target that lacks its ownership tags: the SDK
    /// will not replace what it does not own (I6).
    #[error(
        "service `{service}` routes to target {target}, which lacks the service's ownership \
         tags; the SDK will not replace what it does not own. To hand the running fleet to the \
         SDK, adopt it: preview with Engine::adopt and AdoptMode::DryRun, then apply with \
         AdoptMode::Apply"
    )]
    ServingTargetNotOwned {
        /// The service.
        service: ServiceName,
        /// The target it routes to.
        target: TargetId,
    },

    /// [`Engine::adopt`](crate::Engine::adopt) will not adopt what serves the service; nothing
    /// was changed.
    #[error("service `{service}`: nothing adopted: {refusal}")]
    AdoptionRefused {
        /// The service.
        service: ServiceName,
        /// Why.
        refusal: AdoptRefusal,
    },

    /// A target that takes traffic cannot be detached (I2).
    #[error(
        "target {target} takes traffic of service `{service}`; route it elsewhere before \
         detaching it"
    )]
    TargetServing {
        /// The service.
        service: ServiceName,
        /// The target.
        target: TargetId,
    },

    /// A command or a wait was addressed to a deployment that has finished.
    #[error("deployment {deployment} has finished (phase {phase})")]
    DeploymentFinished {
        /// The deployment.
        deployment: DeploymentId,
        /// How it ended.
        phase: Phase,
    },

    /// A rollback was asked for, but there is nothing to go back to.
    #[error("service `{service}` has nothing to roll back to: {reason}")]
    NothingToRollBack {
        /// The service.
        service: ServiceName,
        /// Why.
        reason: NoRollback,
    },

    /// The deployment runs in another process (or in none): a command that needs the running
    /// deployment cannot reach it from here.
    #[error(
        "deployment {deployment} is unfinished (phase {phase}) but does not run in this \
         engine; resume it here first"
    )]
    NotRunningHere {
        /// The deployment.
        deployment: DeploymentId,
        /// Its phase, as stored.
        phase: Phase,
    },

    /// The run was suspended at a safe point (Ctrl-C in a deploy tool, say): the record is
    /// saved, the lease released. Resume it with `Engine::resume`.
    #[error(
        "deployment {deployment} was suspended in phase {phase}; resume it with Engine::resume"
    )]
    Suspended {
        /// The deployment.
        deployment: DeploymentId,
        /// The phase it stopped in.
        phase: Phase,
    },

    /// A halt covers the service: nothing new starts until it is lifted
    /// ([`Engine::lift_halt`](crate::Engine::lift_halt)).
    #[error("service `{service}` is halted: {halt}; lift the halt to deploy again")]
    Halted {
        /// The service refused.
        service: ServiceName,
        /// The halt: what it covers, who set it, why and when.
        halt: Box<Halt>,
    },

    /// A wave plan's record was saved from a stale copy: another runner advanced it meanwhile.
    #[error(
        "wave plan {wave} is at version {stored} in the store, but this copy is at version \
         {ours}; another runner is advancing it"
    )]
    StaleWave {
        /// The wave plan.
        wave: WaveId,
        /// The version in the store.
        stored: u64,
        /// The version of the copy being saved.
        ours: u64,
    },

    /// The deployment is in a phase where the operation cannot apply.
    #[error("deployment {deployment} is in phase {phase}: {reason}")]
    WrongPhase {
        /// The deployment.
        deployment: DeploymentId,
        /// Its phase.
        phase: Phase,
        /// Why the operation does not apply there, and what does.
        reason: String,
    },

    /// The call conflicts with the provider's current state (a resource in use, say), for a
    /// reason the SDK does not classify further.
    #[error("conflict: {message}")]
    Conflict {
        /// What conflicts, and what to do about it.
        message: String,
        /// The provider's error, when a backend mapped one (with its request id, where the
        /// provider gives one).
        #[source]
        source: Option<BoxError>,
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
        service: ServiceName,
        /// The old fleet's target.
        target: TargetId,
        /// The old fleet's image, which a redeployment would launch.
        image: ImageId,
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
        /// The provider's error, when a backend mapped one (with its request id, where the
        /// provider gives one).
        #[source]
        source: Option<BoxError>,
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
    #[error("timed out after {} waiting for {what}", crate::human::Human(*after))]
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

#[cfg(test)]
mod tests;
