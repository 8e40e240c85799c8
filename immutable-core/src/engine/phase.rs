//! Where a deployment is: the [`Phase`] enum the engine persists and resumes from. Each phase
//! runs in the file named after it (`plan.rs`, `provision.rs`, `attach.rs`, `await_healthy.rs`,
//! `rollout.rs`, `bake.rs`, `retire.rs`, `roll_back.rs`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a deployment is. Persisted; the engine resumes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// Validate, resolve the image, take the lease, find the serving fleet. Never persisted
    /// as the current phase: the record is created at its end.
    Plan,
    /// Launch the new (green) fleet.
    Provision,
    /// Wait for its instances to run, then attach it as a target taking no traffic.
    Attach,
    /// Wait until `min_healthy` of its instances pass health checks.
    AwaitHealthy,
    /// Walk the strategy's steps (preview, checks, shifts, pauses, approvals) from the
    /// record's step index.
    Rollout,
    /// Keep the old fleet for the fast-rollback window, watching the new one.
    Bake,
    /// Detach and terminate the old fleet, apply image retention.
    Retire,
    /// Finished: the new fleet serves.
    Done,
    /// Routing back to the old fleet and removing the new one.
    RollingBack,
    /// Finished: the old fleet serves, nothing of the new one remains.
    RolledBack,
    /// Finished without a way back: a rollback was needed, but the old fleet had fewer than
    /// `min_healthy` healthy instances, so traffic was left where it is healthiest and both
    /// fleets were kept for the operator (see [`Stranded`](crate::Stranded)).
    Stopped,
}

impl Phase {
    /// Done, rolled back or stopped.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Done | Phase::RolledBack | Phase::Stopped)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Plan => "plan",
            Phase::Provision => "provision",
            Phase::Attach => "attach",
            Phase::AwaitHealthy => "await_healthy",
            Phase::Rollout => "rollout",
            Phase::Bake => "bake",
            Phase::Retire => "retire",
            Phase::Done => "done",
            Phase::RollingBack => "rolling_back",
            Phase::RolledBack => "rolled_back",
            Phase::Stopped => "stopped",
        })
    }
}
