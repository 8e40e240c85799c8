//! Putting a service's routing back into an HAProxy that lost it.
//!
//! HAProxy keeps dynamic servers in memory only: a restart, or a reload, starts every
//! backend empty, and the service answers 503. The state file holds what HAProxy should
//! have; [`Inner::reconcile`] adds what is missing (with its weights) and finishes removals
//! that were cut off. It runs whenever the router finds servers missing (health reads,
//! weight changes), in [`HaproxyRouter::restore`], and every interval in the task behind a
//! [`RestoreGuard`], so that routing comes back with no command run.
//!
//! Why not a configuration fragment that HAProxy loads at start: HAProxy cannot reopen a
//! backend section defined elsewhere, so such a fragment would have to own each service's
//! whole backend, and the backends of an HAProxy configured by hand could not be used.

use std::time::{Duration, SystemTime};

use immutable_core::{Result, ServiceName};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::api::ServerStat;
use super::health::never_checked;
use super::servers::EXISTS;
use super::state::{ServerState, ServiceState, TargetState};
use super::{Backends, CHECK_TIMEOUT, HaproxyRouter, Inner};

impl HaproxyRouter {
    /// Puts every service's routing back into HAProxy from the state files: after HAProxy was
    /// restarted or reloaded, which drops dynamic servers. Servers that exist are left as they
    /// are. Returns how many servers were added.
    ///
    /// # Errors
    /// Runtime-API and state-file failures.
    ///
    /// A service that cannot be restored (its state file refused, say) does not stop the
    /// others: every service is tried, then the first error is returned.
    pub async fn restore(&self) -> Result<usize> {
        let mut added = 0;
        let mut first_error = None;
        for service in self.inner.services.keys() {
            match self.inner.restore_service(service).await {
                Ok(n) => added += n,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(added),
        }
    }

    /// Starts a task that checks HAProxy every `every` (at least 10 ms) and puts back any
    /// service's servers it lost, until the guard is dropped: a restart or reload of HAProxy
    /// costs the service at most about one interval of 503s, with no command run. Needs a
    /// Tokio runtime. Failures (HAProxy down mid-restart) are retried at the next tick and
    /// reported through `tracing`.
    pub fn keep_restored(&self, every: Duration) -> RestoreGuard {
        let router = self.clone();
        let every = every.max(Duration::from_millis(10));
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                router.inner.restore_if_missing().await;
            }
        });
        RestoreGuard { task }
    }
}

/// Keeps an HAProxy's routing restored while it lives (see
/// [`HaproxyRouter::keep_restored`]); dropping it stops the task.
#[derive(Debug)]
#[must_use = "the routing is kept restored only while the guard lives"]
pub struct RestoreGuard {
    task: JoinHandle<()>,
}

impl Drop for RestoreGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Inner {
    /// One look at HAProxy for every service (one `show stat`), and a restore of those that
    /// lost servers or left stale preview servers; failures are reported through `tracing`,
    /// each service on its own.
    async fn restore_if_missing(&self) {
        let rows = match self.api.all_stats().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!(error = %e, "HAProxy not reachable to check its servers");
                return;
            }
        };
        for (service, backends) in &self.services {
            let due = match self.load(service).await {
                Ok(state) => {
                    !missing(&state, backends, &rows).is_empty() || !state.preview_stale.is_empty()
                }
                Err(e) => {
                    tracing::warn!(%service, error = %e, "cannot check the service's routing");
                    continue;
                }
            };
            if !due {
                continue;
            }
            match self.restore_service(service).await {
                Ok(added) if added > 0 => {
                    tracing::info!(%service, added, "put servers back into HAProxy");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(%service, error = %e, "cannot put the service's routing back");
                }
            }
        }
    }

    /// [`reconcile`](Self::reconcile) under the service's lock.
    pub(super) async fn restore_service(&self, service: &ServiceName) -> Result<usize> {
        let _guard = self.lock(service).await?;
        self.reconcile(service).await
    }

    /// Makes HAProxy hold what the state file says (the caller holds the service's lock):
    /// adds the missing servers of the live backend with their weights and of the preview
    /// backend, and takes out stale preview servers whose removal was cut off. Returns how
    /// many servers were added.
    pub(super) async fn reconcile(&self, service: &ServiceName) -> Result<usize> {
        let backends = self.backends(service)?;
        let mut state = self.load(service).await?;
        let rows = self.api.all_stats().await?;
        let missing = self
            .still_there(service, &state, missing(&state, backends, &rows))
            .await?;
        let added = missing.len();
        let commands: Vec<String> = missing
            .iter()
            .flat_map(|(backend, s, w)| self.add_commands(backend, s, *w))
            .collect();
        self.api.write(&commands, &[EXISTS]).await?;
        if !state.preview_stale.is_empty() {
            if let Some(preview) = &backends.preview {
                self.remove_now(preview, &state.preview_stale).await?;
            }
            state.preview_stale.clear();
            self.save(service, &state).await?;
        }
        Ok(added)
    }

    /// Waits (bounded: one check interval and the check timeout) until HAProxy has checked
    /// the target's servers that it put back after a restart: HAProxy started after the
    /// target was attached, so "not checked yet" says nothing about them, where for a target
    /// attached since it means "new". Returns the rows as last read.
    pub(super) async fn await_first_checks(
        &self,
        backend: &str,
        target: &TargetState,
        mut rows: Vec<ServerStat>,
    ) -> Result<Vec<ServerStat>> {
        if !unchecked(target, &rows) {
            return Ok(rows);
        }
        let started = SystemTime::now().checked_sub(self.api.uptime().await?);
        let restored = match (target.attached_at, started) {
            (Some(attached), Some(started)) => attached < started,
            _ => true,
        };
        if !restored {
            return Ok(rows);
        }
        let deadline = Instant::now() + self.checks.interval + CHECK_TIMEOUT;
        while Instant::now() < deadline && unchecked(target, &rows) {
            tokio::time::sleep(self.poll).await;
            rows = self.api.stats(backend).await?;
        }
        Ok(rows)
    }
}

impl Inner {
    /// Of the servers to put back, those whose instance still listens at the address the
    /// state file gives (as the instance addresses say): a state file is outside data, and an
    /// address changed in it never gets a share of the traffic.
    async fn still_there<'a>(
        &self,
        service: &ServiceName,
        state: &ServiceState,
        servers: Vec<(&'a str, &'a ServerState, u32)>,
    ) -> Result<Vec<(&'a str, &'a ServerState, u32)>> {
        let mut live = Vec::new();
        for t in &state.targets {
            if servers.iter().any(|(_, s, _)| t.servers.contains(s)) {
                match self.addresses.addresses(service, &t.fleet).await {
                    Ok(found) => live.extend(found),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(servers
            .into_iter()
            .filter(|(_, s, _)| live.iter().any(|(i, a)| *i == s.instance && *a == s.addr))
            .collect())
    }
}

/// The servers of `target` HAProxy has but has not checked yet.
fn unchecked(target: &TargetState, rows: &[ServerStat]) -> bool {
    rows.iter()
        .filter(|r| target.servers.iter().any(|s| s.name == r.name))
        .any(never_checked)
}

/// What HAProxy lacks of the state: `(backend, server, weight)` for each missing server.
fn missing<'a>(
    state: &'a ServiceState,
    backends: &'a Backends,
    rows: &[ServerStat],
) -> Vec<(&'a str, &'a ServerState, u32)> {
    let has = |backend: &str, s: &ServerState| {
        rows.iter().any(|r| r.proxy == backend && r.name == s.name)
    };
    let live = state
        .live_servers()
        .into_iter()
        .filter(|(s, _)| !has(&backends.live, s))
        .map(|(s, w)| (backends.live.as_str(), s, w));
    let preview = backends.preview.as_deref().into_iter().flat_map(|p| {
        state
            .preview_servers()
            .iter()
            .filter(move |s| !has(p, s))
            .map(move |s| (p, s, 1))
    });
    live.chain(preview).collect()
}

/// When a target is attached, for [`TargetState::attached_at`].
pub(super) fn now() -> Option<SystemTime> {
    Some(SystemTime::now())
}
