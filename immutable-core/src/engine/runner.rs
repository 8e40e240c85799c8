//! Starting, resuming and driving deployments; the lease keeper; the calls every phase makes.

use std::future::Future;
use std::time::{Duration, SystemTime};

use tracing::Instrument;

use std::sync::Arc;

use super::control::Control;
use super::{Engine, Inner};
use crate::engine::record::Blue;
use crate::{
    DeploymentId, DeploymentRecord, DeploymentRequest, Error, Event, EventKind, Lease, Outcome,
    Phase, Report, Result, RollbackCause, ServiceName, Strategy, StrategySpec,
};

/// Why a phase stopped short.
pub(super) enum Stop {
    /// Roll back, for this cause.
    RollBack(RollbackCause),
    /// Return the error with the record left at its phase: resumable with
    /// [`Engine::resume`], since every phase is idempotent.
    Interrupted(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Interrupted(e)
    }
}

/// The rollback an operator's abort causes.
pub(super) fn aborted(reason: String) -> Stop {
    Stop::RollBack(RollbackCause::OperatorAbort { reason })
}

/// Turns a failed forward call in `phase` into a rollback.
pub(super) fn provider_failure(
    phase: Phase,
    operation: &'static str,
) -> impl FnOnce(Error) -> Stop {
    move |e| {
        Stop::RollBack(RollbackCause::ProviderError {
            phase,
            operation: operation.to_owned(),
            error: e.to_string(),
        })
    }
}

/// One deployment being driven.
pub(super) struct Run<'a> {
    pub(super) engine: &'a Inner,
    pub(super) rec: DeploymentRecord,
    pub(super) control: Arc<Control>,
    /// Approvals consumed by this run's approval steps.
    pub(super) approvals_used: u64,
    /// Healthy and registered instances of the new fleet, as last read.
    pub(super) last_health: Option<(usize, usize)>,
}

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
    /// [`Phase::RolledBack`].
    ///
    /// Returns `Ok` with the [`Outcome`] once the deployment has ended either way.
    ///
    /// # Errors
    /// - [`Error::InvalidInput`] naming the field, for bad input or an image that does not
    ///   resolve; nothing is created.
    /// - [`Error::Locked`] at once if another deployment of the service holds its lease.
    /// - [`Error::Conflict`] if an unfinished deployment of the service exists (resume it), or
    ///   the service's traffic is split between several targets.
    /// - Any error that stops the deployment with its record left resumable.
    pub async fn deploy(&self, request: DeploymentRequest) -> Result<Report> {
        let spec = request.validate()?;
        self.inner.strategy_for(&spec.strategy)?;
        let id = DeploymentId::generate();
        let span = tracing::info_span!("deploy", deployment = %id, service = %spec.service);
        async move {
            let inner = &*self.inner;
            let guard = ControlGuard::new(inner, &id);
            let now = inner.clock.now();
            inner.emit_for(
                &id,
                &spec.service,
                EventKind::PhaseEntered { phase: Phase::Plan },
            );
            let image = inner
                .call(&id, &spec.service, "resolve image", || {
                    inner.images.resolve(&spec.service, &spec.image)
                })
                .await
                .map_err(|e| match e {
                    Error::NotFound { .. } => Error::invalid(
                        "image",
                        format!(
                            "no image of service `{}` matches {}",
                            spec.service, spec.image
                        ),
                    ),
                    other => other,
                })?;
            let lease = inner.acquire_lease(&spec.service, &id).await?;
            let planned = async {
                inner.refuse_unfinished(&spec.service).await?;
                let blue = inner.discover_blue(&id, &spec.service).await?;
                let mut rec = DeploymentRecord::new(id.clone(), spec, image, blue, now);
                rec.enter(Phase::Provision, inner.clock.now(), None);
                inner.store.save(&mut rec).await?;
                inner.emit_for(
                    &id,
                    rec.service(),
                    EventKind::Planned {
                        image: rec.image.id.clone(),
                        capacity: rec.spec.capacity,
                        blue: rec.blue.as_ref().map(|b| b.fleet.clone()),
                    },
                );
                inner.emit_for(
                    &id,
                    rec.service(),
                    EventKind::PhaseEntered {
                        phase: Phase::Provision,
                    },
                );
                Ok(rec)
            }
            .await;
            match planned {
                Ok(rec) => inner.run(rec, lease, Arc::clone(&guard.control)).await,
                Err(e) => {
                    let _ = inner.store.release_lease(&lease).await;
                    Err(e)
                }
            }
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

    pub(super) async fn acquire_lease(
        &self,
        service: &ServiceName,
        id: &DeploymentId,
    ) -> Result<Lease> {
        let holder = format!("engine-{}", ulid::Ulid::new().to_string().to_lowercase());
        let grant = self
            .store
            .acquire_lease(
                service,
                id,
                &holder,
                self.settings.lease_ttl,
                self.clock.now(),
            )
            .await?;
        if let Some(old) = grant.replaced {
            self.emit_for(
                id,
                service,
                EventKind::LeaseTakenOver {
                    previous_holder: old.holder,
                    previous_deployment: old.deployment,
                },
            );
        }
        Ok(grant.lease)
    }

    /// Renews the lease every third of its time-to-live; returns only when it is lost.
    async fn keep_lease(&self, mut lease: Lease) -> Error {
        let ttl = self.settings.lease_ttl;
        loop {
            tokio::time::sleep(ttl / 3).await;
            match self
                .settings
                .retry
                .run(
                    || self.store.renew_lease(&lease, ttl, self.clock.now()),
                    |_, _, _| {},
                )
                .await
            {
                Ok(renewed) => lease = renewed,
                Err(e) => return e,
            }
        }
    }

    async fn refuse_unfinished(&self, service: &ServiceName) -> Result<()> {
        let records = self.store.unfinished(Some(service)).await?;
        match records.first() {
            Some(r) => Err(Error::UnfinishedDeployment {
                service: service.clone(),
                deployment: r.id.clone(),
                phase: r.phase,
            }),
            None => Ok(()),
        }
    }

    /// Finds the fleet that takes all of the service's traffic now, if any.
    async fn discover_blue(
        &self,
        id: &DeploymentId,
        service: &ServiceName,
    ) -> Result<Option<Blue>> {
        let routing = self
            .call(id, service, "read routing", || self.router.routing(service))
            .await?;
        if routing.is_empty() {
            return Ok(None);
        }
        let Some(target) = routing.sole_target() else {
            return Err(Error::TrafficSplit {
                service: service.clone(),
                routing,
            });
        };
        let targets = self
            .call(id, service, "list targets", || self.router.targets(service))
            .await?;
        let Some(target) = targets.into_iter().find(|t| &t.id == target) else {
            return Err(Error::ServingTargetNotOwned {
                service: service.clone(),
                target: target.clone(),
            });
        };
        let fleet = self
            .call(id, service, "describe fleet", || {
                self.fleet.describe(service, &target.fleet)
            })
            .await?;
        Ok(Some(Blue {
            fleet: fleet.id,
            target: target.id,
            image: fleet.image,
        }))
    }

    /// Drives `rec` to its end with the lease kept alive, then releases the lease.
    pub(super) async fn run(
        &self,
        rec: DeploymentRecord,
        lease: Lease,
        control: Arc<Control>,
    ) -> Result<Report> {
        let mut run = Run {
            engine: self,
            rec,
            control,
            approvals_used: 0,
            last_health: None,
        };
        let result = tokio::select! {
            biased;
            outcome = run.drive() => outcome,
            lost = self.keep_lease(lease.clone()) => Err(lost),
        };
        let _ = self.store.release_lease(&lease).await;
        run.control.finish(Some(run.rec.phase));
        result.map(|outcome| Report {
            outcome,
            record: run.rec,
        })
    }
}

pub(super) fn retrying(
    operation: &str,
    attempt: u32,
    error: &Error,
    backoff: Duration,
) -> EventKind {
    EventKind::Retrying {
        operation: operation.to_owned(),
        attempt,
        error: error.to_string(),
        backoff,
    }
}

impl Run<'_> {
    async fn drive(&mut self) -> Result<Outcome> {
        loop {
            let phase = self.rec.phase;
            let step = match phase {
                Phase::Done | Phase::RolledBack | Phase::Stopped => {
                    return Ok(self.rec.outcome().expect("terminal phases have an outcome"));
                }
                Phase::RollingBack => self.roll_back().await.map_err(Stop::Interrupted),
                Phase::Plan | Phase::Provision => self.provision().await,
                Phase::Attach => self.attach().await,
                Phase::AwaitHealthy => self.await_healthy().await,
                Phase::Rollout => self.rollout().await,
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

    pub(super) fn emit(&self, kind: EventKind) {
        self.engine.emit_for(&self.rec.id, self.rec.service(), kind);
    }

    pub(super) fn now(&self) -> SystemTime {
        self.engine.clock.now()
    }

    /// Enters `phase` and persists the record.
    pub(super) async fn advance(&mut self, phase: Phase, note: Option<String>) -> Result<()> {
        let now = self.now();
        self.rec.enter(phase, now, note);
        self.engine.store.save(&mut self.rec).await?;
        self.emit(EventKind::PhaseEntered { phase });
        Ok(())
    }

    /// Persists the record without a phase change.
    pub(super) async fn persist(&mut self) -> Result<()> {
        self.engine.store.save(&mut self.rec).await
    }

    /// A forward backend call under the retry policy.
    pub(super) async fn call<T, F, Fut>(&self, operation: &'static str, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.engine
            .call(&self.rec.id, self.rec.service(), operation, op)
            .await
    }

    /// A cleanup call: retried on any error but `NotFound`, which counts as done (the thing to
    /// remove is already gone).
    pub(super) async fn cleanup<F, Fut>(&self, operation: &'static str, op: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        match self.cleanup_read(operation, op).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// A read during cleanup, retried on any error but `NotFound`.
    pub(super) async fn cleanup_read<T, F, Fut>(&self, operation: &'static str, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.engine
            .settings
            .cleanup_retry
            .run_if(
                op,
                |e| !e.is_not_found(),
                |attempt, error, backoff| {
                    self.emit(retrying(operation, attempt, error, backoff));
                },
            )
            .await
    }

    /// Sleeps for `duration`, or until an operator command arrives.
    pub(super) async fn sleep_or_command(&self, duration: Duration) {
        let mut rx = self.control.tx.subscribe();
        tokio::select! {
            biased;
            _ = tokio::time::sleep(duration) => {}
            _ = rx.changed() => {}
        }
    }

    /// Sleeps until `deadline` on the engine's clock, or for `at_most`, whichever is sooner,
    /// waking early on an operator command; an abort stops the phase.
    pub(super) async fn wait(&self, deadline: SystemTime, at_most: Duration) -> Result<(), Stop> {
        self.check_abort()?;
        self.sleep_or_command(self.left_until(deadline).min(at_most))
            .await;
        self.check_abort()
    }

    /// Stops with a rollback if an operator aborted the deployment.
    pub(super) fn check_abort(&self) -> Result<(), Stop> {
        match self.control.commands().aborted {
            Some(reason) => Err(aborted(reason)),
            None => Ok(()),
        }
    }

    /// Resolves, with the reason, once an operator aborts the deployment.
    pub(super) async fn aborted(&self) -> String {
        let mut rx = self.control.tx.subscribe();
        let reason = rx
            .wait_for(|c| c.aborted.is_some())
            .await
            .map(|c| c.aborted.clone().unwrap_or_default());
        match reason {
            Ok(reason) => reason,
            Err(_) => std::future::pending().await,
        }
    }

    /// Time left until `deadline` on the engine's clock.
    pub(super) fn left_until(&self, deadline: SystemTime) -> Duration {
        deadline.duration_since(self.now()).unwrap_or_default()
    }
}
