//! Honouring halts: [`Engine::halt`] and [`Engine::lift_halt`] write them to the store halts
//! are read from; a running deployment reads them at every poll and holds or rolls back, as
//! [`Settings::on_halt`](crate::engine::Settings) says; [`Engine::deploy`] refuses a halted service.

use crate::engine::notifying::detail_of;
use crate::engine::run::{Run, Stop};
use crate::engine::{Engine, Inner};
use crate::notify::Trigger;
use crate::{
    EventKind, Halt, HaltScope, OnHalt, Origin, Phase, Result, RollbackCause, ServiceName,
};

impl Engine {
    /// [`Operator::halt`](crate::Operator::halt) through this engine's store.
    ///
    /// # Errors
    /// Store errors; [`Error::NotSupported`](crate::Error::NotSupported) from a store without halts.
    pub async fn halt(&self, scope: HaltScope, reason: impl Into<String>) -> Result<Halt> {
        self.inner.operator.halt(scope, reason).await
    }

    /// [`Operator::lift_halt`](crate::Operator::lift_halt) through this engine's store.
    ///
    /// # Errors
    /// Store errors.
    pub async fn lift_halt(&self, scope: &HaltScope) -> Result<Option<Halt>> {
        self.inner.operator.lift_halt(scope).await
    }

    /// [`Operator::halts`](crate::Operator::halts) through this engine's store.
    ///
    /// # Errors
    /// Store errors.
    pub async fn halts(&self, service: Option<&ServiceName>) -> Result<Vec<Halt>> {
        self.inner.operator.halts(service).await
    }
}

impl Inner {
    /// The halt that covers `service`, if one stands: the service's own before the global one.
    pub(in crate::engine) async fn halt_of(&self, service: &ServiceName) -> Result<Option<Halt>> {
        self.operator.halt_of(service).await
    }

    /// Refuses a new deployment of a halted service.
    pub(in crate::engine) async fn refuse_if_halted(&self, service: &ServiceName) -> Result<()> {
        crate::halt::refuse_if_halted(self.halts.halt_store(), service).await
    }
}

impl Run<'_> {
    /// Stops advancing while a halt covers the service: holds here (watching the new fleet's
    /// health while it takes traffic, honouring aborts) until it is lifted, or rolls back, as
    /// the engine's [`OnHalt`] says. Rollbacks, and phases from Retire on, are never halted.
    /// True when it held: whatever was read before the hold is stale after it.
    pub(in crate::engine) async fn honour_halt(&mut self) -> Result<bool, Stop> {
        let Some(halt) = self.control.commands().halt else {
            return Ok(false);
        };
        if self.rec.origin == Origin::Rollback || !halts_here(self.rec.phase) {
            return Ok(false);
        }
        self.emit(EventKind::Halted {
            scope: halt.scope.clone(),
            by: halt.by.clone(),
            reason: halt.reason.clone(),
            policy: self.engine.settings.on_halt,
        });
        let detail = detail_of(halt.at);
        let (by, reason) = (halt.by.clone(), halt.reason.clone());
        self.notify(Trigger::Halted, Some(detail.clone()), |n| {
            n.with_halt(by, reason)
        });
        if self.engine.settings.on_halt == OnHalt::RollBack {
            return Err(Stop::RollBack(RollbackCause::Halted {
                by: halt.by,
                reason: halt.reason,
            }));
        }
        // Readers of the timeline see the hold.
        self.persist().await?;
        while self.control.commands().halt.is_some() {
            self.check_abort()?;
            if self.rec.weight > 0
                && let Some(green) = self.rec.green.target.clone()
            {
                self.watch_green(&green).await?;
            }
            self.sleep_or_command(self.engine.settings.poll_interval)
                .await;
        }
        self.check_abort()?;
        self.emit(EventKind::HaltLifted { scope: halt.scope });
        self.notify(Trigger::HaltLifted, Some(detail), |n| n);
        self.persist().await?;
        Ok(true)
    }
}

/// The phases a halt stops: those that move the deployment forward before traffic is final.
fn halts_here(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::Plan
            | Phase::Provision
            | Phase::Attach
            | Phase::AwaitHealthy
            | Phase::Rollout
            | Phase::Bake
    )
}
