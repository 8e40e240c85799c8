//! Durable commands: approve, reject, promote and abort, written to the [`StateStore`] by any
//! process that shares it, and read by the runner at every poll. A command given while no
//! runner is alive applies when the deployment is resumed.
//!
//! Commands are appended, never overwritten, so two given at once are both kept. Each
//! approval consumes one gate: the record counts the approvals used, and saves that count with
//! the step it ended, so a resumed run never spends one twice.
//!
//! [`StateStore`]: crate::StateStore

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::engine::control::{Commands, Control};
use crate::engine::{Engine, Inner};
use crate::{DeploymentId, Error, Result, ServiceName};

/// What an operator asks of a running deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Command {
    /// Pass the current (or next) approval gate.
    Approve,
    /// Roll back at the current (or next) approval gate.
    Reject {
        /// Why.
        reason: String,
    },
    /// Skip every remaining pause, approval gate and the bake.
    Promote,
    /// Roll back now, from any phase before Retire.
    Abort {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Approve => f.write_str("approve"),
            Command::Reject { reason } => write!(f, "reject ({reason})"),
            Command::Promote => f.write_str("promote"),
            Command::Abort { reason } => write!(f, "abort ({reason})"),
        }
    }
}

/// A command as stored: which deployment, who gave it and when. Ids are ULIDs, so commands
/// sort in the order they were given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommandRecord {
    /// Unique, sortable by time.
    pub id: String,
    /// The deployment it is for.
    pub deployment: DeploymentId,
    /// The command.
    pub command: Command,
    /// Who gave it (the engine's identity).
    pub by: String,
    /// When, on the giving engine's clock.
    pub at: SystemTime,
}

impl CommandRecord {
    /// A new command for `deployment`, with a fresh id.
    pub fn new(
        deployment: DeploymentId,
        command: Command,
        by: impl Into<String>,
        at: SystemTime,
    ) -> Self {
        CommandRecord {
            id: ulid::Ulid::new().to_string().to_lowercase(),
            deployment,
            command,
            by: by.into(),
            at,
        }
    }
}

/// What the stored commands ask, all together.
pub(in crate::engine) fn fold(records: &[CommandRecord], c: &mut Commands) {
    let mut seen = std::collections::BTreeSet::new();
    let mut approvals = 0;
    for r in records.iter().filter(|r| seen.insert(r.id.as_str())) {
        match &r.command {
            Command::Approve => approvals += 1,
            Command::Reject { reason } => {
                c.rejected.get_or_insert_with(|| reason.clone());
            }
            Command::Promote => c.promoted = true,
            Command::Abort { reason } => {
                c.aborted.get_or_insert_with(|| reason.clone());
            }
        }
    }
    c.approvals = c.approvals.max(approvals);
    for r in records {
        if !c.given.iter().any(|g| g.id == r.id) {
            c.given.push(r.clone());
        }
    }
}

impl Engine {
    /// Gives a command to a deployment, from any process whose engine shares the store: it is
    /// written there, and the runner (in this process or another) applies it within one poll
    /// interval, or when the deployment is resumed.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown deployment, [`Error::DeploymentFinished`] once it
    /// has ended (a command racing the end may be stored and never applied), store errors.
    pub async fn command(&self, deployment: &DeploymentId, command: Command) -> Result<()> {
        let inner = &*self.inner;
        inner.operator.command(deployment, command).await?;
        let running = inner
            .controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(deployment)
            .cloned();
        if let Some(control) = running {
            inner.apply_commands(deployment, &control).await?;
        }
        Ok(())
    }
}

impl Inner {
    /// Reads the deployment's stored commands into its control, waking its waits on change.
    pub(in crate::engine) async fn apply_commands(
        &self,
        id: &DeploymentId,
        control: &Control,
    ) -> Result<()> {
        let records = self.store.commands(id).await?;
        control.tx.send_if_modified(|c| {
            let before = (
                c.approvals,
                c.rejected.clone(),
                c.promoted,
                c.aborted.clone(),
            );
            fold(&records, c);
            before
                != (
                    c.approvals,
                    c.rejected.clone(),
                    c.promoted,
                    c.aborted.clone(),
                )
        });
        Ok(())
    }

    /// Reads the halt covering `service` into the deployment's control, waking its waits when
    /// one is set or lifted.
    pub(in crate::engine) async fn apply_halt(
        &self,
        service: &ServiceName,
        control: &Control,
    ) -> Result<()> {
        let halt = self.halt_of(service).await?;
        control.tx.send_if_modified(|c| {
            let changed = c.halt != halt;
            c.halt = halt;
            changed
        });
        Ok(())
    }

    /// Applies the stored commands and halts every poll interval; returns only when the store fails for
    /// good.
    pub(in crate::engine) async fn watch_commands(
        &self,
        id: &DeploymentId,
        service: &ServiceName,
        control: &Control,
    ) -> Error {
        loop {
            tokio::time::sleep(self.settings.poll_interval).await;
            let result = self
                .settings
                .retry
                .run(
                    || async {
                        self.apply_commands(id, control).await?;
                        self.apply_halt(service, control).await
                    },
                    |_, _, _| {},
                )
                .await;
            if let Err(e) = result {
                return e;
            }
        }
    }
}
