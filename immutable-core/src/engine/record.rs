//! The deployment record: everything needed to resume a deployment, persisted after every
//! phase change.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::cause::{OnBlueLost, RollbackCause, Stranded};
use crate::limits;
use crate::{
    DeploymentId, Error, FleetId, Image, ImageId, ImageRef, Result, ServiceName, Step, StepRecord,
    StrategySpec, TargetId,
};

/// Where a deployment is. Persisted; the engine resumes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// fleets were kept for the operator (see [`Stranded`]).
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

/// What to deploy, and how.
///
/// ```
/// use std::time::Duration;
/// use immutable_core::{DeploymentRequest, ImageRef};
///
/// let request = DeploymentRequest::new("web", ImageRef::name("web-v2"))
///     .capacity(4)
///     .min_healthy(3)
///     .bake_time(Duration::from_secs(600));
/// assert_eq!(request.capacity, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeploymentRequest {
    /// The service; validated by [`ServiceName::new`].
    pub service: String,
    /// The image to deploy.
    pub image: ImageRef,
    /// Instances in the new fleet. Default 2.
    pub capacity: u32,
    /// Healthy instances the new fleet needs before it takes traffic. Defaults to `capacity`.
    pub min_healthy: Option<u32>,
    /// How traffic moves. Default [`Steps::blue_green`](crate::Steps::blue_green).
    pub strategy: StrategySpec,
    /// How long the new fleet may take to become healthy before the deployment rolls back.
    /// Default 10 minutes.
    pub health_timeout: Duration,
    /// How long the old fleet is kept after the switch, for a fast rollback. Default 15 minutes.
    pub bake_time: Duration,
    /// What happens when the old fleet drops below `min_healthy` during the bake. Default
    /// [`OnBlueLost::KeepBaking`].
    pub on_blue_lost: OnBlueLost,
}

impl DeploymentRequest {
    /// A request with defaults for everything but the service and the image.
    pub fn new(service: impl Into<String>, image: ImageRef) -> Self {
        DeploymentRequest {
            service: service.into(),
            image,
            capacity: 2,
            min_healthy: None,
            strategy: StrategySpec::default(),
            health_timeout: Duration::from_secs(600),
            bake_time: Duration::from_secs(900),
            on_blue_lost: OnBlueLost::default(),
        }
    }

    /// Sets the capacity.
    pub fn capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets the healthy instances needed before traffic moves.
    pub fn min_healthy(mut self, min_healthy: u32) -> Self {
        self.min_healthy = Some(min_healthy);
        self
    }

    /// Sets the strategy.
    pub fn strategy(mut self, strategy: impl Into<StrategySpec>) -> Self {
        self.strategy = strategy.into();
        self
    }

    /// Sets the health timeout.
    pub fn health_timeout(mut self, timeout: Duration) -> Self {
        self.health_timeout = timeout;
        self
    }

    /// Sets the bake time.
    pub fn bake_time(mut self, bake_time: Duration) -> Self {
        self.bake_time = bake_time;
        self
    }

    /// Sets what happens when the old fleet is lost during the bake.
    pub fn on_blue_lost(mut self, policy: OnBlueLost) -> Self {
        self.on_blue_lost = policy;
        self
    }

    /// Checks every field against [`limits`](crate::limits); nothing is touched.
    pub(crate) fn validate(&self) -> Result<DeploymentSpec> {
        let service = ServiceName::new(self.service.clone())?;
        if self.capacity == 0 {
            return Err(Error::invalid("capacity", "must be at least 1"));
        }
        limits::count("capacity", self.capacity, 1, limits::MAX_CAPACITY)?;
        limits::duration(
            "health_timeout",
            self.health_timeout,
            limits::MIN_HEALTH_TIMEOUT,
            limits::MAX_HEALTH_TIMEOUT,
        )?;
        limits::duration(
            "bake_time",
            self.bake_time,
            Duration::ZERO,
            limits::MAX_BAKE_TIME,
        )?;
        let min_healthy = self.min_healthy.unwrap_or(self.capacity);
        if min_healthy == 0 {
            return Err(Error::invalid("min_healthy", "must be at least 1"));
        }
        if min_healthy > self.capacity {
            return Err(Error::invalid(
                "min_healthy",
                format!("is {min_healthy}, above the capacity of {}", self.capacity),
            ));
        }
        match &self.image {
            ImageRef::Id(id) if id.as_str().is_empty() => {
                return Err(Error::invalid("image", "id must not be empty"));
            }
            ImageRef::Name(name) if name.is_empty() => {
                return Err(Error::invalid("image", "name must not be empty"));
            }
            _ => {}
        }
        if let StrategySpec::Steps(steps) = &self.strategy {
            steps.validate()?;
        }
        Ok(DeploymentSpec {
            service,
            image: self.image.clone(),
            capacity: self.capacity,
            min_healthy,
            strategy: self.strategy.clone(),
            health_timeout: self.health_timeout,
            bake_time: self.bake_time,
            on_blue_lost: self.on_blue_lost,
        })
    }
}

/// A validated request, as persisted in the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeploymentSpec {
    /// The service.
    pub service: ServiceName,
    /// The image as requested.
    pub image: ImageRef,
    /// Instances in the new fleet.
    pub capacity: u32,
    /// Healthy instances needed before traffic moves.
    pub min_healthy: u32,
    /// How traffic moves.
    pub strategy: StrategySpec,
    /// Health timeout.
    #[serde(with = "crate::serde_duration")]
    pub health_timeout: Duration,
    /// Bake time.
    #[serde(with = "crate::serde_duration")]
    pub bake_time: Duration,
    /// What happens when the old fleet is lost during the bake.
    #[serde(default)]
    pub on_blue_lost: OnBlueLost,
}

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
            previewed: false,
            phase_started_at: now,
            rollback_cause: None,
            stranded: None,
            blue_lost_at: None,
            retired: Retired::default(),
            created_at: now,
            history: Vec::new(),
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
