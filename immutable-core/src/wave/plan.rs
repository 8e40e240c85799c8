//! What a wave plan asks: ordered waves of deployments, each on a named engine (one per region
//! or account), a bake between waves, and what a failure does. [`WavePlan`] is the builder a
//! caller fills; [`WavePlanSpec`] the validated plan the record keeps.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{DeploymentRequest, DeploymentSpec, Error, Result, ServiceName, limits};

/// What a failed deployment or bake gate does to the rest of the plan. Either way, no further
/// wave starts and the service is halted in the shared store
/// ([`Engine::halt`](crate::Engine::halt)), so every engine and every other runner stops
/// advancing it until an operator lifts the halt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnWaveFailure {
    /// Halt the rest; keep what the earlier waves deployed.
    #[default]
    HaltRest,
    /// Halt the rest, then roll back every deployment that succeeded, newest first (the
    /// failing wave's, then the earlier waves', last wave first).
    RollBackDone,
}

/// The bake between two waves: a time, and optionally checks (registered on the runner) run
/// against every deployment of the wave just done, every `interval`. A failed check fails the
/// plan. The bake lasts its `time` and until `min_passes` rounds have passed (every check, on
/// every deployment): a bake whose time ends short of them, because its runner was down for
/// part of it or the rounds do not fit in it, goes on, a round every `interval`, until they
/// have ([`WaveEventKind::BakeExtended`](crate::WaveEventKind::BakeExtended)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WaveBake {
    /// How long to bake.
    #[serde(with = "crate::serde_duration")]
    pub time: Duration,
    /// The gate checks, by name.
    pub checks: Vec<String>,
    /// How often the gate checks run.
    #[serde(with = "crate::serde_duration")]
    pub interval: Duration,
    /// Rounds in which every check passed on every deployment, needed before the next wave
    /// (the bake goes on past its time until they have).
    pub min_passes: u32,
}

impl WaveBake {
    /// A bake of `time` with no gate checks.
    pub fn time(time: Duration) -> Self {
        WaveBake {
            time,
            checks: Vec::new(),
            interval: Duration::from_secs(60),
            min_passes: 0,
        }
    }

    /// Gate checks, by the names they were registered under on the runner.
    pub fn checks<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.checks = names.into_iter().map(Into::into).collect();
        self
    }

    /// How often the gate checks run. Default 60 s.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Passed rounds needed before the next wave; the bake goes on past its time until they
    /// have. Default 0.
    pub fn min_passes(mut self, passes: u32) -> Self {
        self.min_passes = passes;
        self
    }
}

/// One deployment of a wave: the engine (by its name on the runner) and the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveTarget {
    /// The engine's name.
    pub engine: String,
    /// What to deploy there.
    pub request: DeploymentRequest,
}

impl WaveTarget {
    /// A deployment of `request` on the engine named `engine`.
    pub fn new(engine: impl Into<String>, request: DeploymentRequest) -> Self {
        WaveTarget {
            engine: engine.into(),
            request,
        }
    }
}

/// A wave plan: ordered waves of deployments of one service over several engines.
///
/// ```
/// use std::time::Duration;
/// use immutable_core::{DeploymentRequest, ImageRef, OnWaveFailure, WaveBake, WavePlan};
///
/// let request = DeploymentRequest::new("web", ImageRef::name("web-v2"));
/// let plan = WavePlan::new(request)
///     .wave("canary", ["eu-west-1"])
///     .wave("rest", ["us-east-1", "ap-south-1"])
///     .bake(WaveBake::time(Duration::from_secs(1800)).checks(["alarms"]).min_passes(3))
///     .on_failure(OnWaveFailure::RollBackDone);
/// assert_eq!(plan.waves().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct WavePlan {
    request: DeploymentRequest,
    waves: Vec<(String, Vec<WaveTarget>)>,
    bake: WaveBake,
    concurrency: usize,
    on_failure: OnWaveFailure,
}

impl WavePlan {
    /// A plan deploying `request` (its service names the plan's service) in the waves added.
    /// Default: a 15-minute bake without checks, 4 deployments at once, halt the rest on a
    /// failure.
    pub fn new(request: DeploymentRequest) -> Self {
        WavePlan {
            request,
            waves: Vec::new(),
            bake: WaveBake::time(Duration::from_secs(900)),
            concurrency: 4,
            on_failure: OnWaveFailure::default(),
        }
    }

    /// Adds a wave deploying the plan's request on each engine named.
    pub fn wave<S: Into<String>>(
        self,
        name: impl Into<String>,
        engines: impl IntoIterator<Item = S>,
    ) -> Self {
        let targets = engines
            .into_iter()
            .map(|e| WaveTarget::new(e, self.request.clone()))
            .collect();
        self.wave_of(name, targets)
    }

    /// Adds a wave of targets with their own requests (a capacity per region, say); every
    /// request must name the plan's service.
    pub fn wave_of(mut self, name: impl Into<String>, targets: Vec<WaveTarget>) -> Self {
        self.waves.push((name.into(), targets));
        self
    }

    /// The bake between waves.
    pub fn bake(mut self, bake: WaveBake) -> Self {
        self.bake = bake;
        self
    }

    /// Deployments run at once inside a wave. Default 4.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// What a failure does. Default [`OnWaveFailure::HaltRest`].
    pub fn on_failure(mut self, policy: OnWaveFailure) -> Self {
        self.on_failure = policy;
        self
    }

    /// The waves added, with their names.
    pub fn waves(&self) -> &[(String, Vec<WaveTarget>)] {
        &self.waves
    }

    /// Validates the plan against the engines and checks a runner has; the first problem is
    /// [`Error::InvalidInput`] naming the field (`waves[1].targets[0].engine`, say).
    pub(super) fn validate(
        &self,
        has_engine: impl Fn(&str) -> bool,
        has_check: impl Fn(&str) -> bool,
    ) -> Result<WavePlanSpec> {
        let service = ServiceName::new(self.request.service.clone())?;
        if self.waves.is_empty() {
            return Err(Error::invalid("waves", "must hold at least one wave"));
        }
        limits::count("concurrency", self.concurrency, 1, 64)?;
        self.validate_bake(&has_check)?;
        let mut seen = BTreeSet::new();
        let mut waves = Vec::with_capacity(self.waves.len());
        for (w, (name, targets)) in self.waves.iter().enumerate() {
            if targets.is_empty() {
                return Err(Error::invalid(
                    format!("waves[{w}].targets"),
                    format!("wave `{name}` has no deployment"),
                ));
            }
            let specs = targets
                .iter()
                .enumerate()
                .map(|(t, target)| validate_target(w, t, target, &service, &has_engine, &mut seen))
                .collect::<Result<Vec<_>>>()?;
            waves.push(WaveSpec {
                name: name.clone(),
                targets: specs,
            });
        }
        Ok(WavePlanSpec {
            service,
            waves,
            bake: self.bake.clone(),
            concurrency: self.concurrency,
            on_failure: self.on_failure,
        })
    }

    fn validate_bake(&self, has_check: &impl Fn(&str) -> bool) -> Result<()> {
        limits::duration(
            "bake.time",
            self.bake.time,
            Duration::ZERO,
            limits::MAX_BAKE_TIME,
        )?;
        if let Some(missing) = self.bake.checks.iter().find(|c| !has_check(c)) {
            return Err(Error::invalid(
                "bake.checks",
                format!("check `{missing}` is not registered on the runner"),
            ));
        }
        if !self.bake.checks.is_empty() || self.bake.min_passes > 0 {
            limits::duration(
                "bake.interval",
                self.bake.interval,
                limits::MIN_POLL_INTERVAL,
                limits::MAX_POLL_INTERVAL,
            )?;
        }
        if self.bake.min_passes > 0 && self.bake.checks.is_empty() {
            return Err(Error::invalid(
                "bake.min_passes",
                "needs gate checks to count passes of: name some with WaveBake::checks",
            ));
        }
        Ok(())
    }
}

/// One deployment of a validated plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TargetSpec {
    /// The engine's name on the runner.
    pub engine: String,
    /// The validated request.
    pub request: DeploymentSpec,
}

/// One validated wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WaveSpec {
    /// Its name.
    pub name: String,
    /// Its deployments.
    pub targets: Vec<TargetSpec>,
}

/// A validated plan, as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WavePlanSpec {
    /// The service every wave deploys.
    pub service: ServiceName,
    /// The waves, in order.
    pub waves: Vec<WaveSpec>,
    /// The bake between waves.
    pub bake: WaveBake,
    /// Deployments at once inside a wave.
    pub concurrency: usize,
    /// What a failure does.
    pub on_failure: OnWaveFailure,
}

/// One target of wave `w`: a registered engine, named once in the plan, and a request that
/// validates and names the plan's service.
fn validate_target(
    w: usize,
    t: usize,
    target: &WaveTarget,
    service: &ServiceName,
    has_engine: &impl Fn(&str) -> bool,
    seen: &mut BTreeSet<String>,
) -> Result<TargetSpec> {
    let field = |f: &str| format!("waves[{w}].targets[{t}].{f}");
    if !has_engine(&target.engine) {
        return Err(Error::invalid(
            field("engine"),
            format!("no engine named `{}` is registered", target.engine),
        ));
    }
    if !seen.insert(target.engine.clone()) {
        return Err(Error::invalid(
            field("engine"),
            format!("`{}` appears twice in the plan", target.engine),
        ));
    }
    let request = target.request.validate().map_err(|e| match e {
        Error::InvalidInput {
            field: f, reason, ..
        } => Error::invalid(field(&f), reason),
        other => other,
    })?;
    if &request.service != service {
        return Err(Error::invalid(
            field("service"),
            format!("is `{}`, the plan's is `{service}`", request.service),
        ));
    }
    Ok(TargetSpec {
        engine: target.engine.clone(),
        request,
    })
}
