//! The AwaitHealthy phase: wait until `min_healthy` instances of the new fleet pass their
//! health checks, or roll back at the health timeout.

use tracing::instrument;

use crate::engine::run::{Run, Stop, provider_failure};
use crate::engine::wait::GreenHealthy;
use crate::{EventKind, HealthState, Phase, RollbackCause};

impl Run<'_> {
    /// Waits until `min_healthy` green instances pass health checks, or rolls back at the
    /// health timeout.
    #[instrument(skip_all, fields(deployment = %self.rec.id, service = %self.rec.service()))]
    pub(in crate::engine) async fn await_healthy(&mut self) -> Result<GreenHealthy, Stop> {
        let target = self.green_target()?;
        let deadline = self.rec.phase_started_at + self.rec.spec.health_timeout;
        let needed = self.rec.spec.min_healthy as usize;
        let mut last = None;
        let polls = self.backoff();
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
                // Status readers in other processes see the progress.
                self.rec.health = Some((healthy, report.instances.len()));
                self.persist().await?;
                self.emit(EventKind::HealthProgress {
                    target: target.clone(),
                    healthy,
                    needed,
                    total: report.instances.len(),
                });
            }
            if let Some(proof) = self.green_healthy(&report) {
                self.last_health = Some((healthy, report.instances.len()));
                self.rec.step = 0;
                self.advance(Phase::Rollout, None).await?;
                return Ok(proof);
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
            self.wait(deadline, polls.next(self.now())).await?;
        }
    }
}
