//! The Bake phase: the old fleet stays up for the fast-rollback window while both fleets are
//! watched, the new one for a rollback, the old one for the loss of the window.

use tracing::instrument;

use crate::engine::run::{Run, Stop};
use crate::notify::Trigger;
use crate::{EventKind, OnBlueLost, Phase, Result, Side};

impl Run<'_> {
    /// Keeps blue for the bake time, watching green's health (a drop below `min_healthy` rolls
    /// back) and blue's (a drop below it loses the fast-rollback window, which the record
    /// notes and [`OnBlueLost`] acts on).
    #[instrument(skip_all, fields(deployment = %self.rec.id, service = %self.rec.service()))]
    pub(in crate::engine) async fn bake(&mut self) -> Result<(), Stop> {
        if self.rec.spec.bake_time.is_zero() && self.last_health.is_some() {
            // No window to watch, and green's health was read in this run before its last
            // weight change (a resumed run, which has not, reads it once below).
            self.advance(Phase::Retire, None).await?;
            return Ok(());
        }
        let green = self.green_target()?;
        let deadline = self.rec.phase_started_at + self.rec.spec.bake_time;
        let polls = self.backoff();
        let note = loop {
            self.watch_green(&green).await?;
            if self.control.commands().promoted {
                self.emit(EventKind::Promoted);
                break Some("promoted: bake skipped");
            }
            if self.left_until(deadline).is_zero() {
                break None;
            }
            if self.blue_lost().await? && self.rec.spec.on_blue_lost == OnBlueLost::RetireBlue {
                break Some("fast-rollback window lost: the old fleet is retired early");
            }
            self.wait(deadline, polls.next(self.now())).await?;
        };
        self.advance(Phase::Retire, note.map(str::to_owned)).await?;
        Ok(())
    }

    /// Whether the old fleet has been lost: below `min_healthy` healthy instances now, or
    /// at an earlier poll. The first time, the record notes it and an event says so.
    ///
    /// A failed read of the old fleet's health says nothing either way: the next poll reads
    /// again. Its target gone counts as lost.
    async fn blue_lost(&mut self) -> Result<bool> {
        if self.rec.blue_lost_at.is_some() {
            return Ok(true);
        }
        let Some(blue) = self.rec.blue.clone() else {
            return Ok(false);
        };
        let service = self.rec.service().clone();
        let (healthy, total) = match self
            .call("read old fleet health", || {
                self.engine.router.health(&service, &blue.target)
            })
            .await
        {
            Ok(report) => (report.healthy(), report.instances.len()),
            Err(e) if e.is_not_found() => (0, 0),
            Err(_) => return Ok(false),
        };
        let needed = self.rec.spec.min_healthy;
        if healthy >= needed as usize {
            // Readers of the timeline see the old fleet's health as it changes.
            if self.rec.timeline.last_health(Side::Blue) != Some((healthy, Some(total))) {
                self.rec
                    .timeline
                    .push_health(self.now(), Side::Blue, healthy, Some(total));
                self.persist().await?;
            }
            return Ok(false);
        }
        self.rec
            .timeline
            .push_health(self.now(), Side::Blue, healthy, Some(total));
        self.rec.blue_lost_at = Some(self.now());
        self.notify(Trigger::BlueLost, None, |n| n);
        self.persist().await?;
        self.emit(EventKind::RollbackWindowLost {
            target: blue.target,
            healthy,
            needed,
            policy: self.rec.spec.on_blue_lost,
        });
        Ok(true)
    }
}
