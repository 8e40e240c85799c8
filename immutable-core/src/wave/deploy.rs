//! Running one wave: its deployments at once (bounded), each under an id recorded before it
//! starts; a failure halts the service and aborts the wave's other deployments; a halt found
//! meanwhile stops the wave where it stands. A wave is done only when every deployment has an
//! outcome: one refused or suspended under a halt leaves it unfinished.

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::event::WaveEventKind;
use super::record::{TargetOutcome, TargetRun, WaveFailure, WaveRecord, WaveState};
use super::runner::RunnerInner;
use crate::engine::Command;
use crate::{DeploymentId, DeploymentSpec, Engine, Error, Halt, HaltScope, OnHalt, Origin, Result};

/// What one deployment of the wave came to: an outcome, or nothing yet (suspended under a
/// halt, to be resumed with the plan).
type Ended = (usize, Option<TargetOutcome>);

impl RunnerInner {
    /// Runs the current wave's deployments that have not ended; then fails the plan, stops
    /// for a halt, bakes, or ends.
    pub(super) async fn run_wave(&self, rec: &mut WaveRecord) -> Result<()> {
        let w = rec.wave;
        if rec.failure.is_none()
            && let Some(halt) = self.halt_of(&rec.plan.service).await?
        {
            return self.stop_for_halt(rec, halt).await;
        }
        self.assign_ids(rec).await?;
        // A runner cut off between recording a failed deployment and failing the plan finds
        // the failure here.
        self.fail_on_first_failure(rec).await?;
        let halted = self.deploy_pending(rec).await?;
        if rec.failure.is_some() {
            return self.after_failure(rec).await;
        }
        if let Some(halt) = halted {
            return self.stop_for_halt(rec, halt).await;
        }
        if rec.targets[w].iter().any(|run| run.outcome.is_none()) {
            // Refused or suspended under a halt that landed after this runner last read halts:
            // the wave is not done. Run it again after a poll; its start stops for the halt.
            tokio::time::sleep(self.poll_interval).await;
            return Ok(());
        }
        if w + 1 == rec.plan.waves.len() {
            return self.enter(rec, WaveState::Done, None).await;
        }
        rec.bake_until = Some(self.now() + rec.plan.bake.time);
        rec.bake_passes = 0;
        self.enter(rec, WaveState::Baking, None).await
    }

    /// Gives every deployment of the wave its id and saves them, once, before any starts.
    async fn assign_ids(&self, rec: &mut WaveRecord) -> Result<()> {
        let w = rec.wave;
        if rec.targets[w].iter().all(|t| t.deployment.is_some()) {
            return Ok(());
        }
        for run in &mut rec.targets[w] {
            run.deployment.get_or_insert_with(DeploymentId::generate);
        }
        self.save(rec).await?;
        let wave = &rec.plan.waves[w];
        self.emit(
            rec,
            WaveEventKind::WaveStarted {
                wave: w,
                name: wave.name.clone(),
                engines: wave.targets.iter().map(|t| t.engine.clone()).collect(),
            },
        );
        Ok(())
    }

    /// Runs the wave's unfinished deployments, `concurrency` at once, recording each end.
    /// Returns the halt that stopped the wave, if one did.
    async fn deploy_pending(&self, rec: &mut WaveRecord) -> Result<Option<Halt>> {
        let w = rec.wave;
        let mut queue: Vec<usize> = (0..rec.targets[w].len())
            .filter(|t| rec.targets[w][*t].outcome.is_none())
            .rev()
            .collect();
        let mut running = FuturesUnordered::new();
        let mut halted = None;
        let mut poll = tokio::time::interval(self.poll_interval);
        poll.tick().await;
        loop {
            while running.len() < rec.plan.concurrency && halted.is_none() {
                let Some(t) = queue.pop() else { break };
                running.push(self.deploy_target(rec, t));
            }
            if running.is_empty() {
                return Ok(halted);
            }
            tokio::select! {
                Some((t, outcome)) = running.next() => {
                    self.record_end(rec, t, outcome).await?;
                }
                _ = poll.tick(), if halted.is_none() => {
                    if rec.failure.is_some() {
                        // Deployments that had no record when the abort went out get it now.
                        self.abort_unfinished(rec).await;
                    } else if let Some(halt) = self.halt_of(&rec.plan.service).await? {
                        self.suspend_held(rec);
                        queue.clear();
                        halted = Some(halt);
                    }
                }
            }
        }
    }

    /// Records how deployment `t` of the wave ended; the first failure fails the plan.
    async fn record_end(
        &self,
        rec: &mut WaveRecord,
        t: usize,
        outcome: Option<TargetOutcome>,
    ) -> Result<()> {
        let w = rec.wave;
        let Some(outcome) = outcome else {
            return Ok(());
        };
        rec.targets[w][t].outcome = Some(outcome.clone());
        self.save(rec).await?;
        self.emit(
            rec,
            WaveEventKind::DeploymentEnded {
                wave: w,
                engine: rec.targets[w][t].engine.clone(),
                outcome,
            },
        );
        self.fail_on_first_failure(rec).await
    }

    /// Fails the plan for the first deployment of the wave that ended without succeeding,
    /// unless it has failed already.
    async fn fail_on_first_failure(&self, rec: &mut WaveRecord) -> Result<()> {
        if rec.failure.is_some() {
            return Ok(());
        }
        let w = rec.wave;
        let first = rec.targets[w].iter().find_map(|run| {
            let outcome = run.outcome.as_ref().filter(|o| !o.succeeded())?;
            Some(WaveFailure::Deployment {
                wave: w,
                engine: run.engine.clone(),
                outcome: outcome.clone(),
            })
        });
        match first {
            Some(failure) => self.fail(rec, failure).await,
            None => Ok(()),
        }
    }

    /// One deployment of the wave: started under its recorded id, or resumed; after a failure
    /// of the plan, aborted (or skipped, if it never started).
    fn deploy_target(&self, rec: &WaveRecord, t: usize) -> impl Future<Output = Ended> + use<'_> {
        let w = rec.wave;
        let run = rec.targets[w][t].clone();
        let spec = rec.plan.waves[w].targets[t].request.clone();
        let failure = rec.failure.clone();
        let id = run.deployment.clone().expect("ids are assigned first");
        self.emit(
            rec,
            WaveEventKind::DeploymentStarted {
                wave: w,
                engine: run.engine.clone(),
                deployment: id.clone(),
            },
        );
        async move {
            let engine = match self.engine(&run.engine) {
                Ok(e) => e,
                Err(e) => return (t, Some(failed(e))),
            };
            if let Some(failure) = failure {
                let reason = format!("the wave plan failed: {failure}");
                match engine.command(&id, Command::Abort { reason }).await {
                    Err(e) if e.is_not_found() => return (t, Some(TargetOutcome::Skipped)),
                    _ => {}
                }
            }
            (
                t,
                self.start_or_resume(engine, &id, spec, Origin::Deployed)
                    .await,
            )
        }
    }

    /// Starts deployment `id` on `engine`, or resumes it if its record exists (a crashed
    /// runner started it), or reads how it ended. `None` when a halt suspended it.
    pub(super) async fn start_or_resume(
        &self,
        engine: &Engine,
        id: &DeploymentId,
        spec: DeploymentSpec,
        origin: Origin,
    ) -> Option<TargetOutcome> {
        let result = match engine.store().load(id).await {
            Ok(_) => self.resume_patiently(engine, id).await,
            Err(e) if e.is_not_found() => engine.deploy_as(id.clone(), spec, origin).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(report) => Some(report.outcome.into()),
            Err(Error::Suspended { .. } | Error::Halted { .. }) => None,
            Err(e) => Some(failed(e)),
        }
    }

    /// Resumes `id`, waiting out the lease a crashed runner left (it lapses within the
    /// engine's lease time).
    async fn resume_patiently(&self, engine: &Engine, id: &DeploymentId) -> Result<crate::Report> {
        let deadline = self.now() + engine.settings().lease_ttl * 2;
        loop {
            match engine.resume(id).await {
                Err(Error::Locked { .. }) if self.now() < deadline => {
                    tokio::time::sleep(self.poll_interval).await;
                }
                other => return other,
            }
        }
    }

    /// Under a halt found by the runner: suspends the wave's deployments whose engine holds
    /// under halts (they would wait for the lift); those that roll back are left to.
    fn suspend_held(&self, rec: &WaveRecord) {
        for (engine, id) in self.unfinished(rec) {
            if engine.settings().on_halt == OnHalt::Hold {
                let _ = engine.suspend(id);
            }
        }
    }

    /// The current wave's deployments that started and have not ended, with their engines.
    fn unfinished<'a>(
        &'a self,
        rec: &'a WaveRecord,
    ) -> impl Iterator<Item = (&'a Engine, &'a DeploymentId)> + 'a {
        rec.targets[rec.wave].iter().filter_map(|run| match run {
            TargetRun {
                outcome: None,
                deployment: Some(id),
                ..
            } => Some((self.engine(&run.engine).ok()?, id)),
            _ => None,
        })
    }

    /// Fails the plan: records why and halts the service in the shared store, so that every
    /// engine and runner stops advancing it.
    pub(super) async fn fail(&self, rec: &mut WaveRecord, failure: WaveFailure) -> Result<()> {
        // A halt that stands already (an operator's) is kept as it is: who set it, and why.
        let halt = match self.halt_of(&rec.plan.service).await? {
            Some(standing) => standing,
            None => Halt::new(
                HaltScope::Service(rec.plan.service.clone()),
                failure.to_string(),
                format!("wave plan {}", rec.id),
                self.now(),
            ),
        };
        rec.failure = Some(failure.clone());
        rec.halt = Some(halt.clone());
        self.save(rec).await?;
        crate::store::halts_of(&*self.store, "halt")?
            .set_halt(&halt)
            .await?;
        self.emit(rec, WaveEventKind::Failed { failure });
        self.emit(rec, WaveEventKind::Halted { halt });
        self.abort_unfinished(rec).await;
        Ok(())
    }

    /// Aborts the wave's deployments that have not ended (a command to one that has no
    /// record yet, or has ended, is refused and ignored).
    async fn abort_unfinished(&self, rec: &WaveRecord) {
        for (engine, id) in self.unfinished(rec) {
            let reason = "the wave plan failed".to_owned();
            let _ = engine.command(id, Command::Abort { reason }).await;
        }
    }

    /// After a failure: ends the plan, or rolls back what was done, as its policy says.
    pub(super) async fn after_failure(&self, rec: &mut WaveRecord) -> Result<()> {
        if let Some(halt) = &rec.halt {
            crate::store::halts_of(&*self.store, "halt")?
                .set_halt(halt)
                .await?;
        }
        let next = match rec.plan.on_failure {
            super::OnWaveFailure::HaltRest => WaveState::Failed,
            super::OnWaveFailure::RollBackDone => WaveState::RollingBack,
        };
        let note = rec.failure.as_ref().map(ToString::to_string);
        self.enter(rec, next, note).await
    }

    /// Stops the plan where it stands under someone else's halt; resumable once lifted.
    pub(super) async fn stop_for_halt(&self, rec: &mut WaveRecord, halt: Halt) -> Result<()> {
        rec.halt = Some(halt.clone());
        self.emit(rec, WaveEventKind::Halted { halt: halt.clone() });
        self.enter(rec, WaveState::Halted, Some(halt.to_string()))
            .await
    }
}

fn failed(e: Error) -> TargetOutcome {
    TargetOutcome::Failed {
        error: e.to_string(),
    }
}
