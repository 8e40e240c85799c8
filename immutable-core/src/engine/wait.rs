//! Watching the new fleet: the health check every weight change and wait makes (I1), and the
//! watched wait of pauses.

use std::time::{Duration, SystemTime};

use super::run::{Run, Stop, aborted, provider_failure};
use crate::{Error, EventKind, RollbackCause, TargetId};

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
            self.ensure_green_healthy(green).await?;
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
        let health = Some((report.healthy(), report.instances.len()));
        self.last_health = health;
        if self.rec.health != health {
            self.rec.health = health;
            self.persist().await?;
        }
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
