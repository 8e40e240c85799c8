//! Rolling back what a failed plan had done, newest first: each deployment that succeeded is
//! followed by a redeployment of the image it replaced (its own bake ended and retired the old
//! fleet), under an id recorded before it starts. Rollbacks are not halted.

use super::event::WaveEventKind;
use super::record::{TargetOutcome, WaveRecord, WaveState};
use super::runner::RunnerInner;
use crate::{DeploymentId, Origin, Result, engine::redeploy_request};

impl RunnerInner {
    /// Rolls back every standing deployment, newest first, then ends the plan.
    pub(super) async fn roll_back_done(&self, rec: &mut WaveRecord) -> Result<()> {
        for (w, t) in rec.standing_newest_first() {
            self.roll_back_target(rec, w, t).await?;
        }
        self.enter(rec, WaveState::RolledBack, None).await
    }

    async fn roll_back_target(&self, rec: &mut WaveRecord, w: usize, t: usize) -> Result<()> {
        let run = rec.targets[w][t].clone();
        let engine = self.engine(&run.engine)?;
        let Some(deployed) = &run.deployment else {
            return Ok(());
        };
        let record = engine.store().load(deployed).await?;
        let Some(request) = redeploy_request(&record) else {
            return self
                .rollback_ended(rec, w, t, TargetOutcome::NothingToRollBack)
                .await;
        };
        let spec = request.validate()?;
        let id = match &run.rollback {
            Some(id) => id.clone(),
            None => {
                let id = DeploymentId::generate();
                rec.targets[w][t].rollback = Some(id.clone());
                self.save(rec).await?;
                id
            }
        };
        self.emit(
            rec,
            WaveEventKind::RollbackStarted {
                wave: w,
                engine: run.engine.clone(),
                deployment: id.clone(),
            },
        );
        let outcome = self
            .start_or_resume(engine, &id, spec, Origin::Rollback)
            .await
            .unwrap_or(TargetOutcome::Failed {
                error: "the rollback was suspended".into(),
            });
        self.rollback_ended(rec, w, t, outcome).await
    }

    async fn rollback_ended(
        &self,
        rec: &mut WaveRecord,
        w: usize,
        t: usize,
        outcome: TargetOutcome,
    ) -> Result<()> {
        rec.targets[w][t].rollback_outcome = Some(outcome.clone());
        self.save(rec).await?;
        self.emit(
            rec,
            WaveEventKind::RollbackEnded {
                wave: w,
                engine: rec.targets[w][t].engine.clone(),
                outcome,
            },
        );
        Ok(())
    }
}
