//! The deployment record: everything needed to resume a deployment, persisted after every
//! phase change.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::cause::{RollbackCause, Stranded};
use super::timeline::{Mark, Timeline};
use crate::notify::Outbox;
use crate::{
    DeploymentId, DeploymentSpec, FleetId, Image, ImageId, Phase, ServiceName, Step, StepRecord,
    TargetId,
};

/// The fleet that served when the deployment began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blue {
    /// Its fleet.
    pub fleet: FleetId,
    /// Its target.
    pub target: TargetId,
    /// Its image, kept by retention for rollback.
    pub image: ImageId,
}

/// What the deployment created, as far as it got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Green {
    /// The new fleet, once launched.
    pub fleet: Option<FleetId>,
    /// Its target, once attached.
    pub target: Option<TargetId>,
}

/// One line of a deployment's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When.
    pub at: SystemTime,
    /// The phase entered.
    pub phase: Phase,
    /// Why, when there is more to say.
    pub note: Option<String>,
}

/// How a record came to be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Origin {
    /// A deployment launched its fleet.
    #[default]
    Deployed,
    /// [`Engine::adopt`](crate::Engine::adopt) adopted a fleet that already served: the record
    /// is born [`Phase::Done`], its `green` is the adopted fleet and target, its image the one
    /// the fleet runs, and its spec the fleet's size with default settings.
    Adopted,
    /// A rollback redeployed the image that served before (an operator's
    /// [`Engine::rollback`](crate::Engine::rollback) or a wave plan's): halts do not stop it.
    Rollback,
}

/// What the retire phase removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    /// Fleets terminated.
    pub fleets: Vec<FleetId>,
    /// Targets detached.
    pub targets: Vec<TargetId>,
    /// Images retired by retention.
    pub images: Vec<ImageId>,
}

/// A deployment, as persisted by a [`StateStore`](crate::StateStore).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeploymentRecord {
    /// The deployment's id.
    pub id: DeploymentId,
    /// The store's version of this record: 0 before it is first saved.
    pub version: u64,
    /// The validated request.
    pub spec: DeploymentSpec,
    /// The resolved image.
    pub image: Image,
    /// The fleet that served at the start, if any.
    pub blue: Option<Blue>,
    /// What this deployment created.
    pub green: Green,
    /// The current phase.
    pub phase: Phase,
    /// Steps finished, in [`Phase::Rollout`]: the index of the next one.
    pub step: usize,
    /// The step started and not yet finished, as the strategy chose it.
    pub current_step: Option<Step>,
    /// The steps finished, with their outcomes.
    pub steps_taken: Vec<StepRecord>,
    /// Percent of live traffic on the new fleet, as last set.
    pub weight: u32,
    /// Approvals its approval gates consumed; saved with the step that consumed one, so a
    /// resumed run never spends an approval twice.
    #[serde(default)]
    pub approvals_used: u64,
    /// Healthy and registered instances of the new fleet, as last read.
    #[serde(default)]
    pub health: Option<(usize, usize)>,
    /// Whether the preview entry point was pointed at the new fleet.
    pub previewed: bool,
    /// When the current phase (or, in [`Phase::Rollout`], the current step) began; deadlines
    /// of waits count from here, so a resumed wait does not start over.
    pub phase_started_at: SystemTime,
    /// Why the deployment is rolling back (or stopped when it could not).
    pub rollback_cause: Option<RollbackCause>,
    /// Set when a rollback could not route traffic back to the old fleet: how things stood.
    /// The deployment then ends in [`Phase::Stopped`].
    #[serde(default)]
    pub stranded: Option<Stranded>,
    /// When the old fleet dropped below `min_healthy` during the bake: the fast-rollback
    /// window was lost then.
    #[serde(default)]
    pub blue_lost_at: Option<SystemTime>,
    /// What the retire phase removed.
    pub retired: Retired,
    /// When the deployment began.
    pub created_at: SystemTime,
    /// Every phase entered.
    pub history: Vec<HistoryEntry>,
    /// Whether a deployment made the record or an adoption did.
    #[serde(default)]
    pub origin: Origin,
    /// What happened, with when: bounded (see [`Timeline`]), saved with the record.
    #[serde(default)]
    pub timeline: Timeline,
    /// Its notifications and how each delivery went (see [`crate::notify`]).
    #[serde(default, skip_serializing_if = "Outbox::is_empty")]
    pub notifications: Outbox,
}

impl DeploymentRecord {
    /// A record entering [`Phase::Plan`] at `now`, not stored yet (version 0).
    pub(crate) fn new(
        id: DeploymentId,
        spec: DeploymentSpec,
        image: Image,
        blue: Option<Blue>,
        now: SystemTime,
    ) -> Self {
        let mut rec = DeploymentRecord {
            id,
            version: 0,
            spec,
            image,
            blue,
            green: Green::default(),
            phase: Phase::Plan,
            step: 0,
            current_step: None,
            steps_taken: Vec::new(),
            weight: 0,
            approvals_used: 0,
            health: None,
            previewed: false,
            phase_started_at: now,
            rollback_cause: None,
            stranded: None,
            blue_lost_at: None,
            retired: Retired::default(),
            created_at: now,
            history: Vec::new(),
            origin: Origin::Deployed,
            timeline: Timeline::default(),
            notifications: Outbox::default(),
        };
        rec.enter(Phase::Plan, now, None);
        rec
    }

    /// The deployment's service.
    pub fn service(&self) -> &ServiceName {
        &self.spec.service
    }

    /// Moves to `phase`, noting why.
    pub(crate) fn enter(&mut self, phase: Phase, at: SystemTime, note: Option<String>) {
        self.phase = phase;
        self.phase_started_at = at;
        self.timeline.push(
            at,
            Mark::Phase {
                phase,
                note: note.clone(),
            },
        );
        self.history.push(HistoryEntry { at, phase, note });
    }

    /// How the deployment ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        match self.phase {
            Phase::Done => Some(Outcome::Succeeded),
            Phase::RolledBack => Some(Outcome::RolledBack {
                cause: self.cause(),
            }),
            Phase::Stopped => Some(Outcome::Stopped {
                cause: self.cause(),
                stranded: self.stranded.clone().unwrap_or(Stranded {
                    blue_healthy: 0,
                    green_healthy: 0,
                    needed: self.spec.min_healthy,
                    weight: self.weight,
                }),
            }),
            _ => None,
        }
    }

    /// Why it rolled back (or stopped); a placeholder if the record lost it.
    pub(crate) fn cause(&self) -> RollbackCause {
        self.rollback_cause
            .clone()
            .unwrap_or_else(|| RollbackCause::RecordIncomplete {
                missing: "rollback cause".into(),
            })
    }

    /// How long its new fleet took from launch to healthy: from entering
    /// [`Phase::Provision`] to first entering [`Phase::Rollout`] (which follows `min_healthy`
    /// instances passing their checks). `None` until then, and for an adopted record.
    pub fn time_to_healthy(&self) -> Option<Duration> {
        let entered = |phase| self.history.iter().find(|h| h.phase == phase).map(|h| h.at);
        entered(Phase::Rollout)?
            .duration_since(entered(Phase::Provision)?)
            .ok()
    }

    /// How long the deployment took (or has taken until its last phase change).
    pub fn duration(&self) -> Duration {
        self.history
            .last()
            .and_then(|h| h.at.duration_since(self.created_at).ok())
            .unwrap_or_default()
    }
}

/// How a deployment ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[must_use]
pub enum Outcome {
    /// The new fleet serves; the old one is retired.
    Succeeded,
    /// The old fleet serves; nothing of the new one remains.
    RolledBack {
        /// Why.
        cause: RollbackCause,
    },
    /// A rollback was needed but the old fleet could not take traffic back: traffic stays
    /// where it is healthiest and both fleets are kept. Deploy a fixed image (it replaces the
    /// fleet that serves) and let [`Engine::gc`](crate::Engine::gc) remove the other.
    Stopped {
        /// Why the rollback was needed.
        cause: RollbackCause,
        /// How the fleets stood.
        stranded: Stranded,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Succeeded => f.write_str("succeeded"),
            Outcome::RolledBack { cause } => write!(f, "rolled back: {cause}"),
            Outcome::Stopped { cause, stranded } => {
                write!(f, "stopped without a way back ({cause}): {stranded}")
            }
        }
    }
}

/// The result of [`Engine::deploy`](crate::Engine::deploy): how it ended, and the final record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// The final record.
    pub record: DeploymentRecord,
}

impl Report {
    /// Whether the new fleet serves.
    pub fn succeeded(&self) -> bool {
        self.outcome == Outcome::Succeeded
    }
}
