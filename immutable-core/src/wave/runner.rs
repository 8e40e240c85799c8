//! [`WaveRunner`]: the engines a plan may name, the store its record and halts live in, and
//! the driver that walks a plan from state to state until it ends or a halt stops it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::event::{WaveEvent, WaveEventKind, WaveEvents};
use super::plan::WavePlan;
use super::record::{WaveId, WaveRecord, WaveState};
use crate::{
    Check, Clock, DeploymentId, Engine, Error, Halt, Lease, Result, ServiceName, StateStore,
    TokioClock, limits,
};

/// Runs wave plans: one image deployed to many places (regions, accounts) in ordered waves,
/// each a set of deployments on their own engines, with a bake between waves and one halt for
/// all. Cheap to clone.
///
/// # Expected flow
/// 1. [`WaveRunner::run`] validates the [`WavePlan`] against the runner's engines and checks
///    (nothing starts if anything is wrong), refuses a halted service, and saves the plan's
///    [`WaveRecord`] in the shared store.
/// 2. **Running**: the current wave's deployments run at once, at most `concurrency` at a time,
///    each on its engine under an id recorded before it starts.
/// 3. **Baking**: once every deployment of the wave succeeded, the plan bakes for its bake
///    time, running the gate checks against each of them every interval, and on past that
///    time until `min_passes` rounds have passed.
/// 4. The next wave, until the last; then **Done**.
///
/// # Failures and halts
/// A deployment that does not succeed or a failed gate check fails the plan: the service is
/// halted in the shared store ([`Engine::halt`](crate::Engine::halt)), so every engine and
/// runner that reads halts there stops advancing it; the wave's other deployments are aborted;
/// no further wave starts; and, with [`OnWaveFailure::RollBackDone`](crate::OnWaveFailure::RollBackDone), every deployment that
/// succeeded is rolled back, newest first. The halt stays until an operator lifts it.
///
/// A halt set by anyone else stops the plan in [`WaveState::Halted`](crate::WaveState::Halted): no further wave starts,
/// the bake stops counting, deployments of engines that hold under halts are suspended (those
/// whose engines roll back under halts do so, which fails the plan). Resume it with
/// [`WaveRunner::resume`] once the halt is lifted.
///
/// # Guarantees
/// The record is saved after every change, so a runner cut off at any point is resumed with
/// [`WaveRunner::resume`] to the same end: deployments it started are resumed, never started
/// twice; a bake counts on from the passes it saved, and a runner down for longer than the
/// bake does not fail it for want of passes; a lease keeps two runners off one plan.
///
/// # Assumptions
/// Each engine keeps its deployment records in its own store (a service's records and lease
/// are per store), and reads halts from the runner's shared store
/// ([`EngineBuilder::halts_from`](crate::EngineBuilder::halts_from)).
///
/// # Caveats
/// A deployment's own bake ends before the wave's bake begins, and retires its old fleet: a
/// plan's rollback is a redeployment of the previous image, not one routing call. Keep the
/// deployments' `bake_time` long enough for the fast way back you need.
#[derive(Debug, Clone)]
pub struct WaveRunner {
    pub(super) inner: Arc<RunnerInner>,
}

#[derive(Debug)]
pub(super) struct RunnerInner {
    pub(super) store: Arc<dyn StateStore>,
    pub(super) engines: BTreeMap<String, Engine>,
    pub(super) checks: BTreeMap<String, Arc<dyn Check>>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) poll_interval: Duration,
    pub(super) lease_ttl: Duration,
    pub(super) events: WaveEvents,
}

/// Builds a [`WaveRunner`].
#[derive(Debug, Default)]
#[must_use]
pub struct WaveRunnerBuilder {
    store: Option<Arc<dyn StateStore>>,
    engines: BTreeMap<String, Engine>,
    checks: BTreeMap<String, Arc<dyn Check>>,
    clock: Option<Arc<dyn Clock>>,
    poll_interval: Option<Duration>,
    lease_ttl: Option<Duration>,
}

impl WaveRunnerBuilder {
    /// The shared store: wave records and halts live here. Give every engine the same one as
    /// [`EngineBuilder::halts_from`](crate::EngineBuilder::halts_from), so that a halt stops
    /// them all.
    pub fn store_shared(mut self, store: Arc<dyn StateStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// An engine a plan may name: one per region or account, each with its own backends and
    /// its own store for its deployment records (a service's records and lease are per store).
    pub fn engine(mut self, name: impl Into<String>, engine: Engine) -> Self {
        self.engines.insert(name.into(), engine);
        self
    }

    /// A check bake gates may name.
    pub fn check(mut self, name: impl Into<String>, check: impl Check) -> Self {
        self.checks.insert(name.into(), Arc::new(check));
        self
    }

    /// How often the runner reads halts while it waits. Default 5 s.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// How long the plan's lease lasts unless renewed (every third of it). Default 60 s.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = Some(ttl);
        self
    }

    /// The clock for records and events. Default: a [`TokioClock`].
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Builds the runner.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `store` when none was given, `engines` when none was,
    /// or a bad interval.
    pub fn build(self) -> Result<WaveRunner> {
        let store = self
            .store
            .ok_or_else(|| Error::invalid("store", "is required: the shared store"))?;
        if self.engines.is_empty() {
            return Err(Error::invalid("engines", "register at least one engine"));
        }
        let poll_interval = self.poll_interval.unwrap_or(Duration::from_secs(5));
        limits::duration(
            "poll_interval",
            poll_interval,
            limits::MIN_POLL_INTERVAL,
            limits::MAX_POLL_INTERVAL,
        )?;
        let lease_ttl = self.lease_ttl.unwrap_or(Duration::from_secs(60));
        limits::duration(
            "lease_ttl",
            lease_ttl,
            limits::MIN_LEASE_TTL,
            limits::MAX_LEASE_TTL,
        )?;
        Ok(WaveRunner {
            inner: Arc::new(RunnerInner {
                store,
                engines: self.engines,
                checks: self.checks,
                clock: self.clock.unwrap_or_else(|| Arc::new(TokioClock::new())),
                poll_interval,
                lease_ttl,
                events: WaveEvents::default(),
            }),
        })
    }
}

/// How a wave plan run ended (or where a halt left it), and its record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct WaveReport {
    /// Where it stands: [`WaveState::Done`], [`WaveState::Failed`],
    /// [`WaveState::RolledBack`], or [`WaveState::Halted`] (resume it once the halt is lifted).
    pub state: WaveState,
    /// The final record.
    pub record: WaveRecord,
}

impl WaveRunner {
    /// Starts building a runner.
    pub fn builder() -> WaveRunnerBuilder {
        WaveRunnerBuilder::default()
    }

    /// Calls `f` with every event of every plan this runner drives, in order.
    pub fn subscribe(&self, f: impl Fn(&WaveEvent) + Send + Sync + 'static) {
        self.inner.events.subscribe(Arc::new(f));
    }

    /// Runs a plan to its end, or until a halt stops it.
    ///
    /// # Errors
    /// - [`Error::InvalidInput`] naming the field, before anything starts: no wave, a wave
    ///   with no deployment, an engine not registered or named twice, a request that does not
    ///   validate or names another service, a gate check not registered.
    /// - [`Error::Halted`] while a halt covers the service; nothing starts.
    /// - A store error, with the record left for [`resume`](Self::resume).
    pub async fn run(&self, plan: WavePlan) -> Result<WaveReport> {
        let inner = &*self.inner;
        let spec = plan.validate(
            |e| inner.engines.contains_key(e),
            |c| inner.checks.contains_key(c),
        )?;
        crate::halt::refuse_if_halted(inner.store.halt_store(), &spec.service).await?;
        let mut rec = WaveRecord::new(WaveId::generate(), spec, inner.clock.now());
        let lease = inner.take_lease(&rec.id).await?;
        crate::store::waves_of(&*inner.store, "run a wave plan")?
            .save_wave(&mut rec)
            .await?;
        inner.emit(
            &rec,
            WaveEventKind::StateEntered {
                state: rec.state,
                wave: 0,
            },
        );
        inner.drive_leased(rec, lease).await
    }

    /// Continues a plan from its record: after a crash of its runner, or once the halt that
    /// stopped it is lifted. An ended plan returns its report at once.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown id, [`Error::Locked`] while another runner drives
    /// it, store errors.
    pub async fn resume(&self, id: &WaveId) -> Result<WaveReport> {
        let inner = &*self.inner;
        let rec = crate::store::waves_of(&*inner.store, "resume a wave plan")?
            .load_wave(id)
            .await?;
        if rec.state.is_terminal() {
            return Ok(WaveReport {
                state: rec.state,
                record: rec,
            });
        }
        let lease = inner.take_lease(id).await?;
        inner.drive_leased(rec, lease).await
    }

    /// Resumes every unfinished plan in the store, one after the other.
    ///
    /// # Errors
    /// Store errors listing the plans.
    pub async fn resume_unfinished(&self) -> Result<Vec<(WaveId, Result<WaveReport>)>> {
        let ids: Vec<WaveId> = crate::store::waves_of(&*self.inner.store, "resume wave plans")?
            .unfinished_waves()
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let mut results = Vec::with_capacity(ids.len());
        for id in ids {
            let result = self.resume(&id).await;
            results.push((id, result));
        }
        Ok(results)
    }
}

impl RunnerInner {
    pub(super) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    pub(super) fn emit(&self, rec: &WaveRecord, kind: WaveEventKind) {
        self.events.emit(&WaveEvent {
            plan: rec.id.clone(),
            at: self.now(),
            kind,
        });
    }

    pub(super) fn engine(&self, name: &str) -> Result<&Engine> {
        self.engines.get(name).ok_or_else(|| {
            Error::invalid(
                "engine",
                format!("the plan names `{name}`, which is not registered on this runner"),
            )
        })
    }

    /// Saves the record.
    pub(super) async fn save(&self, rec: &mut WaveRecord) -> Result<()> {
        crate::store::waves_of(&*self.store, "save a wave plan")?
            .save_wave(rec)
            .await
    }

    /// Enters `state`, saves, and reports it.
    pub(super) async fn enter(
        &self,
        rec: &mut WaveRecord,
        state: WaveState,
        note: Option<String>,
    ) -> Result<()> {
        rec.enter(state, self.now(), note);
        self.save(rec).await?;
        self.emit(
            rec,
            WaveEventKind::StateEntered {
                state,
                wave: rec.wave,
            },
        );
        Ok(())
    }

    /// The halt covering `service` in the shared store, its own before the global one.
    pub(super) async fn halt_of(&self, service: &ServiceName) -> Result<Option<Halt>> {
        crate::halt::covering(self.store.halt_store(), service).await
    }

    /// The plan's lease: one runner drives a plan at a time.
    async fn take_lease(&self, id: &WaveId) -> Result<Lease> {
        let key = ServiceName::new(format!("wave.{id}"))?;
        let grant = self
            .store
            .acquire_lease(
                &key,
                &DeploymentId::new(id.as_str()),
                &format!("wave-runner {}", DeploymentId::generate()),
                self.lease_ttl,
                self.now(),
            )
            .await?;
        Ok(grant.lease)
    }

    /// Renews the plan's lease (retrying a failing store, as deployments do) until it is lost.
    async fn keep_lease(&self, lease: Lease) -> Error {
        let retry = crate::RetryPolicy::default();
        crate::store::keep_lease(&*self.store, lease, self.lease_ttl, &*self.clock, &retry).await
    }

    async fn drive_leased(&self, mut rec: WaveRecord, lease: Lease) -> Result<WaveReport> {
        let result = tokio::select! {
            biased;
            r = self.drive(&mut rec) => r,
            lost = self.keep_lease(lease.clone()) => Err(lost),
        };
        let _ = self.store.release_lease(&lease).await;
        result.map(|()| WaveReport {
            state: rec.state,
            record: rec,
        })
    }

    /// Walks the plan until it ends or a halt stops it.
    async fn drive(&self, rec: &mut WaveRecord) -> Result<()> {
        loop {
            match rec.state {
                WaveState::Done | WaveState::Failed | WaveState::RolledBack => return Ok(()),
                WaveState::Halted => {
                    if let Some(halt) = self.halt_of(&rec.plan.service).await? {
                        rec.halt = Some(halt);
                        return Ok(());
                    }
                    let resume_in = if rec.bake_until.is_some() {
                        WaveState::Baking
                    } else {
                        WaveState::Running
                    };
                    self.enter(rec, resume_in, Some("the halt was lifted".into()))
                        .await?;
                }
                WaveState::Running => self.run_wave(rec).await?,
                WaveState::Baking => self.bake(rec).await?,
                WaveState::RollingBack => self.roll_back_done(rec).await?,
            }
        }
    }
}
