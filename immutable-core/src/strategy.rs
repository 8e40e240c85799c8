//! Rollout strategies: step lists as data, and the [`Strategy`] trait for strategies that
//! choose their next step from observed progress.
//!
//! The engine asks a strategy for one step at a time, records the step before running it and
//! records its outcome after, so a resumed deployment continues at the same step.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

mod steps;
pub use steps::Steps;

use crate::Result;

/// What the engine does when an approval is not given in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnTimeout {
    /// Roll the deployment back.
    RollBack,
    /// Say so in an event, and keep waiting.
    KeepWaiting,
}

/// One step of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// Send `percent` of traffic to the new fleet and the rest to the old one, in one routing
    /// call. The engine first checks that the new fleet has `min_healthy` healthy instances.
    Shift {
        /// 1 to 100.
        percent: u32,
    },
    /// Wait, watching the new fleet's health; a drop below `min_healthy` rolls back.
    /// [`DeploymentHandle::promote`](crate::DeploymentHandle::promote) ends it early.
    Pause {
        /// How long.
        #[serde(with = "crate::serde_duration")]
        duration: Duration,
    },
    /// Run the named checks (registered on the engine); any failure rolls back.
    Checks {
        /// Check names.
        names: Vec<String>,
    },
    /// Wait until the embedding tool approves or rejects through a
    /// [`DeploymentHandle`](crate::DeploymentHandle).
    Approval {
        /// How long to wait before `on_timeout` applies.
        #[serde(with = "crate::serde_duration")]
        timeout: Duration,
        /// What happens then.
        on_timeout: OnTimeout,
    },
    /// Point the service's preview entry point at the new fleet, so it can be tested before it
    /// takes live traffic. Skipped, with an event, when the router has no preview entry point.
    Preview,
}

impl std::fmt::Display for Step {
    /// One line: `shift 10 %`, `pause 5m`, `checks error-rate`, `approval (timeout 1h)`,
    /// `preview`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Shift { percent } => write!(f, "shift {percent} %"),
            Step::Pause { duration } => write!(f, "pause {}", crate::human::Human(*duration)),
            Step::Checks { names } => write!(f, "checks {}", names.join(", ")),
            Step::Approval { timeout, .. } => {
                write!(f, "approval (timeout {})", crate::human::Human(*timeout))
            }
            Step::Preview => f.write_str("preview"),
        }
    }
}

impl Step {
    /// A shift to `percent`.
    pub fn shift(percent: u32) -> Self {
        Step::Shift { percent }
    }

    /// A pause.
    pub fn pause(duration: Duration) -> Self {
        Step::Pause { duration }
    }

    /// Named checks.
    pub fn checks<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Step::Checks {
            names: names.into_iter().map(Into::into).collect(),
        }
    }

    /// An approval gate.
    pub fn approval(timeout: Duration, on_timeout: OnTimeout) -> Self {
        Step::Approval {
            timeout,
            on_timeout,
        }
    }
}

/// A step the deployment has finished, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step.
    pub step: Step,
    /// A note on how it went (check results, "skipped", "promoted").
    pub note: Option<String>,
}

/// What a strategy sees when it chooses the next step.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Progress<'a> {
    /// Index of the step to choose (steps taken so far).
    pub index: usize,
    /// Percent of traffic on the new fleet now.
    pub weight: u32,
    /// The steps taken, in order.
    pub taken: &'a [StepRecord],
    /// Healthy instances of the new fleet, as last read.
    pub healthy: usize,
    /// Instances registered behind the new fleet's target, as last read.
    pub registered: usize,
    /// Time since the rollout began.
    pub elapsed: Duration,
}

/// Chooses a deployment's steps.
///
/// The engine calls [`next_step`](Strategy::next_step) once per step, persists the answer, runs
/// it, and asks again; `Ok(None)` ends the rollout, which must by then have 100 % on the new
/// fleet or the deployment rolls back. For a deployment to resume correctly after a crash, the
/// answer should depend only on the [`Progress`] (and on what the strategy itself can observe).
///
/// Step lists ([`Steps`]) implement it; implement it yourself to decide from observed
/// progress, for example an error budget. Register custom strategies by name with
/// [`EngineBuilder::strategy`](crate::EngineBuilder::strategy), so a fresh engine resuming the
/// deployment finds them again.
#[async_trait]
pub trait Strategy: Debug + Send + Sync + 'static {
    /// The next step, or `None` when the rollout is complete.
    async fn next_step(&self, progress: &Progress<'_>) -> Result<Option<Step>>;
}

/// How a deployment names its strategy, as persisted in its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StrategySpec {
    /// A step list, stored whole.
    Steps(Steps),
    /// A strategy registered on the engine under this name.
    Named(String),
}

impl StrategySpec {
    /// A strategy registered with [`EngineBuilder::strategy`](crate::EngineBuilder::strategy).
    pub fn named(name: impl Into<String>) -> Self {
        StrategySpec::Named(name.into())
    }
}

impl From<Steps> for StrategySpec {
    fn from(steps: Steps) -> Self {
        StrategySpec::Steps(steps)
    }
}

impl Default for StrategySpec {
    fn default() -> Self {
        StrategySpec::Steps(Steps::blue_green())
    }
}
