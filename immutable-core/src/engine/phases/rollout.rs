//! The Rollout phase: walk the strategy's steps from the recorded step index.

use std::time::SystemTime;

use tracing::instrument;

use crate::engine::run::{Run, Stop, provider_failure};
use crate::engine::wait::GreenHealthy;
use crate::notify::Trigger;
use crate::{
    EventKind, Phase, Progress, RollbackCause, Scaling, Step, StepRecord, Strategy, StrategySpec,
};

impl Run<'_> {
    /// Walks the strategy's steps from the recorded step index. A step is recorded before it
    /// runs and its outcome after, so a resumed rollout re-runs only the step it was in.
    #[instrument(skip_all, fields(deployment = %self.rec.id, service = %self.rec.service()))]
    /// `fresh`: AwaitHealthy's proof that green is healthy, when it ran just before.
    pub(in crate::engine) async fn rollout(
        &mut self,
        fresh: Option<GreenHealthy>,
    ) -> Result<(), Stop> {
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
        // A custom strategy may take its time to decide: its first shift reads again.
        let mut fresh = fresh.filter(|_| matches!(self.rec.spec.strategy, StrategySpec::Steps(_)));
        loop {
            self.check_abort()?;
            if self.honour_halt().await? {
                fresh = None;
            }
            let Some(step) = self.next_step(strategy.as_ref(), started).await? else {
                break;
            };
            self.emit(EventKind::StepStarted {
                index: self.rec.step,
                step: step.clone(),
            });
            let (note, kept) = self.run_step(&step, &green, fresh.take()).await?;
            fresh = kept;
            self.emit(EventKind::StepFinished {
                index: self.rec.step,
                note: note.clone(),
            });
            let index = self.rec.step;
            let description = step.to_string();
            self.notify(Trigger::StepPassed, Some(index.to_string()), |n| {
                n.with_step(index, description)
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
        let (Some(green), Some(scaling)) =
            (self.rec.green.fleet.clone(), self.engine.scaling.clone())
        else {
            return Ok(());
        };
        let service = self.rec.service().clone();
        self.call("activate new fleet's scaling", || {
            scaling.set_scaling(&service, &green, Scaling::Active)
        })
        .await
        .map_err(provider_failure(
            Phase::Rollout,
            "letting the new fleet's scaling act",
        ))?;
        Ok(())
    }
}
