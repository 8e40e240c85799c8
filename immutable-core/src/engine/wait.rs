//! Watching the new fleet: the health check every weight change and wait makes (I1), and the
//! watched wait of pauses.

use std::time::{Duration, SystemTime};

use super::run::{Run, Stop, aborted, provider_failure};
use crate::{Error, EventKind, HealthReport, RollbackCause, Routing, ServiceName, TargetId};

/// Proof that the new fleet was just read with `min_healthy` healthy instances (I1). Only a
/// health read makes one ([`Run::green_healthy`], [`Run::ensure_green_healthy`]); a weight
/// change takes one by value, so each read serves at most one change. AwaitHealthy's last read
/// is handed to the rollout as a value and passed from step to step only across the preview
/// (one routing call that waits for nothing); any other step, a hold under a halt, or a custom
/// strategy's decision drops it, and the next shift reads again.
#[must_use]
pub(super) struct GreenHealthy(());

impl Run<'_> {
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
    /// A halt is honoured first.
    pub(super) async fn wait(
        &mut self,
        deadline: SystemTime,
        at_most: Duration,
    ) -> Result<(), Stop> {
        self.check_abort()?;
        self.honour_halt().await?;
        self.sleep_or_command(self.left_until(deadline).min(at_most))
            .await;
        self.check_abort()
    }

    /// Stops with a rollback if an operator aborted the deployment, or short (resumable) if
    /// this process suspended it.
    pub(super) fn check_abort(&self) -> Result<(), Stop> {
        let c = self.control.commands();
        if let Some(reason) = c.aborted {
            return Err(aborted(reason));
        }
        if c.suspended {
            return Err(Stop::Interrupted(Error::Suspended {
                deployment: self.rec.id.clone(),
                phase: self.rec.phase,
            }));
        }
        Ok(())
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

    /// Waits until `deadline`, rolling back if green drops below `min_healthy` or the
    /// deployment is aborted. Returns `true` if a promotion cut the wait short.
    pub(super) async fn watch_until(
        &mut self,
        green: &TargetId,
        deadline: SystemTime,
    ) -> Result<bool, Stop> {
        let polls = self.backoff();
        loop {
            self.watch_green(green).await?;
            if self.control.commands().promoted {
                self.emit(EventKind::Promoted);
                return Ok(true);
            }
            if self.left_until(deadline).is_zero() {
                return Ok(false);
            }
            self.wait(deadline, polls.next(self.now())).await?;
        }
    }

    /// A forward weight change: made only with a proof that green is healthy (I1), which it
    /// consumes.
    pub(super) async fn shift_weights(
        &self,
        service: &ServiceName,
        routing: &Routing,
        proof: GreenHealthy,
    ) -> Result<(), Error> {
        let GreenHealthy(()) = proof;
        self.call("set weights", || {
            self.engine.router.set_weights(service, routing)
        })
        .await
    }

    /// Watches green while it takes traffic: rolls back when it has fewer than `min_healthy`
    /// healthy instances.
    pub(super) async fn watch_green(&mut self, green: &TargetId) -> Result<(), Stop> {
        self.ensure_green_healthy(green).await.map(drop)
    }

    /// Proof that green has `min_healthy` healthy instances in `report`, if it has.
    pub(super) fn green_healthy(&self, report: &HealthReport) -> Option<GreenHealthy> {
        (report.healthy() >= self.rec.spec.min_healthy as usize).then_some(GreenHealthy(()))
    }

    /// Invariant I1: traffic goes only to a target with `min_healthy` healthy instances. Reads
    /// green's health now, and proves it or rolls back.
    pub(super) async fn ensure_green_healthy(
        &mut self,
        green: &TargetId,
    ) -> Result<GreenHealthy, Stop> {
        let report = self
            .call("read health", || {
                self.engine.router.health(self.rec.service(), green)
            })
            .await
            .map_err(provider_failure(
                self.rec.phase,
                "reading the new fleet's health",
            ))?;
        let health = Some((report.healthy(), report.instances.len()));
        self.last_health = health;
        if self.rec.health != health {
            self.rec.health = health;
            self.persist().await?;
        }
        self.green_healthy(&report).ok_or_else(|| {
            Stop::RollBack(RollbackCause::NewFleetUnhealthy {
                healthy: report.healthy(),
                total: report.instances.len(),
                needed: self.rec.spec.min_healthy,
                phase: self.rec.phase,
            })
        })
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
