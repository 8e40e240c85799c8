//! Why a deployment rolled back (or tried to): reasons as data, prose derived from them.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Phase;
use crate::human::Human;

/// Why a deployment rolled back, or stopped when it could not.
///
/// Stored in the record ([`DeploymentRecord::rollback_cause`](crate::DeploymentRecord)), in
/// [`Outcome`](crate::Outcome) and in the rollback events, so tools match on a variant rather
/// than on text; [`Display`](fmt::Display) gives the operator's sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RollbackCause {
    /// The new fleet's instances did not all reach running before the launch timeout.
    LaunchTimeout {
        /// Instances running when the timeout struck.
        running: usize,
        /// Instances asked for.
        capacity: u32,
        /// The launch timeout.
        #[serde(with = "crate::serde_duration")]
        after: Duration,
    },
    /// The launch settled with fewer running instances than `min_healthy`.
    TooFewRunning {
        /// Instances running.
        running: usize,
        /// Instances asked for.
        capacity: u32,
        /// Instances needed.
        needed: u32,
    },
    /// The new fleet did not reach `min_healthy` healthy instances before the health timeout.
    HealthTimeout {
        /// Healthy instances at the timeout.
        healthy: usize,
        /// Unhealthy instances at the timeout.
        unhealthy: usize,
        /// Instances registered.
        total: usize,
        /// Healthy instances needed.
        needed: u32,
        /// The health timeout.
        #[serde(with = "crate::serde_duration")]
        after: Duration,
    },
    /// The new fleet dropped below `min_healthy` healthy instances after it became healthy
    /// (before a shift, during a pause or during the bake).
    NewFleetUnhealthy {
        /// Healthy instances.
        healthy: usize,
        /// Instances registered.
        total: usize,
        /// Healthy instances needed.
        needed: u32,
        /// The phase it happened in.
        phase: Phase,
    },
    /// A check failed.
    CheckFailed {
        /// The check's name.
        check: String,
        /// Percent of traffic on the new fleet when it ran.
        weight: u32,
        /// What the check said.
        reason: String,
    },
    /// The strategy named a check that is not registered on the engine running it.
    CheckNotRegistered {
        /// The check's name.
        check: String,
    },
    /// The strategy could not be found or failed to choose a step.
    StrategyFailed {
        /// The strategy's error.
        error: String,
    },
    /// The strategy ended its steps without all traffic on the new fleet.
    StrategyIncomplete {
        /// Percent of traffic on the new fleet at its end.
        weight: u32,
    },
    /// A halt covered the service and the engine's [`OnHalt`](crate::OnHalt) says roll back.
    Halted {
        /// Who halted.
        by: String,
        /// Why.
        reason: String,
    },
    /// An operator aborted the deployment (or asked for a rollback while it ran).
    OperatorAbort {
        /// The operator's reason.
        reason: String,
    },
    /// An operator rejected the deployment at an approval gate.
    ApprovalRejected {
        /// The operator's reason.
        reason: String,
    },
    /// No approval came before the gate's timeout, and its policy is to roll back.
    ApprovalOverdue {
        /// How long the gate waited.
        #[serde(with = "crate::serde_duration")]
        waited: Duration,
    },
    /// A backend call failed for good (after its retries) in a phase that rolls back.
    ProviderError {
        /// The phase.
        phase: Phase,
        /// The operation, in words ("launching the new fleet").
        operation: String,
        /// The provider's error.
        error: String,
    },
    /// The record lacks what the phase needs (a new fleet or target); only a damaged or
    /// hand-edited record gets here.
    RecordIncomplete {
        /// What is missing.
        missing: String,
    },
}

impl fmt::Display for RollbackCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RollbackCause::LaunchTimeout { .. }
            | RollbackCause::TooFewRunning { .. }
            | RollbackCause::HealthTimeout { .. }
            | RollbackCause::NewFleetUnhealthy { .. } => self.fmt_fleet(f),
            _ => self.fmt_decision(f),
        }
    }
}

impl RollbackCause {
    /// Causes the new fleet's instances gave.
    fn fmt_fleet(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RollbackCause::LaunchTimeout {
                running,
                capacity,
                after,
            } => write!(
                f,
                "launch timeout: {running} of {capacity} instances running after {}",
                Human(*after)
            ),
            RollbackCause::TooFewRunning {
                running,
                capacity,
                needed,
            } => write!(
                f,
                "only {running} of {capacity} instances of the new fleet are running; \
                 {needed} must be"
            ),
            RollbackCause::HealthTimeout {
                healthy,
                unhealthy,
                total,
                needed,
                after,
            } => write!(
                f,
                "health timeout: {healthy} of {total} instances healthy after {} \
                 ({unhealthy} unhealthy), {needed} needed",
                Human(*after)
            ),
            RollbackCause::NewFleetUnhealthy {
                healthy,
                total,
                needed,
                phase,
            } => write!(
                f,
                "the new fleet has {healthy} of {total} instances healthy in phase {phase}, \
                 {needed} needed"
            ),
            other => other.fmt_decision(f),
        }
    }

    /// Causes a check, the strategy, an operator or a provider gave.
    fn fmt_decision(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RollbackCause::CheckFailed {
                check,
                weight,
                reason,
            } => write!(
                f,
                "check `{check}` failed with {weight} % of traffic on the new fleet: {reason}"
            ),
            RollbackCause::CheckNotRegistered { check } => {
                write!(f, "check `{check}` is not registered on this engine")
            }
            RollbackCause::StrategyFailed { error } => write!(f, "the strategy failed: {error}"),
            RollbackCause::StrategyIncomplete { weight } => write!(
                f,
                "the strategy ended with {weight} % of traffic on the new fleet, not 100 %"
            ),
            RollbackCause::OperatorAbort { reason } => {
                write!(f, "aborted by the operator: {reason}")
            }
            RollbackCause::Halted { by, reason } => write!(f, "halted by {by}: {reason}"),
            RollbackCause::ApprovalRejected { reason } => {
                write!(f, "rejected at approval: {reason}")
            }
            RollbackCause::ApprovalOverdue { waited } => {
                write!(f, "approval not given within {}", Human(*waited))
            }
            RollbackCause::ProviderError {
                phase,
                operation,
                error,
            } => write!(f, "{operation} failed in phase {phase}: {error}"),
            RollbackCause::RecordIncomplete { missing } => {
                write!(f, "the record has no {missing}")
            }
            other => write!(f, "{other:?}"),
        }
    }
}

/// What a deployment does when its old fleet drops below `min_healthy` during the bake, so
/// that the fast-rollback window is lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnBlueLost {
    /// Go on baking the new fleet for the rest of the bake time. A rollback later re-checks
    /// the old fleet first and routes back only if it has recovered.
    #[default]
    KeepBaking,
    /// End the bake at once and retire the old fleet: it can no longer serve a rollback.
    RetireBlue,
}

/// How the old fleet stood when a rollback could not route traffic back to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stranded {
    /// The old fleet's healthy instances when the rollback looked.
    pub blue_healthy: usize,
    /// The new fleet's healthy instances then.
    pub green_healthy: usize,
    /// Healthy instances a target needs before traffic may move to it.
    pub needed: u32,
    /// Percent of traffic left on the new fleet.
    pub weight: u32,
}

impl fmt::Display for Stranded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the old fleet has {} healthy instance(s), {} needed, so traffic stays where it \
             is healthiest: {} % on the new fleet ({} healthy); both fleets are kept",
            self.blue_healthy, self.needed, self.weight, self.green_healthy
        )
    }
}
