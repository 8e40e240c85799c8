//! The wave plan's record, as the [`StateStore`](crate::StateStore) keeps it: the validated
//! plan, where the runner stands, what each deployment did, and why it stopped.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::plan::WavePlanSpec;
use crate::service::string_id;
use crate::{DeploymentId, Halt, Outcome, RollbackCause};

string_id!(
    /// A wave plan's id: a ULID, sortable by creation time.
    WaveId
);

impl WaveId {
    /// A fresh, unique id.
    pub fn generate() -> Self {
        WaveId::new(DeploymentId::generate().as_str())
    }
}

/// Where a wave plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WaveState {
    /// Deploying the current wave.
    Running,
    /// The current wave is done; baking before the next.
    Baking,
    /// A failure stopped the plan; rolling back the deployments already done, newest first.
    RollingBack,
    /// A halt covered the service: no further wave starts. Resumable once it is lifted.
    Halted,
    /// Every wave succeeded.
    Done,
    /// A failure stopped the plan: the rest did not start, what was done stays (the policy
    /// was [`OnWaveFailure::HaltRest`](super::OnWaveFailure::HaltRest)).
    Failed,
    /// A failure stopped the plan and what was done was rolled back.
    RolledBack,
}

impl WaveState {
    /// Whether the plan has ended (a halted plan has not: it resumes once the halt is lifted).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            WaveState::Done | WaveState::Failed | WaveState::RolledBack
        )
    }
}

impl fmt::Display for WaveState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaveState::Running => "running",
            WaveState::Baking => "baking",
            WaveState::RollingBack => "rolling back",
            WaveState::Halted => "halted",
            WaveState::Done => "done",
            WaveState::Failed => "failed",
            WaveState::RolledBack => "rolled back",
        })
    }
}

/// How one deployment of a wave (or its rollback) ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TargetOutcome {
    /// The new fleet serves.
    Succeeded,
    /// The deployment rolled back.
    RolledBack {
        /// Why.
        cause: RollbackCause,
    },
    /// The deployment stopped without a way back.
    Stopped {
        /// Why it needed one.
        cause: RollbackCause,
    },
    /// The deployment could not run (refused, or its store failed for good).
    Failed {
        /// The error.
        error: String,
    },
    /// It never started: the plan failed first.
    Skipped,
    /// A rollback found nothing to go back to (the wave deployed the service's first fleet
    /// there).
    NothingToRollBack,
}

impl TargetOutcome {
    /// Whether it succeeded.
    pub fn succeeded(&self) -> bool {
        *self == TargetOutcome::Succeeded
    }
}

impl From<Outcome> for TargetOutcome {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Succeeded => TargetOutcome::Succeeded,
            Outcome::RolledBack { cause } => TargetOutcome::RolledBack { cause },
            Outcome::Stopped { cause, .. } => TargetOutcome::Stopped { cause },
        }
    }
}

impl fmt::Display for TargetOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetOutcome::Succeeded => f.write_str("succeeded"),
            TargetOutcome::RolledBack { cause } => write!(f, "rolled back: {cause}"),
            TargetOutcome::Stopped { cause } => write!(f, "stopped without a way back: {cause}"),
            TargetOutcome::Failed { error } => write!(f, "failed: {error}"),
            TargetOutcome::Skipped => f.write_str("not started: the plan failed first"),
            TargetOutcome::NothingToRollBack => f.write_str("nothing to roll back to"),
        }
    }
}

/// One deployment of a wave: the engine it runs on, its id (recorded before it starts, so a
/// crashed runner resumes it rather than starting another), and how it and its rollback ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TargetRun {
    /// The engine's name in the runner.
    pub engine: String,
    /// The deployment, once started.
    pub deployment: Option<DeploymentId>,
    /// How it ended.
    pub outcome: Option<TargetOutcome>,
    /// The redeployment of the previous image that rolls it back, once started.
    pub rollback: Option<DeploymentId>,
    /// How the rollback ended.
    pub rollback_outcome: Option<TargetOutcome>,
}

impl TargetRun {
    pub(super) fn new(engine: &str) -> Self {
        TargetRun {
            engine: engine.to_owned(),
            deployment: None,
            outcome: None,
            rollback: None,
            rollback_outcome: None,
        }
    }

    /// Whether its deployment succeeded and has not been rolled back.
    pub fn stands(&self) -> bool {
        self.outcome.as_ref().is_some_and(TargetOutcome::succeeded)
            && self.rollback_outcome.is_none()
    }
}

/// Why a wave plan stopped short: reasons as data, prose from [`Display`](fmt::Display).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "failure", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WaveFailure {
    /// A deployment of a wave did not succeed.
    Deployment {
        /// The wave's index in the plan, from 0 (texts number waves from 1).
        wave: usize,
        /// The engine it ran on.
        engine: String,
        /// How it ended.
        outcome: TargetOutcome,
    },
    /// A bake gate's check failed on a deployment of the wave just done.
    Check {
        /// The wave's index in the plan, from 0 (texts number waves from 1).
        wave: usize,
        /// The engine of the deployment checked.
        engine: String,
        /// The check's name.
        check: String,
        /// What it said.
        reason: String,
    },
}

impl fmt::Display for WaveFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaveFailure::Deployment {
                wave,
                engine,
                outcome,
            } => write!(f, "wave {}: the deployment on {engine} {outcome}", wave + 1),
            WaveFailure::Check {
                wave,
                engine,
                check,
                reason,
            } => write!(
                f,
                "wave {}: check `{check}` failed on {engine} during the bake: {reason}",
                wave + 1
            ),
        }
    }
}

/// A state the plan entered, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveHistoryEntry {
    /// When.
    pub at: SystemTime,
    /// The state entered.
    pub state: WaveState,
    /// The wave it stood at.
    pub wave: usize,
    /// Why, when there is more to say.
    pub note: Option<String>,
}

/// A wave plan as persisted: saved after every change, so a crashed runner resumes it with
/// [`WaveRunner::resume`](super::WaveRunner::resume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WaveRecord {
    /// The plan's id.
    pub id: WaveId,
    /// The store's version of this record: 0 before it is first saved.
    pub version: u64,
    /// The validated plan.
    pub plan: WavePlanSpec,
    /// Where it stands.
    pub state: WaveState,
    /// The current wave's index.
    pub wave: usize,
    /// When the current bake ends.
    pub bake_until: Option<SystemTime>,
    /// Gate rounds passed in the current bake.
    pub bake_passes: u32,
    /// Per wave, per deployment: what ran and how it ended.
    pub targets: Vec<Vec<TargetRun>>,
    /// Why it stopped short.
    pub failure: Option<WaveFailure>,
    /// The halt that stopped it, if one did.
    pub halt: Option<Halt>,
    /// When it was created.
    pub created_at: SystemTime,
    /// Every state entered.
    pub history: Vec<WaveHistoryEntry>,
}

impl WaveRecord {
    pub(super) fn new(id: WaveId, plan: WavePlanSpec, now: SystemTime) -> Self {
        let targets = plan
            .waves
            .iter()
            .map(|w| {
                w.targets
                    .iter()
                    .map(|t| TargetRun::new(&t.engine))
                    .collect()
            })
            .collect();
        let mut rec = WaveRecord {
            id,
            version: 0,
            plan,
            state: WaveState::Running,
            wave: 0,
            bake_until: None,
            bake_passes: 0,
            targets,
            failure: None,
            halt: None,
            created_at: now,
            history: Vec::new(),
        };
        rec.enter(WaveState::Running, now, None);
        rec
    }

    /// Enters `state` at `now`.
    pub(super) fn enter(&mut self, state: WaveState, now: SystemTime, note: Option<String>) {
        self.state = state;
        self.history.push(WaveHistoryEntry {
            at: now,
            state,
            wave: self.wave,
            note,
        });
    }

    /// The deployments that succeeded and stand, newest first (later waves first, and within
    /// a wave the later targets first): the order a rollback takes.
    pub fn standing_newest_first(&self) -> Vec<(usize, usize)> {
        let mut standing = Vec::new();
        for (w, runs) in self.targets.iter().enumerate() {
            for (t, run) in runs.iter().enumerate() {
                if run.stands() {
                    standing.push((w, t));
                }
            }
        }
        standing.reverse();
        standing
    }
}

/// The compare-and-swap rule of [`WaveStore::save_wave`](crate::WaveStore::save_wave),
/// as [`check_version`](crate::check_version) states it for deployments.
///
/// # Errors
/// [`Error::AlreadyExists`](crate::Error::AlreadyExists) for a second first save,
/// [`Error::NotFound`](crate::Error::NotFound) for a later save of an unknown plan,
/// [`Error::StaleWave`](crate::Error::StaleWave) when the versions differ.
pub fn check_wave_version(stored: Option<u64>, record: &WaveRecord) -> crate::Result<()> {
    use crate::{Error, ResourceKind};
    match stored {
        None if record.version != 0 => {
            Err(Error::not_found(ResourceKind::WavePlan, record.id.as_str()))
        }
        Some(_) if record.version == 0 => Err(Error::already_exists(
            ResourceKind::WavePlan,
            record.id.to_string(),
        )),
        Some(v) if v != record.version => Err(Error::StaleWave {
            wave: record.id.clone(),
            stored: v,
            ours: record.version,
        }),
        _ => Ok(()),
    }
}
