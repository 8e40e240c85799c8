//! The server lifecycle behind the router's calls: add (in maintenance, weight 0), enable
//! health, enable; point the preview; drain, wait, delete. Each step sends the commands for
//! all of a target's servers in one request, so the requests do not grow with the fleet.

use std::time::Duration;

use immutable_core::{Result, TargetId};
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
        let cut: Vec<String> = servers
            .iter()
            .flat_map(|s| {
                let srv = format!("{backend}/{}", s.name);
                [
                    format!("set server {srv} state maint"),
                    format!("shutdown sessions server {srv}"),
                ]
            })
            .collect();
        self.api.write(&cut, &[NO_SUCH]).await?;
        self.delete(backend, servers, Instant::now() + Duration::from_secs(5))
            .await
    }

    /// Deletes servers in maintenance, all in one request, then again those whose last
    /// connections were still closing, until `deadline`; past it, their sessions are cut.
    async fn delete(
        &self,
        backend: &str,
        servers: &[ServerState],
        deadline: Instant,
    ) -> Result<()> {
        let commands = |servers: &[&ServerState]| -> Vec<String> {
            servers
                .iter()
                .flat_map(|s| {
                    let srv = format!("{backend}/{}", s.name);
                    [
                        format!("set server {srv} state maint"),
                        format!("del server {srv}"),
                    ]
                })
                .collect()
        };
        let mut left: Vec<&ServerState> = servers.iter().collect();
        if left.is_empty() {
            return Ok(());
        }
        loop {
            self.api.write(&commands(&left), &[NO_SUCH, BUSY]).await?;
            let rows = self.api.stats(backend).await?;
            left.retain(|s| rows.iter().any(|r| r.name == s.name));
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(self.poll).await;
        }
        let cut: Vec<String> = left
            .iter()
            .map(|s| format!("shutdown sessions server {backend}/{}", s.name))
            .collect();
        self.api.write(&cut, &[NO_SUCH]).await?;
        tokio::time::sleep(self.poll).await;
        self.api.write(&commands(&left), &[NO_SUCH]).await
    }

    /// Drains a target's servers: `state drain` in one request, waits (bounded) until none has
    /// a session, then deletes them all in one request (see [`delete`](Self::delete)).
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
        let deadline = deadline.max(Instant::now() + Duration::from_secs(2));
        self.delete(backend, &target.servers, deadline).await
    }
}
