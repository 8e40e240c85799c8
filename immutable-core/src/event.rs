//! Typed events of a deployment, delivered to subscribers and to tracing.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

mod text;

use crate::{
    CheckOutcome, DeploymentId, FleetId, HaltScope, ImageId, OnBlueLost, OnHalt, Phase,
    RollbackCause, Routing, ServiceName, Step, Stranded, TargetId,
};

/// Something that happened in a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Its service.
    pub service: ServiceName,
    /// When, on the engine's clock (virtual under a paused tokio clock).
    pub at: SystemTime,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A deployment was planned and its record created.
    Planned {
        /// The image to deploy.
        image: ImageId,
        /// Instances to launch.
        capacity: u32,
        /// The fleet serving now, if any.
        blue: Option<FleetId>,
    },
    /// The deployment entered a phase.
    PhaseEntered {
        /// The phase.
        phase: Phase,
    },
    /// The new fleet was launched.
    FleetLaunched {
        /// The fleet.
        fleet: FleetId,
        /// How many instances it has.
        instances: usize,
    },
    /// The new fleet was attached to the entry point.
    TargetAttached {
        /// The target.
        target: TargetId,
    },
    /// The count of healthy instances of a target changed.
    HealthProgress {
        /// The target.
        target: TargetId,
        /// Healthy instances.
        healthy: usize,
        /// Healthy instances needed.
        needed: usize,
        /// Instances registered.
        total: usize,
    },
    /// A strategy step started.
    StepStarted {
        /// Its index in the strategy.
        index: usize,
        /// The step.
        step: Step,
    },
    /// A strategy step finished.
    StepFinished {
        /// Its index.
        index: usize,
        /// How it went, when there is more to say.
        note: Option<String>,
    },
    /// The preview entry point now routes to the new fleet.
    PreviewRouted {
        /// The new fleet's target.
        target: TargetId,
    },
    /// A preview step found no preview entry point and was skipped.
    PreviewSkipped {
        /// What the router said.
        reason: String,
    },
    /// A check ran.
    CheckResult {
        /// The check's name.
        name: String,
        /// Its outcome.
        outcome: CheckOutcome,
    },
    /// The deployment waits for approval through its
    /// [`DeploymentHandle`](crate::DeploymentHandle).
    ApprovalRequested {
        /// The approval step's index.
        index: usize,
        /// How long before its timeout policy applies.
        #[serde(with = "crate::serde_duration")]
        timeout: Duration,
    },
    /// An approval was given.
    Approved,
    /// The deployment was rejected at an approval gate.
    Rejected {
        /// Why.
        reason: String,
    },
    /// An approval timed out and the policy is to keep waiting.
    ApprovalOverdue {
        /// How long it has waited.
        #[serde(with = "crate::serde_duration")]
        waited: Duration,
    },
    /// An operator promoted the deployment: remaining waits are skipped.
    Promoted,
    /// The service's routing was replaced.
    WeightsSet {
        /// The new split.
        routing: Routing,
    },
    /// A retryable error; the call will be repeated.
    Retrying {
        /// The backend operation.
        operation: String,
        /// The attempt that failed (from 1).
        attempt: u32,
        /// The error.
        error: String,
        /// The wait before the next attempt.
        #[serde(with = "crate::serde_duration")]
        backoff: Duration,
    },
    /// A rollback began.
    RollbackStarted {
        /// Why.
        cause: RollbackCause,
    },
    /// The old fleet dropped below `min_healthy` during the bake: a rollback can no longer
    /// route traffic back to it (unless it recovers). Emitted once per deployment.
    RollbackWindowLost {
        /// The old fleet's target.
        target: TargetId,
        /// Its healthy instances.
        healthy: usize,
        /// Healthy instances needed.
        needed: u32,
        /// What the deployment does about it.
        policy: OnBlueLost,
    },
    /// The old fleet's target was detached.
    TargetDetached {
        /// The target.
        target: TargetId,
    },
    /// A fleet was terminated.
    FleetTerminated {
        /// The fleet.
        fleet: FleetId,
    },
    /// An image was retired by the retention policy.
    ImageRetired {
        /// The image.
        image: ImageId,
    },
    /// The rollback finished: the old fleet serves, nothing of the new one remains.
    RolledBack {
        /// Why it rolled back.
        cause: RollbackCause,
    },
    /// A rollback could not route traffic back, because the old fleet had fewer than
    /// `min_healthy` healthy instances: the deployment stopped with traffic where it is
    /// healthiest and both fleets kept ([`Phase::Stopped`]).
    Stopped {
        /// Why the rollback was needed.
        cause: RollbackCause,
        /// How the fleets stood.
        stranded: Stranded,
    },
    /// The deployment finished: the new fleet serves, the old one is retired.
    Completed {
        /// The fleet now serving.
        fleet: FleetId,
        /// Its image.
        image: ImageId,
    },
    /// An expired lease of another holder was taken over.
    LeaseTakenOver {
        /// The holder whose lease expired.
        previous_holder: String,
        /// The deployment it was running.
        previous_deployment: DeploymentId,
    },
    /// A halt covers the service: the deployment stops advancing, and holds or rolls back as
    /// `policy` says.
    Halted {
        /// What the halt covers.
        scope: HaltScope,
        /// Who halted.
        by: String,
        /// Why.
        reason: String,
        /// What the deployment does about it.
        policy: OnHalt,
    },
    /// The halt a held deployment waited on was lifted: it goes on.
    HaltLifted {
        /// What the halt covered.
        scope: HaltScope,
    },
}

type Subscriber = Arc<dyn Fn(&Event) + Send + Sync>;

/// Fans events out to subscribers, in order, synchronously.
#[derive(Clone, Default)]
pub(crate) struct EventBus {
    /// Copy-on-write, so a subscriber may subscribe another without deadlocking.
    subscribers: Arc<RwLock<Arc<Vec<Subscriber>>>>,
}

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.subscribers.read().map(|s| s.len()).unwrap_or(0);
        f.debug_struct("EventBus").field("subscribers", &n).finish()
    }
}

impl EventBus {
    pub(crate) fn subscribe(&self, f: Subscriber) {
        let mut guard = self.subscribers.write().unwrap_or_else(|e| e.into_inner());
        let mut next = Vec::clone(&guard);
        next.push(f);
        *guard = Arc::new(next);
    }

    pub(crate) fn emit(&self, event: &Event) {
        tracing::info!(
            deployment = %event.deployment,
            service = %event.service,
            "{}",
            event.kind
        );
        let subscribers = Arc::clone(&self.subscribers.read().unwrap_or_else(|e| e.into_inner()));
        for s in subscribers.iter() {
            s(event);
        }
    }
}
