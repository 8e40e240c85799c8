//! The server lifecycle behind the router's calls: add (in maintenance, weight 0), enable
//! health, enable; point the preview; drain, wait, delete.

use std::time::Duration;

use immutable_core::{Error, Result, TargetId};
use tokio::time::Instant;

use super::state::{ServerState, ServiceState, TargetState};
use super::{Backends, Inner};

/// HAProxy's answer to adding a server that exists.
pub(super) const EXISTS: &str = "Already exists";
/// HAProxy's answer for a server that does not exist.
pub(super) const NO_SUCH: &str = "No such server";
/// HAProxy's refusal to delete a server that still has connections.
const BUSY: &str = "Server still has connections";

impl Inner {
    /// Adds one server, in maintenance with `weight`, then starts its checks and enables it.
    pub(super) fn add_commands(&self, backend: &str, s: &ServerState, weight: u32) -> Vec<String> {
        let c = &self.checks;
        let srv = format!("{backend}/{}", s.name);
        vec![
            format!(
                "add server {srv} {} weight {weight} check inter {} rise {} fall {}",
                s.addr,
                c.interval.as_millis(),
                c.rise,
                c.fall
            ),
            format!("enable health {srv}"),
            format!("enable server {srv}"),
        ]
    }

    /// Points the preview backend at one target's servers (weight 1 each).
    pub(super) async fn preview_add(
        &self,
        backends: &Backends,
        state: &ServiceState,
        target: &TargetId,
    ) -> Result<()> {
        let (Some(preview), Some(t)) = (&backends.preview, state.target(target)) else {
            return Ok(());
        };
        let commands: Vec<String> = t
            .servers
            .iter()
            .flat_map(|s| self.add_commands(preview, s, 1))
            .collect();
        self.api.write(&commands, &[EXISTS]).await
    }

    /// Deletes servers at once (maintenance, then delete), cutting their sessions if needed.
    pub(super) async fn remove_now(&self, backend: &str, servers: &[ServerState]) -> Result<()> {
        for s in servers {
            let srv = format!("{backend}/{}", s.name);
            self.api
                .write(
                    &[
                        format!("set server {srv} state maint"),
                        format!("shutdown sessions server {srv}"),
                    ],
                    &[NO_SUCH],
                )
                .await?;
            self.delete(backend, s, Instant::now() + Duration::from_secs(5))
                .await?;
        }
        Ok(())
    }

    /// Deletes one server in maintenance, retrying while its last connections close.
    async fn delete(&self, backend: &str, s: &ServerState, deadline: Instant) -> Result<()> {
        let srv = format!("{backend}/{}", s.name);
        let commands = [
            format!("set server {srv} state maint"),
            format!("del server {srv}"),
        ];
        loop {
            match self.api.write(&commands, &[NO_SUCH]).await {
                Err(Error::Provider { message, .. })
                    if message.contains(BUSY) && Instant::now() < deadline =>
                {
                    tokio::time::sleep(self.poll).await;
                }
                Err(Error::Provider { message, .. }) if message.contains(BUSY) => {
                    self.api
                        .write(&[format!("shutdown sessions server {srv}")], &[NO_SUCH])
                        .await?;
                    tokio::time::sleep(self.poll).await;
                    return self.api.write(&commands, &[NO_SUCH]).await;
                }
                other => return other,
            }
        }
    }

    /// Drains a target's servers: `state drain` in one request, waits (bounded) until none has
    /// a session, then deletes each.
    pub(super) async fn drain_and_delete(&self, backend: &str, target: &TargetState) -> Result<()> {
        let drain: Vec<String> = target
            .servers
            .iter()
            .map(|s| format!("set server {backend}/{} state drain", s.name))
            .collect();
        self.api.write(&drain, &[NO_SUCH]).await?;
        let deadline = Instant::now() + self.drain_timeout;
        loop {
            let rows = self.api.stats(backend).await?;
            let busy = rows
                .iter()
                .filter(|r| target.servers.iter().any(|s| s.name == r.name))
                .any(|r| r.sessions > 0);
            if !busy || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(self.poll).await;
        }
        for s in &target.servers {
            self.delete(
                backend,
                s,
                deadline.max(Instant::now() + Duration::from_secs(2)),
            )
            .await?;
        }
        Ok(())
    }
}
