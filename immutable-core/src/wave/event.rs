//! What a wave plan reports as it goes: [`WaveEvent`]s to subscribers and to tracing.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::record::{TargetOutcome, WaveFailure, WaveId, WaveState};
use crate::{DeploymentId, Halt};

/// Something that happened in a wave plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaveEvent {
    /// The plan.
    pub plan: WaveId,
    /// When, on the runner's clock.
    pub at: SystemTime,
    /// What happened.
    pub kind: WaveEventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WaveEventKind {
    /// The plan entered a state.
    StateEntered {
        /// The state.
        state: WaveState,
        /// The wave it stands at.
        wave: usize,
    },
    /// A wave started its deployments.
    WaveStarted {
        /// The wave's index in the plan, from 0 (texts number waves from 1).
        wave: usize,
        /// Its name.
        name: String,
        /// Its engines.
        engines: Vec<String>,
    },
    /// A deployment of a wave started (or resumed).
    DeploymentStarted {
        /// The wave's index in the plan, from 0 (texts number waves from 1).
        wave: usize,
        /// The engine.
        engine: String,
        /// The deployment.
        deployment: DeploymentId,
    },
    /// A deployment of a wave ended.
    DeploymentEnded {
        /// The wave's index in the plan, from 0 (texts number waves from 1).
        wave: usize,
        /// The engine.
        engine: String,
        /// How.
        outcome: TargetOutcome,
    },
    /// A round of bake gate checks ended.
    GateChecked {
        /// The wave baking.
        wave: usize,
        /// Whether every check passed on every deployment.
        passed: bool,
        /// Rounds passed so far.
        passes: u32,
    },
    /// The bake's time is up, but fewer gate rounds than `min_passes` have passed (the runner
    /// was down for part of the bake, or the rounds did not fit in it): it goes on, a round
    /// every interval, until they have.
    BakeExtended {
        /// The wave baking.
        wave: usize,
        /// Rounds passed so far.
        passes: u32,
        /// Rounds needed.
        needed: u32,
    },
    /// The plan failed.
    Failed {
        /// Why.
        failure: WaveFailure,
    },
    /// A halt covers the service: the runner set it (after a failure) or found it.
    Halted {
        /// The halt.
        halt: Halt,
    },
    /// A deployment that had succeeded is being rolled back.
    RollbackStarted {
        /// The wave's index in the plan, from 0 (texts number waves from 1).
        wave: usize,
        /// The engine.
        engine: String,
        /// The redeployment of the previous image.
        deployment: DeploymentId,
    },
    /// That rollback ended.
    RollbackEnded {
        /// The wave's index in the plan, from 0 (texts number waves from 1).
        wave: usize,
        /// The engine.
        engine: String,
        /// How.
        outcome: TargetOutcome,
    },
}

impl fmt::Display for WaveEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaveEventKind::StateEntered { state, wave } => write!(f, "{state} (wave {})", wave + 1),
            WaveEventKind::WaveStarted {
                wave,
                name,
                engines,
            } => write!(
                f,
                "wave {} `{name}` starts on {}",
                wave + 1,
                engines.join(", ")
            ),
            WaveEventKind::DeploymentStarted {
                wave,
                engine,
                deployment,
            } => write!(f, "wave {}: deploying on {engine} ({deployment})", wave + 1),
            WaveEventKind::DeploymentEnded {
                wave,
                engine,
                outcome,
            } => write!(f, "wave {}: {engine} {outcome}", wave + 1),
            WaveEventKind::GateChecked {
                wave,
                passed,
                passes,
            } => {
                let how = if *passed { "passed" } else { "failed" };
                write!(
                    f,
                    "wave {}: bake gates {how} ({passes} round(s) passed)",
                    wave + 1
                )
            }
            WaveEventKind::BakeExtended {
                wave,
                passes,
                needed,
            } => write!(
                f,
                "wave {}: bake time up with {passes} of {needed} gate round(s) passed; baking on \
                 until they have",
                wave + 1
            ),
            WaveEventKind::Failed { failure } => write!(f, "failed: {failure}"),
            WaveEventKind::Halted { halt } => write!(f, "{halt}"),
            WaveEventKind::RollbackStarted {
                wave,
                engine,
                deployment,
            } => write!(f, "wave {}: rolling back {engine} ({deployment})", wave + 1),
            WaveEventKind::RollbackEnded {
                wave,
                engine,
                outcome,
            } => write!(f, "wave {}: rollback on {engine} {outcome}", wave + 1),
        }
    }
}

type Subscriber = Arc<dyn Fn(&WaveEvent) + Send + Sync>;

/// Fans wave events out to subscribers, in order, and to tracing.
#[derive(Clone, Default)]
pub(super) struct WaveEvents {
    subscribers: Arc<RwLock<Vec<Subscriber>>>,
}

impl fmt::Debug for WaveEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.subscribers.read().map(|s| s.len()).unwrap_or(0);
        f.debug_struct("WaveEvents")
            .field("subscribers", &n)
            .finish()
    }
}

impl WaveEvents {
    pub(super) fn subscribe(&self, f: Subscriber) {
        self.subscribers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(f);
    }

    pub(super) fn emit(&self, event: &WaveEvent) {
        tracing::info!(plan = %event.plan, "{}", event.kind);
        let subscribers = self
            .subscribers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for s in &subscribers {
            s(event);
        }
    }
}
