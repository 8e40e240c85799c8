//! What each phase does: observe, act once, persist.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use tracing::instrument;

use super::runner::{Run, Stop, aborted, provider_failure};
use crate::service::tags;
use crate::{
    CheckContext, CheckOutcome, Error, EventKind, FleetSpec, HealthState, ImageId, InstanceState,
    Labels, OnTimeout, Phase, Progress, Result, RollbackCause, Routing, Step, StepRecord,
    StrategySpec, TargetId,
};

impl Run<'_> {
    /// Launches the green fleet; the deployment id is the idempotency key.
    #[instrument(skip_all, fields(deployment = %self.rec.id, service = %self.rec.service()))]
    pub(super) async fn provision(&mut self) -> Result<(), Stop> {
        let spec = FleetSpec::new(
            self.rec.service().clone(),
            self.rec.id.clone(),
            self.rec.image.id.clone(),
            self.rec.spec.capacity,
        );
        let fleet = self
            .call("launch fleet", || self.engine.fleet.launch(&spec))
            .await
            .map_err(provider_failure(
                Phase::Provision,
                "launching the new fleet",
            ))?;
        self.rec.green.fleet = Some(fleet.id.clone());
        self.emit(EventKind::FleetLaunched {
            fleet: fleet.id,
            instances: fleet.instances.len(),
        });
        self.advance(Phase::Attach, None).await?;
        Ok(())
    }

    /// Waits for the green instances to run, then attaches them as a target taking no traffic.
    #[instrument(skip_all, fields(deployment = %self.rec.id, service = %self.rec.service()))]
    pub(super) async fn attach(&mut self) -> Result<(), Stop> {
        let service = self.rec.service().clone();
        let fleet_id = self.green_fleet()?;
        let deadline = self.rec.phase_started_at + self.engine.settings.launch_timeout;
        let min_healthy = self.rec.spec.min_healthy as usize;
        let fleet = loop {
            let fleet = self
                .call("describe fleet", || {
                    self.engine.fleet.describe(&service, &fleet_id)
                })
                .await
                .map_err(provider_failure(Phase::Attach, "describing the new fleet"))?;
            let running = fleet.count(InstanceState::Running);
            if fleet.count(InstanceState::Pending) == 0 {
                if running < min_healthy {
                    return Err(Stop::RollBack(RollbackCause::TooFewRunning {
                        running,
                        capacity: self.rec.spec.capacity,
                        needed: self.rec.spec.min_healthy,
                    }));
                }
                break fleet;
            }
            if self.left_until(deadline).is_zero() {
                return Err(Stop::RollBack(RollbackCause::LaunchTimeout {
                    running,
                    capacity: self.rec.spec.capacity,
                    after: self.engine.settings.launch_timeout,
                }));
            }
            self.wait(deadline, self.engine.settings.poll_interval)
                .await?;
        };
        let target = self
            .call("attach target", || self.engine.router.attach(&fleet))
            .await
            .map_err(provider_failure(Phase::Attach, "attaching the new fleet"))?;
        self.rec.green.target = Some(target.id.clone());
        self.emit(EventKind::TargetAttached { target: target.id });
        self.advance(Phase::AwaitHealthy, None).await?;
        Ok(())
    }

    /// Waits until `min_healthy` green instances pass health checks, or rolls back at the
    /// health timeout.
    #[instrument(skip_all, fields(deployment = %self.rec.id, service = %self.rec.service()))]
    pub(super) async fn await_healthy(&mut self) -> Result<(), Stop> {
        let target = self.green_target()?;
        let deadline = self.rec.phase_started_at + self.rec.spec.health_timeout;
        let needed = self.rec.spec.min_healthy as usize;
        let mut last = None;
        loop {
            let report = self
                .call("read health", || {
                    self.engine.router.health(self.rec.service(), &target)
                })
                .await
                .map_err(provider_failure(
                    Phase::AwaitHealthy,
                    "reading the new fleet's health",
                ))?;
            let healthy = report.healthy();
            if last != Some(healthy) {
                last = Some(healthy);
                self.emit(EventKind::HealthProgress {
                    target: target.clone(),
                    healthy,
                    needed,
                    total: report.instances.len(),
                });
            }
            if healthy >= needed {
                break;
            }
            if self.left_until(deadline).is_zero() {
                return Err(Stop::RollBack(RollbackCause::HealthTimeout {
                    healthy,
                    unhealthy: report.count(HealthState::Unhealthy),
                    total: report.instances.len(),
                    needed: self.rec.spec.min_healthy,
                    after: self.rec.spec.health_timeout,
                }));
            }
            self.wait(deadline, self.engine.settings.poll_interval)
                .await?;
        }
        self.rec.step = 0;
        self.advance(Phase::Rollout, None).await?;
        Ok(())
    }

    /// Walks the strategy's steps from the recorded step index. A step is recorded before it
    /// runs and its outcome after, so a resumed rollout re-runs only the step it was in.
    #[instrument(skip_all, fields(deployment = %self.rec.id, service = %self.rec.service()))]
    pub(super) async fn rollout(&mut self) -> Result<(), Stop> {
        let green = self.green_target()?;
        let strategy = self
            .engine
            .strategy_for(&self.rec.spec.strategy)
            .map_err(|e| {
                Stop::RollBack(RollbackCause::StrategyFailed {
                    error: e.to_string(),
                })
            })?;
        let started = self
            .rec
            .history
            .last()
            .map_or(self.rec.created_at, |h| h.at);
        loop {
            self.check_abort()?;
            let step = match self.rec.current_step.clone() {
                Some(step) => step,
                None => {
                    let (healthy, registered) = self.last_health.unwrap_or_default();
                    let progress = Progress {
                        index: self.rec.step,
                        weight: self.rec.weight,
                        taken: &self.rec.steps_taken,
                        healthy,
                        registered,
                        elapsed: self.now().duration_since(started).unwrap_or_default(),
                    };
                    let next = strategy.next_step(&progress).await.map_err(|e| {
                        Stop::RollBack(RollbackCause::StrategyFailed {
                            error: e.to_string(),
                        })
                    })?;
                    let Some(step) = next else { break };
                    // A step list gives the same step for the same index after a resume; only a
                    // custom strategy's choice must be recorded before it runs.
                    if matches!(self.rec.spec.strategy, StrategySpec::Named(_)) {
                        self.rec.current_step = Some(step.clone());
                        self.persist().await?;
                    }
                    step
                }
            };
            self.emit(EventKind::StepStarted {
                index: self.rec.step,
                step: step.clone(),
            });
            let note = self.run_step(&step, &green).await?;
            self.emit(EventKind::StepFinished {
                index: self.rec.step,
                note: note.clone(),
            });
            self.rec.steps_taken.push(StepRecord { step, note });
            self.rec.step += 1;
            self.rec.current_step = None;
            // The next step's waits count from here.
            self.rec.phase_started_at = self.now();
            self.persist().await?;
        }
        if self.rec.weight != 100 {
            return Err(Stop::RollBack(RollbackCause::StrategyIncomplete {
                weight: self.rec.weight,
            }));
        }
        self.advance(Phase::Bake, None).await?;
        Ok(())
    }

    async fn run_step(&mut self, step: &Step, green: &TargetId) -> Result<Option<String>, Stop> {
        let service = self.rec.service().clone();
        match step {
            Step::Shift { percent } => {
                self.ensure_green_healthy(green).await?;
                // A first deployment has no old fleet to share traffic with: all of it goes.
                let (routing, percent, note) = match &self.rec.blue {
                    Some(blue) => (
                        Routing::split(Some(&blue.target), green, *percent)?,
                        *percent,
                        None,
                    ),
                    None => (
                        Routing::all_to(green),
                        100,
                        (*percent < 100)
                            .then(|| "first deployment: all traffic at once".to_owned()),
                    ),
                };
                self.call("set weights", || {
                    self.engine.router.set_weights(&service, &routing)
                })
                .await
                .map_err(provider_failure(Phase::Rollout, "shifting traffic"))?;
                self.rec.weight = percent;
                self.emit(EventKind::WeightsSet { routing });
                Ok(note)
            }
            Step::Pause { duration } => {
                let cut_short = self
                    .watch_until(green, self.rec.phase_started_at + *duration)
                    .await?;
                Ok(cut_short.then(|| "promoted: pause skipped".to_owned()))
            }
            Step::Checks { names } => {
                for name in names {
                    self.run_check(name, green).await?;
                }
                Ok(Some(format!("passed: {}", names.join(", "))))
            }
            Step::Approval {
                timeout,
                on_timeout,
            } => self.await_approval(*timeout, *on_timeout).await.map(Some),
            Step::Preview => {
                let result = self
                    .call("route preview", || {
                        self.engine.router.preview(&service, Some(green))
                    })
                    .await;
                match result {
                    Ok(()) => {
                        self.rec.previewed = true;
                        self.emit(EventKind::PreviewRouted {
                            target: green.clone(),
                        });
                        Ok(None)
                    }
                    // No preview entry point on this router: nothing to route. Any other error
                    // (a misconfigured preview listener) rolls back: checks meant for the new
                    // fleet would probe whatever the preview still points at.
                    Err(Error::NotSupported { message, .. }) => {
                        self.emit(EventKind::PreviewSkipped {
                            reason: message.clone(),
                        });
                        Ok(Some(format!("skipped: {message}")))
                    }
                    Err(e) => Err(provider_failure(Phase::Rollout, "routing the preview")(e)),
                }
            }
        }
    }

    async fn run_check(&self, name: &str, green: &TargetId) -> Result<(), Stop> {
        let Some(check) = self.engine.checks.get(name) else {
            return Err(Stop::RollBack(RollbackCause::CheckNotRegistered {
                check: name.to_owned(),
            }));
        };
        let ctx = CheckContext {
            deployment: &self.rec.id,
            service: self.rec.service(),
            target: green,
            weight: self.rec.weight,
            router: self.engine.router.as_ref(),
            image: Some(&self.rec.image.id),
        };
        let outcome = tokio::select! {
            biased;
            outcome = check.run(&ctx) => outcome,
            reason = self.aborted() => return Err(aborted(reason)),
        };
        self.emit(EventKind::CheckResult {
            name: name.to_owned(),
            outcome: outcome.clone(),
        });
        match outcome {
            CheckOutcome::Pass => Ok(()),
            CheckOutcome::Fail { reason } => Err(Stop::RollBack(RollbackCause::CheckFailed {
                check: name.to_owned(),
                weight: self.rec.weight,
                reason,
            })),
        }
    }

    async fn await_approval(
        &mut self,
        timeout: Duration,
        on_timeout: OnTimeout,
    ) -> Result<String, Stop> {
        let deadline = self.rec.phase_started_at + timeout;
        self.emit(EventKind::ApprovalRequested {
            index: self.rec.step,
            timeout,
        });
        let mut overdue = false;
        loop {
            let c = self.control.commands();
            if let Some(reason) = c.aborted {
                return Err(aborted(reason));
            }
            if let Some(reason) = c.rejected {
                self.emit(EventKind::Rejected {
                    reason: reason.clone(),
                });
                return Err(Stop::RollBack(RollbackCause::ApprovalRejected { reason }));
            }
            if c.approvals > self.approvals_used {
                self.approvals_used += 1;
                self.emit(EventKind::Approved);
                return Ok("approved".into());
            }
            if c.promoted {
                return Ok("promoted".into());
            }
            if !overdue && self.left_until(deadline).is_zero() {
                match on_timeout {
                    OnTimeout::RollBack => {
                        return Err(Stop::RollBack(RollbackCause::ApprovalOverdue {
                            waited: timeout,
                        }));
                    }
                    _ => {
                        overdue = true;
                        self.emit(EventKind::ApprovalOverdue { waited: timeout });
                    }
                }
            }
            let wait = if overdue {
                Duration::MAX
            } else {
                self.left_until(deadline)
            };
            self.sleep_or_command(wait).await;
        }
    }

    /// Detaches and terminates blue, marks the image promoted, applies retention.
    #[instrument(skip_all, fields(deployment = %self.rec.id, service = %self.rec.service()))]
    pub(super) async fn retire(&mut self) -> Result<()> {
        let service = self.rec.service().clone();
        if self.rec.previewed {
            match self
                .cleanup("clear preview", || {
                    self.engine.router.preview(&service, None)
                })
                .await
            {
                Ok(_) | Err(crate::Error::NotSupported { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(blue) = self.rec.blue.clone() {
            self.cleanup("detach old target", || {
                self.engine.router.detach(&service, &blue.target)
            })
            .await?;
            self.emit(EventKind::TargetDetached {
                target: blue.target.clone(),
            });
            self.cleanup("terminate old fleet", || {
                self.engine.fleet.terminate(&service, &blue.fleet)
            })
            .await?;
            self.emit(EventKind::FleetTerminated {
                fleet: blue.fleet.clone(),
            });
            if !self.rec.retired.fleets.contains(&blue.fleet) {
                self.rec.retired.fleets.push(blue.fleet);
                self.rec.retired.targets.push(blue.target);
            }
        }
        if self.rec.image.service.as_ref() == Some(&service) {
            let labels = Labels::from([(tags::PROMOTED.to_owned(), self.rec.id.to_string())]);
            self.cleanup("label image", || {
                self.engine
                    .images
                    .label(&service, &self.rec.image.id, &labels)
            })
            .await?;
        }
        self.apply_retention().await?;
        self.advance(Phase::Done, None).await?;
        let fleet = self.green_fleet().map_err(|_| {
            crate::Error::store(
                format!("the record of deployment {} has no new fleet", self.rec.id),
                None,
            )
        })?;
        self.emit(EventKind::Completed {
            fleet,
            image: self.rec.image.id.clone(),
        });
        Ok(())
    }

    /// Retires the service's images beyond the newest `keep_images`, keeping any in use, the
    /// one just deployed and the one it replaced.
    async fn apply_retention(&mut self) -> Result<()> {
        let service = self.rec.service().clone();
        let engine = self.engine;
        let mut images = self
            .cleanup_read("list images", || engine.images.list(&service))
            .await?;
        let fleets = self
            .cleanup_read("list fleets", || engine.fleet.list(&service))
            .await?;
        let mut keep: BTreeSet<ImageId> = fleets.into_iter().map(|f| f.image).collect();
        keep.insert(self.rec.image.id.clone());
        if let Some(blue) = &self.rec.blue {
            keep.insert(blue.image.clone());
        }
        images.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        for image in images.into_iter().skip(engine.settings.keep_images) {
            if keep.contains(&image.id) {
                continue;
            }
            match self
                .cleanup("retire image", || engine.images.retire(&service, &image.id))
                .await
            {
                Ok(_) => {
                    self.emit(EventKind::ImageRetired {
                        image: image.id.clone(),
                    });
                    if !self.rec.retired.images.contains(&image.id) {
                        self.rec.retired.images.push(image.id);
                    }
                }
                // An instance outside our fleets still uses it; retention leaves it be. Any other
                // refusal stops retention with the record left at Retire, to resume.
                Err(crate::Error::ImageInUse { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Waits until `deadline`, rolling back if green drops below `min_healthy` or the
    /// deployment is aborted. Returns `true` if a promotion cut the wait short.
    async fn watch_until(&mut self, green: &TargetId, deadline: SystemTime) -> Result<bool, Stop> {
        loop {
            self.ensure_green_healthy(green).await?;
            if self.control.commands().promoted {
                self.emit(EventKind::Promoted);
                return Ok(true);
            }
            if self.left_until(deadline).is_zero() {
                return Ok(false);
            }
            self.wait(deadline, self.engine.settings.poll_interval)
                .await?;
        }
    }

    /// Invariant I1: traffic goes only to a target with `min_healthy` healthy instances.
    pub(super) async fn ensure_green_healthy(&mut self, green: &TargetId) -> Result<(), Stop> {
        let report = self
            .call("read health", || {
                self.engine.router.health(self.rec.service(), green)
            })
            .await
            .map_err(provider_failure(
                self.rec.phase,
                "reading the new fleet's health",
            ))?;
        let needed = self.rec.spec.min_healthy as usize;
        self.last_health = Some((report.healthy(), report.instances.len()));
        if report.healthy() < needed {
            return Err(Stop::RollBack(RollbackCause::NewFleetUnhealthy {
                healthy: report.healthy(),
                total: report.instances.len(),
                needed: self.rec.spec.min_healthy,
                phase: self.rec.phase,
            }));
        }
        Ok(())
    }

    pub(super) fn green_fleet(&self) -> Result<crate::FleetId, Stop> {
        self.rec.green.fleet.clone().ok_or_else(|| {
            Stop::RollBack(RollbackCause::RecordIncomplete {
                missing: "new fleet".into(),
            })
        })
    }

    pub(super) fn green_target(&self) -> Result<TargetId, Stop> {
        self.rec.green.target.clone().ok_or_else(|| {
            Stop::RollBack(RollbackCause::RecordIncomplete {
                missing: "new target".into(),
            })
        })
    }
}
