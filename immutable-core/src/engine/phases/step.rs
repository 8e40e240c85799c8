//! One strategy step: a weight shift, a pause, checks, an approval gate or the preview.

use std::time::{Duration, SystemTime};

use crate::engine::run::{Run, Stop, aborted, provider_failure};
use crate::engine::wait::GreenHealthy;
use crate::notify::Trigger;
use crate::{
    CheckContext, CheckOutcome, Error, EventKind, OnTimeout, Phase, RollbackCause, Routing, Step,
    TargetId,
};

/// Whether a step leaves AwaitHealthy's last read of green fresh enough for the next shift:
/// only the preview, one routing call that waits for nothing. A step that waits or probes
/// (pause, checks, approval) makes the next shift read green's health again, and a shift
/// reads it for the shift after.
pub(in crate::engine) fn keeps_health_read(step: &Step) -> bool {
    matches!(step, Step::Preview)
}

impl Run<'_> {
    /// Runs one step with `fresh`, a proof that green is healthy if one is at hand; its note
    /// says how it went, when there is more to say, and the proof comes back only from a step
    /// that [keeps it](keeps_health_read).
    pub(in crate::engine) async fn run_step(
        &mut self,
        step: &Step,
        green: &TargetId,
        fresh: Option<GreenHealthy>,
    ) -> Result<(Option<String>, Option<GreenHealthy>), Stop> {
        let note = match step {
            Step::Shift { percent } => {
                return Ok((self.shift(*percent, green, fresh).await?, None));
            }
            Step::Preview => return Ok((self.route_preview(green).await?, fresh)),
            other => self.run_waiting_step(other, green).await?,
        };
        Ok((note, None))
    }

    /// A step that waits or probes: a pause, checks or an approval gate.
    async fn run_waiting_step(
        &mut self,
        step: &Step,
        green: &TargetId,
    ) -> Result<Option<String>, Stop> {
        match step {
            Step::Shift { .. } | Step::Preview => unreachable!("run_step runs these itself"),
            Step::Pause { duration } => {
                let cut_short = self
                    .watch_until(green, self.rec.phase_started_at + *duration)
                    .await?;
                Ok(cut_short.then(|| "promoted: pause skipped".to_owned()))
            }
            Step::Checks { names } => {
                for name in names {
                    self.run_check(name, green).await?;
                }
                Ok(Some(format!("passed: {}", names.join(", "))))
            }
            Step::Approval {
                timeout,
                on_timeout,
            } => self.await_approval(*timeout, *on_timeout).await.map(Some),
        }
    }

    /// Sends `percent` of traffic to green in one routing call, once green has `min_healthy`
    /// healthy instances (I1): proved by `fresh` (AwaitHealthy's read, when nothing has waited
    /// since), or read now. A first deployment has no old fleet to share traffic with: all of
    /// it goes at once.
    async fn shift(
        &mut self,
        percent: u32,
        green: &TargetId,
        fresh: Option<GreenHealthy>,
    ) -> Result<Option<String>, Stop> {
        let service = self.rec.service().clone();
        let held = self.honour_halt().await?;
        let proof = match fresh {
            Some(proof) if !held => proof,
            _ => self.ensure_green_healthy(green).await?,
        };
        let (routing, percent, note) = match &self.rec.blue {
            Some(blue) => (
                Routing::split(Some(&blue.target), green, percent)?,
                percent,
                None,
            ),
            None => (
                Routing::all_to(green),
                100,
                (percent < 100).then(|| "first deployment: all traffic at once".to_owned()),
            ),
        };
        self.shift_weights(&service, &routing, proof)
            .await
            .map_err(provider_failure(Phase::Rollout, "shifting traffic"))?;
        self.rec.weight = percent;
        self.emit(EventKind::WeightsSet { routing });
        Ok(note)
    }

    /// Points the preview entry point at green. A router without one answers
    /// [`Error::NotSupported`] and the step is skipped; any other error (a misconfigured
    /// preview listener) rolls back, since checks meant for the new fleet would probe
    /// whatever the preview still points at.
    async fn route_preview(&mut self, green: &TargetId) -> Result<Option<String>, Stop> {
        let Some(preview) = self.engine.preview.clone() else {
            let reason = "no preview entry point is registered on this engine".to_owned();
            self.emit(EventKind::PreviewSkipped {
                reason: reason.clone(),
            });
            return Ok(Some(format!("skipped: {reason}")));
        };
        let service = self.rec.service().clone();
        let result = self
            .call("route preview", || preview.preview(&service, Some(green)))
            .await;
        match result {
            Ok(()) => {
                self.rec.previewed = true;
                self.emit(EventKind::PreviewRouted {
                    target: green.clone(),
                });
                Ok(None)
            }
            Err(Error::NotSupported { message, .. }) => {
                self.emit(EventKind::PreviewSkipped {
                    reason: message.clone(),
                });
                Ok(Some(format!("skipped: {message}")))
            }
            Err(e) => Err(provider_failure(Phase::Rollout, "routing the preview")(e)),
        }
    }

    async fn run_check(&self, name: &str, green: &TargetId) -> Result<(), Stop> {
        let Some(check) = self.engine.checks.get(name) else {
            return Err(Stop::RollBack(RollbackCause::CheckNotRegistered {
                check: name.to_owned(),
            }));
        };
        let ctx = CheckContext {
            deployment: &self.rec.id,
            service: self.rec.service(),
            target: green,
            weight: self.rec.weight,
            router: self.engine.router.as_ref(),
            image: Some(&self.rec.image.id),
        };
        let outcome = tokio::select! {
            biased;
            outcome = check.run(&ctx) => outcome,
            reason = self.aborted() => return Err(aborted(reason)),
        };
        self.emit(EventKind::CheckResult {
            name: name.to_owned(),
            outcome: outcome.clone(),
        });
        match outcome {
            CheckOutcome::Pass => Ok(()),
            CheckOutcome::Fail { reason } => Err(Stop::RollBack(RollbackCause::CheckFailed {
                check: name.to_owned(),
                weight: self.rec.weight,
                reason,
            })),
        }
    }

    async fn await_approval(
        &mut self,
        timeout: Duration,
        on_timeout: OnTimeout,
    ) -> Result<String, Stop> {
        let deadline = self.rec.phase_started_at + timeout;
        self.emit(EventKind::ApprovalRequested {
            index: self.rec.step,
            timeout,
        });
        self.notify_gate(Trigger::ApprovalWaiting, deadline);
        // Readers of the timeline (a dashboard) see the gate waiting.
        self.persist().await?;
        let remind_at = self
            .engine
            .reminder_lead()
            .filter(|lead| *lead < timeout)
            .map(|lead| deadline - lead);
        let mut reminded = false;
        let mut overdue = false;
        loop {
            self.check_abort()?;
            self.honour_halt().await?;
            let c = self.control.commands();
            if let Some(reason) = c.rejected {
                self.emit(EventKind::Rejected {
                    reason: reason.clone(),
                });
                return Err(Stop::RollBack(RollbackCause::ApprovalRejected { reason }));
            }
            if c.approvals > self.rec.approvals_used {
                self.rec.approvals_used += 1;
                self.emit(EventKind::Approved);
                return Ok("approved".into());
            }
            if c.promoted {
                return Ok("promoted".into());
            }
            if let Some(at) = remind_at.filter(|_| !reminded)
                && self.left_until(at).is_zero()
            {
                reminded = true;
                self.notify_gate(Trigger::ApprovalReminder, deadline);
                self.persist().await?;
            }
            if !overdue && self.left_until(deadline).is_zero() {
                match on_timeout {
                    OnTimeout::RollBack => {
                        return Err(Stop::RollBack(RollbackCause::ApprovalOverdue {
                            waited: timeout,
                        }));
                    }
                    _ => {
                        overdue = true;
                        self.emit(EventKind::ApprovalOverdue { waited: timeout });
                    }
                }
            }
            let wait = if overdue {
                Duration::MAX
            } else {
                match remind_at.filter(|_| !reminded) {
                    Some(at) => self.left_until(at),
                    None => self.left_until(deadline),
                }
            };
            self.sleep_or_command(wait).await;
        }
    }

    /// Queues a notification about the approval gate of the current step.
    fn notify_gate(&mut self, trigger: Trigger, deadline: SystemTime) {
        let index = self.rec.step;
        let description = self
            .rec
            .current_step
            .as_ref()
            .map_or_else(|| "approval".to_owned(), ToString::to_string);
        self.notify(trigger, Some(index.to_string()), |n| {
            n.with_step(index, description).with_deadline(deadline)
        });
    }
}
