//! The Attach phase: wait for the new fleet's instances to run, then register them as a
//! target that takes no traffic.

use tracing::instrument;

use crate::engine::run::{Run, Stop, provider_failure};
use crate::{EventKind, InstanceState, Phase, RollbackCause};

impl Run<'_> {
    /// Waits for the green instances to run, then attaches them as a target taking no traffic.
    #[instrument(skip_all, fields(deployment = %self.rec.id, service = %self.rec.service()))]
    pub(in crate::engine) async fn attach(&mut self) -> Result<(), Stop> {
        let service = self.rec.service().clone();
        let fleet_id = self.green_fleet()?;
        let deadline = self.rec.phase_started_at + self.engine.settings.launch_timeout;
        let min_healthy = self.rec.spec.min_healthy as usize;
        let polls = self.backoff();
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
            self.wait(deadline, polls.next(self.now())).await?;
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
}
