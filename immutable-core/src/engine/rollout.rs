//! The Rollout phase: walk the strategy's steps from the recorded step index.

use std::time::SystemTime;

use tracing::instrument;

use super::run::{Run, Stop, provider_failure};
use crate::{
    EventKind, Phase, Progress, RollbackCause, Scaling, Step, StepRecord, Strategy, StrategySpec,
};

impl Run<'_> {
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
            self.honour_halt().await?;
            let Some(step) = self.next_step(strategy.as_ref(), started).await? else {
                break;
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
        self.activate_green().await?;
        self.advance(Phase::Bake, None).await?;
        Ok(())
    }

    /// The step in progress after a resume, or the strategy's next one (`None` ends the
    /// rollout). A custom strategy's choice is recorded before it runs; a step list gives the
    /// same step for the same index after a resume.
    async fn next_step(
        &mut self,
        strategy: &dyn Strategy,
        started: SystemTime,
    ) -> Result<Option<Step>, Stop> {
        if let Some(step) = self.rec.current_step.clone() {
            return Ok(Some(step));
        }
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
        if matches!(self.rec.spec.strategy, StrategySpec::Named(_)) {
            // A custom strategy may take its time to decide: its first shift reads again.
            self.green_verified = false;
        }
        if let Some(step) = &next
            && matches!(self.rec.spec.strategy, StrategySpec::Named(_))
        {
            self.rec.current_step = Some(step.clone());
            self.persist().await?;
        }
        Ok(next)
    }
}

impl Run<'_> {
    /// Lets green's own scaling act, now that it takes all traffic.
    async fn activate_green(&mut self) -> Result<(), Stop> {
        let Some(green) = self.rec.green.fleet.clone() else {
            return Ok(());
        };
        let service = self.rec.service().clone();
        self.call("activate new fleet's scaling", || {
            self.engine
                .fleet
                .set_scaling(&service, &green, Scaling::Active)
        })
        .await
        .map_err(provider_failure(
            Phase::Rollout,
            "letting the new fleet's scaling act",
        ))?;
        Ok(())
    }
}
