//! Starting and resuming deployments, and the driver that walks a deployment from phase to
//! phase until it ends; each phase runs in the file named after it.

use std::future::Future;
use std::sync::Arc;

use tracing::Instrument;

use super::control::Control;
use super::run::{Run, Stop, retrying};
use super::{Engine, Inner};
use crate::{
    DeploymentId, DeploymentRecord, DeploymentRequest, DeploymentSpec, Error, Event, EventKind,
    Lease, Origin, Outcome, Phase, Report, Result, ServiceName, Strategy, StrategySpec,
};

/// Registers a deployment's control while it runs here; finishes and removes it when the run
/// ends, however it ends (a dropped future included).
pub(super) struct ControlGuard<'a> {
    inner: &'a Inner,
    id: DeploymentId,
    control: Arc<Control>,
}

impl<'a> ControlGuard<'a> {
    pub(super) fn new(inner: &'a Inner, id: &DeploymentId) -> Self {
        let control = Control::new();
        inner
            .controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), Arc::clone(&control));
        ControlGuard {
            inner,
            id: id.clone(),
            control,
        }
    }
}

impl Drop for ControlGuard<'_> {
    fn drop(&mut self) {
        self.control.finish(None);
        self.inner
            .controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl Engine {
    /// Deploys an image: plans, then drives the deployment to [`Phase::Done`] or
    /// [`Phase::RolledBack`] (or [`Phase::Stopped`], when a rollback found no way back).
    ///
    /// Returns `Ok` with the [`Outcome`] once the deployment has ended.
    ///
    /// # Errors
    /// - [`Error::InvalidInput`] naming the field, for bad input or an image that does not
    ///   resolve; nothing is created.
    /// - [`Error::Halted`] while a halt covers the service ([`Engine::halt`]); nothing is
    ///   created.
    /// - [`Error::Locked`] at once if another deployment of the service holds its lease.
    /// - [`Error::UnfinishedDeployment`] if an unfinished deployment of the service exists
    ///   (resume it), [`Error::TrafficSplit`] if the service's traffic is split between
    ///   several targets, [`Error::ServingTargetNotOwned`] if it goes to a target the SDK
    ///   does not own (adopt it first with [`Engine::adopt`]).
    /// - Any error that stops the deployment with its record left resumable.
    pub async fn deploy(&self, request: DeploymentRequest) -> Result<Report> {
        let spec = request.validate()?;
        self.deploy_as(DeploymentId::generate(), spec, Origin::Deployed)
            .await
    }

    /// Deploys under a chosen id (a wave plan records it before the deployment starts, so a
    /// crash in between is resumed, not repeated). A rollback's redeployment is not halted.
    pub(crate) async fn deploy_as(
        &self,
        id: DeploymentId,
        spec: DeploymentSpec,
        origin: Origin,
    ) -> Result<Report> {
        self.inner.strategy_for(&spec.strategy)?;
        if origin != Origin::Rollback {
            self.inner.refuse_if_halted(&spec.service).await?;
        }
        let span = tracing::info_span!("deploy", deployment = %id, service = %spec.service);
        async move {
            let inner = &*self.inner;
            let guard = ControlGuard::new(inner, &id);
            let (rec, lease) = inner.plan(&id, spec, origin).await?;
            inner.run(rec, lease, Arc::clone(&guard.control)).await
        }
        .instrument(span)
        .await
    }

    /// Continues a deployment from its record, with this engine's backends and store.
    ///
    /// A finished deployment returns its report at once. An unfinished one takes the service's
    /// lease (waiting for nobody: a live lease gives [`Error::Locked`], an expired one is taken
    /// over) and re-runs its current phase, which is safe because every phase is idempotent.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown id, [`Error::Locked`] while another run holds the
    /// lease, and any error that stops the deployment again.
    pub async fn resume(&self, id: &DeploymentId) -> Result<Report> {
        let inner = &*self.inner;
        let rec = inner.store.load(id).await?;
        let span = tracing::info_span!("resume", deployment = %id, service = %rec.service());
        async move {
            if let Some(outcome) = rec.outcome() {
                let rec = inner.deliver_leftovers(rec).await?;
                return Ok(Report {
                    outcome,
                    record: rec,
                });
            }
            let guard = ControlGuard::new(inner, &rec.id);
            let lease = inner.acquire_lease(rec.service(), &rec.id).await?;
            inner.run(rec, lease, Arc::clone(&guard.control)).await
        }
        .instrument(span)
        .await
    }

    /// Resumes every unfinished deployment in the store, one after the other, and returns each
    /// one's result.
    pub async fn resume_unfinished(&self) -> Result<Vec<(DeploymentId, Result<Report>)>> {
        let unfinished: Vec<_> = self
            .inner
            .store
            .unfinished(None)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let mut results = Vec::with_capacity(unfinished.len());
        for id in unfinished {
            let result = self.resume(&id).await;
            results.push((id, result));
        }
        Ok(results)
    }
}

impl Inner {
    /// The strategy a spec names, with every check it names registered.
    pub(super) fn strategy_for(&self, spec: &StrategySpec) -> Result<Arc<dyn Strategy>> {
        match spec {
            StrategySpec::Steps(steps) => {
                if let Some(missing) = steps.check_names().find(|n| !self.checks.contains_key(*n)) {
                    return Err(Error::invalid(
                        "strategy",
                        format!("check `{missing}` is not registered on the engine"),
                    ));
                }
                Ok(Arc::new(steps.clone()))
            }
            StrategySpec::Named(name) => self.strategies.get(name).cloned().ok_or_else(|| {
                Error::invalid(
                    "strategy",
                    format!("strategy `{name}` is not registered on the engine"),
                )
            }),
        }
    }

    pub(super) fn emit_for(&self, id: &DeploymentId, service: &ServiceName, kind: EventKind) {
        self.events.emit(&Event {
            deployment: id.clone(),
            service: service.clone(),
            at: self.clock.now(),
            kind,
        });
    }

    /// A backend call under the retry policy, with retries reported as events.
    pub(super) async fn call<T, F, Fut>(
        &self,
        id: &DeploymentId,
        service: &ServiceName,
        operation: &'static str,
        op: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.settings
            .retry
            .run(op, |attempt, error, backoff| {
                self.emit_for(id, service, retrying(operation, attempt, error, backoff));
            })
            .await
    }

    /// Drives `rec` to its end with the lease kept alive, then releases the lease.
    pub(super) async fn run(
        &self,
        rec: DeploymentRecord,
        lease: Lease,
        control: Arc<Control>,
    ) -> Result<Report> {
        let id = rec.id.clone();
        let mut run = Run {
            engine: self,
            rec,
            control: Arc::clone(&control),
            last_health: None,
            pending: std::sync::Mutex::default(),
        };
        // Commands given while no runner was alive, and halts, apply from the start.
        let service = run.rec.service().clone();
        let first_read = match self.apply_commands(&id, &control).await {
            Ok(()) => self.apply_halt(&service, &control).await,
            Err(e) => Err(e),
        };
        let result = match first_read {
            Err(e) => Err(e),
            Ok(()) => tokio::select! {
                biased;
                outcome = run.drive() => outcome,
                lost = self.keep_lease(lease.clone()) => Err(lost),
                failed = self.watch_commands(&id, &service, &control) => Err(failed),
            },
        };
        let _ = self.store.release_lease(&lease).await;
        run.control.finish(Some(run.rec.phase));
        result.map(|outcome| Report {
            outcome,
            record: run.rec,
        })
    }
}

impl Run<'_> {
    async fn drive(&mut self) -> Result<Outcome> {
        // AwaitHealthy's proof that green is healthy, for the rollout right after it.
        let mut fresh = None;
        // What an earlier run saved but did not deliver (or the plan's `started`).
        self.engine.deliver_notifications(&mut self.rec).await?;
        loop {
            let phase = self.rec.phase;
            let step = match phase {
                Phase::Done | Phase::RolledBack | Phase::Stopped => {
                    return Ok(self.rec.outcome().expect("terminal phases have an outcome"));
                }
                Phase::RollingBack => self.roll_back().await.map_err(Stop::Interrupted),
                Phase::Plan | Phase::Provision => self.provision().await,
                Phase::Attach => self.attach().await,
                Phase::AwaitHealthy => self.await_healthy().await.map(|p| fresh = Some(p)),
                Phase::Rollout => self.rollout(fresh.take()).await,
                Phase::Bake => self.bake().await,
                Phase::Retire => self.retire().await.map_err(Stop::Interrupted),
            };
            match step {
                Ok(()) => {}
                Err(Stop::Interrupted(e)) => return Err(e),
                Err(Stop::RollBack(cause)) => {
                    let note = cause.to_string();
                    self.rec.rollback_cause = Some(cause.clone());
                    self.emit(EventKind::RollbackStarted { cause });
                    self.advance(Phase::RollingBack, Some(note)).await?;
                }
            }
        }
    }
}
