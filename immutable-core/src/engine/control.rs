//! What operators have asked of a deployment running here (the stored commands folded, and a
//! suspend), and the [`DeploymentHandle`] that asks it.

use std::sync::Arc;

use tokio::sync::watch;

use super::operations::command::Command;
use crate::{DeploymentId, Phase, Result};

/// What operators have asked of one deployment so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Commands {
    /// Approvals given; each approval step consumes one.
    pub(crate) approvals: u64,
    pub(crate) rejected: Option<String>,
    pub(crate) promoted: bool,
    pub(crate) aborted: Option<String>,
    /// Every command given so far, with who gave it, for the timeline.
    pub(crate) given: Vec<super::CommandRecord>,
    /// The halt covering the service, as last read from the store.
    pub(crate) halt: Option<crate::Halt>,
    /// Stop at the next safe point (this process only).
    pub(crate) suspended: bool,
    pub(crate) finished: bool,
    /// The phase the run here ended in, once it has.
    pub(crate) ended_in: Option<Phase>,
}

#[derive(Debug)]
pub(crate) struct Control {
    pub(crate) tx: watch::Sender<Commands>,
}

impl Control {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Control {
            tx: watch::Sender::new(Commands::default()),
        })
    }

    pub(crate) fn commands(&self) -> Commands {
        self.tx.borrow().clone()
    }

    /// The run here ended, in `phase` if known (a dropped run does not say).
    pub(crate) fn finish(&self, phase: Option<Phase>) {
        self.tx.send_modify(|c| {
            c.finished = true;
            c.ended_in = c.ended_in.or(phase);
        });
    }
}

/// Steers a deployment that runs in this process: approve or reject its approval gates, skip
/// its remaining waits, abort it, or suspend it. Get one with
/// [`Engine::handle`](crate::Engine::handle), typically when an
/// [`EventKind::ApprovalRequested`](crate::EventKind::ApprovalRequested) arrives. Cheap to
/// clone.
///
/// A thin layer over [`Engine::command`](crate::Engine::command): every command is written to
/// the store like one given from another process, and applied at once here.
#[derive(Debug, Clone)]
pub struct DeploymentHandle {
    pub(crate) id: DeploymentId,
    pub(crate) control: Arc<Control>,
    pub(crate) engine: crate::Engine,
}

impl DeploymentHandle {
    /// The deployment.
    pub fn id(&self) -> &DeploymentId {
        &self.id
    }

    /// Approves the current approval gate, or the next one if none waits yet.
    ///
    /// # Errors
    /// As [`Engine::command`](crate::Engine::command): [`Error::DeploymentFinished`](crate::Error::DeploymentFinished) once the
    /// deployment has finished.
    pub async fn approve(&self) -> Result<()> {
        self.engine.command(&self.id, Command::Approve).await
    }

    /// Rejects the deployment at its current or next approval gate: it rolls back.
    ///
    /// # Errors
    /// As [`approve`](Self::approve).
    pub async fn reject(&self, reason: impl Into<String>) -> Result<()> {
        let reason = reason.into();
        self.engine
            .command(&self.id, Command::Reject { reason })
            .await
    }

    /// Skips every remaining pause, approval gate and the bake: the rollout continues at once.
    ///
    /// # Errors
    /// As [`approve`](Self::approve).
    pub async fn promote(&self) -> Result<()> {
        self.engine.command(&self.id, Command::Promote).await
    }

    /// Rolls the deployment back at once, from any phase before Retire: traffic returns to the
    /// old fleet in one routing call (if it can take it) and the new fleet is removed.
    ///
    /// # Errors
    /// As [`approve`](Self::approve).
    pub async fn abort(&self, reason: impl Into<String>) -> Result<()> {
        let reason = reason.into();
        self.engine
            .command(&self.id, Command::Abort { reason })
            .await
    }

    /// Stops the run here at its next safe point (a wait: the record is saved there), releases
    /// the lease, and makes its `deploy` or `resume` return [`Error::Suspended`](crate::Error::Suspended). Resume it
    /// later, here or in another process. Not stored: it concerns this process only.
    pub fn suspend(&self) {
        self.control.tx.send_modify(|c| c.suspended = true);
    }

    /// Waits until the deployment has finished (or stopped with an error).
    pub async fn finished(&self) {
        let mut rx = self.control.tx.subscribe();
        let _ = rx.wait_for(|c| c.finished).await;
    }
}
