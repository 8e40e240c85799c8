//! Operator commands to a running deployment: approve, reject, promote, abort.

use std::sync::Arc;

use tokio::sync::watch;

use crate::{DeploymentId, Error, Phase, Result};

/// What operators have asked of one deployment so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Commands {
    /// Approvals given; each approval step consumes one.
    pub(crate) approvals: u64,
    pub(crate) rejected: Option<String>,
    pub(crate) promoted: bool,
    pub(crate) aborted: Option<String>,
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
/// its remaining waits, or abort it. Get one with [`Engine::handle`](crate::Engine::handle),
/// typically when an [`EventKind::ApprovalRequested`](crate::EventKind::ApprovalRequested)
/// arrives. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DeploymentHandle {
    pub(crate) id: DeploymentId,
    pub(crate) control: Arc<Control>,
}

impl DeploymentHandle {
    /// The deployment.
    pub fn id(&self) -> &DeploymentId {
        &self.id
    }

    fn command(&self, f: impl FnOnce(&mut Commands)) -> Result<()> {
        let mut refused = None;
        self.control.tx.send_modify(|c| match c.finished {
            true => refused = Some(c.ended_in),
            false => f(c),
        });
        match refused {
            None => Ok(()),
            Some(Some(phase)) if phase.is_terminal() => Err(Error::DeploymentFinished {
                deployment: self.id.clone(),
                phase,
            }),
            Some(phase) => Err(Error::NotRunningHere {
                deployment: self.id.clone(),
                phase: phase.unwrap_or(Phase::Plan),
            }),
        }
    }

    /// Approves the current approval gate, or the next one if none waits yet.
    ///
    /// # Errors
    /// [`Error::DeploymentFinished`] once the deployment has finished, and
    /// [`Error::NotRunningHere`] once its run here stopped short (resume it).
    pub fn approve(&self) -> Result<()> {
        self.command(|c| c.approvals += 1)
    }

    /// Rejects the deployment at its current or next approval gate: it rolls back.
    ///
    /// # Errors
    /// [`Error::DeploymentFinished`] once the deployment has finished, and
    /// [`Error::NotRunningHere`] once its run here stopped short (resume it).
    pub fn reject(&self, reason: impl Into<String>) -> Result<()> {
        let reason = reason.into();
        self.command(|c| c.rejected = Some(reason))
    }

    /// Skips every remaining pause, approval gate and the bake: the rollout continues at once.
    ///
    /// # Errors
    /// [`Error::DeploymentFinished`] once the deployment has finished, and
    /// [`Error::NotRunningHere`] once its run here stopped short (resume it).
    pub fn promote(&self) -> Result<()> {
        self.command(|c| c.promoted = true)
    }

    /// Rolls the deployment back at once, from any phase before Retire: traffic returns to the
    /// old fleet in one routing call and the new fleet is removed.
    ///
    /// # Errors
    /// [`Error::DeploymentFinished`] once the deployment has finished, and
    /// [`Error::NotRunningHere`] once its run here stopped short (resume it).
    pub fn abort(&self, reason: impl Into<String>) -> Result<()> {
        let reason = reason.into();
        self.command(|c| c.aborted = Some(reason))
    }

    /// Waits until the deployment has finished (or stopped with an error).
    pub async fn finished(&self) {
        let mut rx = self.control.tx.subscribe();
        let _ = rx.wait_for(|c| c.finished).await;
    }
}
