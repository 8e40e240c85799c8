//! The bake between waves: time, and gate checks run against every deployment of the wave
//! just done. A failed check fails the plan. A bake lasts its time and until `min_passes`
//! rounds have passed: one that ends its time short of them (its runner was down for part of
//! it, or rounds did not fit) goes on, a round every interval, until they have. A halt stops
//! the bake where it stands.

use std::time::SystemTime;

use super::event::WaveEventKind;
use super::record::{WaveFailure, WaveRecord, WaveState};
use super::runner::RunnerInner;
use crate::{CheckContext, CheckOutcome, Result};

impl RunnerInner {
    /// Bakes the current wave until its end time and its passes are in, then moves to the
    /// next wave.
    pub(super) async fn bake(&self, rec: &mut WaveRecord) -> Result<()> {
        let until = rec.bake_until.unwrap_or_else(|| self.now());
        let bake = rec.plan.bake.clone();
        let mut next_gate = self.now();
        let mut extended = false;
        loop {
            if let Some(halt) = self.halt_of(&rec.plan.service).await? {
                return self.stop_for_halt(rec, halt).await;
            }
            let now = self.now();
            let short = rec.bake_passes < bake.min_passes;
            if now >= until && short && !extended {
                extended = true;
                self.emit(
                    rec,
                    WaveEventKind::BakeExtended {
                        wave: rec.wave,
                        passes: rec.bake_passes,
                        needed: bake.min_passes,
                    },
                );
            }
            if !bake.checks.is_empty() && now >= next_gate && (now < until || short) {
                if let Some(failure) = self.gate_round(rec).await? {
                    self.fail(rec, failure).await?;
                    return self.after_failure(rec).await;
                }
                next_gate = now + bake.interval;
            }
            if now >= until && rec.bake_passes >= bake.min_passes {
                break;
            }
            let wake = if bake.checks.is_empty() {
                until
            } else if now < until {
                next_gate.min(until)
            } else {
                next_gate
            };
            tokio::time::sleep(left(wake, now).min(self.poll_interval)).await;
        }
        rec.wave += 1;
        rec.bake_until = None;
        rec.bake_passes = 0;
        self.enter(rec, WaveState::Running, None).await
    }

    /// Runs every gate check against every deployment of the wave; a round passes when all
    /// do. Returns the first failure.
    async fn gate_round(&self, rec: &mut WaveRecord) -> Result<Option<WaveFailure>> {
        let w = rec.wave;
        for run in rec.targets[w].iter().filter(|r| r.stands()) {
            let engine = self.engine(&run.engine)?;
            let Some(id) = &run.deployment else { continue };
            let dep = engine.store().load(id).await?;
            let Some(target) = &dep.green.target else {
                continue;
            };
            for name in &rec.plan.bake.checks {
                let check = self.checks.get(name).ok_or_else(|| {
                    crate::Error::invalid(
                        "bake.checks",
                        format!("check `{name}` is not registered on this runner"),
                    )
                })?;
                let ctx = CheckContext::new(id, dep.service(), target, 100, &**engine.router())
                    .with_image(&dep.image.id);
                if let CheckOutcome::Fail { reason } = check.run(&ctx).await {
                    self.emit(
                        rec,
                        WaveEventKind::GateChecked {
                            wave: w,
                            passed: false,
                            passes: rec.bake_passes,
                        },
                    );
                    return Ok(Some(WaveFailure::Check {
                        wave: w,
                        engine: run.engine.clone(),
                        check: name.clone(),
                        reason,
                    }));
                }
            }
        }
        rec.bake_passes += 1;
        self.save(rec).await?;
        self.emit(
            rec,
            WaveEventKind::GateChecked {
                wave: w,
                passed: true,
                passes: rec.bake_passes,
            },
        );
        Ok(None)
    }
}

fn left(until: SystemTime, now: SystemTime) -> std::time::Duration {
    until.duration_since(now).unwrap_or_default()
}
