//! One deployment being driven: the [`Run`] every phase works on, why a phase stops short
//! ([`Stop`]), and the calls every phase makes (events, record saves, backend calls under the
//! retry policies).

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::Inner;
use super::control::Control;
use super::notifying::trigger_of;
use super::timeline::{Mark, Side, TimelineEntry, mark_of};
use crate::{DeploymentRecord, Error, EventKind, Phase, Result, RollbackCause};

/// Why a phase stopped short.
pub(super) enum Stop {
    /// Roll back, for this cause.
    RollBack(RollbackCause),
    /// Return the error with the record left at its phase: resumable with
    /// [`Engine::resume`], since every phase is idempotent.
    Interrupted(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Interrupted(e)
    }
}

/// The rollback an operator's abort causes.
pub(super) fn aborted(reason: String) -> Stop {
    Stop::RollBack(RollbackCause::OperatorAbort { reason })
}

/// Turns a failed forward call in `phase` into a rollback.
pub(super) fn provider_failure(
    phase: Phase,
    operation: &'static str,
) -> impl FnOnce(Error) -> Stop {
    move |e| {
        Stop::RollBack(RollbackCause::ProviderError {
            phase,
            operation: operation.to_owned(),
            error: e.to_string(),
        })
    }
}

/// One deployment being driven.
pub(super) struct Run<'a> {
    pub(super) engine: &'a Inner,
    pub(super) rec: DeploymentRecord,
    pub(super) control: Arc<Control>,
    /// Healthy and registered instances of the new fleet, as last read.
    pub(super) last_health: Option<(usize, usize)>,
    /// Timeline marks of events emitted since the last save, written with the next one.
    pub(super) pending: Mutex<Vec<TimelineEntry>>,
}

pub(super) fn retrying(
    operation: &str,
    attempt: u32,
    error: &Error,
    backoff: Duration,
) -> EventKind {
    EventKind::Retrying {
        operation: operation.to_owned(),
        attempt,
        error: error.to_string(),
        backoff,
    }
}

impl Run<'_> {
    pub(super) fn emit(&self, kind: EventKind) {
        if let Some(mark) = mark_of(&kind, self.rec.green.target.as_ref()) {
            self.mark(mark);
        }
        self.engine.emit_for(&self.rec.id, self.rec.service(), kind);
    }

    /// Adds `mark` to the timeline with the next save.
    pub(super) fn mark(&self, mark: Mark) {
        let at = self.now();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(TimelineEntry { at, mark });
    }

    /// Moves what the timeline has not recorded yet into the record: marks of emitted events,
    /// the new fleet's health as last read, and the commands given.
    fn record_timeline(&mut self) {
        let pending = std::mem::take(
            self.pending
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let timeline = &mut self.rec.timeline;
        for entry in pending {
            timeline.push(entry.at, entry.mark);
        }
        if let Some((healthy, total)) = self.rec.health {
            timeline.push_health(self.engine.clock.now(), Side::Green, healthy, Some(total));
        }
        for given in &self.control.commands().given {
            if !timeline.has_command(&given.id) {
                timeline.push(
                    given.at,
                    Mark::Command {
                        id: given.id.clone(),
                        command: given.command.clone(),
                        by: given.by.clone(),
                    },
                );
            }
        }
    }

    pub(super) fn now(&self) -> SystemTime {
        self.engine.clock.now()
    }

    /// Enters `phase` and persists the record, with the notification the change announces;
    /// then delivers the notifications saved.
    pub(super) async fn advance(&mut self, phase: Phase, note: Option<String>) -> Result<()> {
        self.record_timeline();
        let now = self.now();
        self.rec.enter(phase, now, note);
        if let Some(trigger) = trigger_of(phase) {
            self.notify(trigger, None, |n| n);
        }
        self.engine.store.save(&mut self.rec).await?;
        self.engine.deliver_notifications(&mut self.rec).await?;
        self.emit(EventKind::PhaseEntered { phase });
        Ok(())
    }

    /// Persists the record without a phase change; then delivers the notifications saved.
    pub(super) async fn persist(&mut self) -> Result<()> {
        self.record_timeline();
        self.engine.store.save(&mut self.rec).await?;
        self.engine.deliver_notifications(&mut self.rec).await
    }

    /// A forward backend call under the retry policy.
    pub(super) async fn call<T, F, Fut>(&self, operation: &'static str, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.engine
            .call(&self.rec.id, self.rec.service(), operation, op)
            .await
    }

    /// A cleanup call: retried on any error but `NotFound`, which counts as done (the thing to
    /// remove is already gone).
    pub(super) async fn cleanup<F, Fut>(&self, operation: &'static str, op: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        match self.cleanup_read(operation, op).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// A read during cleanup, retried on any error but `NotFound`.
    pub(super) async fn cleanup_read<T, F, Fut>(&self, operation: &'static str, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.engine
            .settings
            .cleanup_retry
            .run_if(
                op,
                |e| !e.is_not_found(),
                |attempt, error, backoff| {
                    self.emit(retrying(operation, attempt, error, backoff));
                },
            )
            .await
    }
}
