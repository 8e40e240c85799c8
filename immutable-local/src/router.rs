//! [`HaproxyRouter`]: one HAProxy backend per service, driven through the runtime API.
//!
//! Files by concern: `builder.rs` (settings and each service's backends, checked), `api.rs`
//! (the admin socket), `names.rs` (what may reach a command, and which backends a service may
//! use), `state.rs` (the routing as the router last set it), `traffic.rs` (the
//! [`TrafficRouter`](immutable_core::TrafficRouter) calls), `servers.rs` (the server lifecycle
//! behind them), `health.rs` (HAProxy's check results in the core's terms), `restore.rs`
//! (putting the routing back after HAProxy restarted).

mod api;
mod builder;
mod health;
mod names;
mod restore;
mod servers;
mod state;
mod traffic;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use immutable_core::{Error, FleetId, InstanceId, ResourceKind, Result, ServiceName, TargetId};

pub(crate) use self::api::RuntimeApi;
pub use self::builder::HaproxyRouterBuilder;
pub use self::restore::RestoreGuard;
use self::state::ServiceState;
use crate::ProcessFleet;
use crate::fsutil::{blocking, lock_file};

/// Where a fleet's instances listen, for the router to register them and to tell a server
/// whose instance no longer holds its address.
#[async_trait]
pub trait InstanceAddresses: Debug + Send + Sync + 'static {
    /// The address of each instance of the service's `fleet` that is alive and listens there
    /// itself. An instance missing from the answer is never counted healthy, whatever
    /// answers at its address.
    async fn addresses(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
    ) -> Result<Vec<(InstanceId, SocketAddr)>>;
}

#[async_trait]
impl InstanceAddresses for ProcessFleet {
    async fn addresses(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
    ) -> Result<Vec<(InstanceId, SocketAddr)>> {
        ProcessFleet::addresses(self, service, fleet).await
    }
}

/// A service's backends in HAProxy's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Backends {
    live: String,
    preview: Option<String>,
}

/// Routes services through an HAProxy, one backend per service, through its runtime API.
///
/// # Expected flow
/// Each attached fleet's instances become dynamic servers of the service's backend
/// (`add server ... weight 0 check`, `enable health`, `enable server`), so HAProxy's own HTTP
/// health checks (the backend's `option httpchk`) feed [`health`](immutable_core::TrafficRouter::health).
/// [`set_weights`](immutable_core::TrafficRouter::set_weights) sends every server's weight in
/// one runtime-API request. [`detach`](immutable_core::TrafficRouter::detach) sets the
/// servers to `drain`, waits (bounded) until they hold no session, then deletes them. The
/// preview entry point, when the service has one, is a second backend that gets the
/// candidate's servers.
///
/// # Assumptions
/// HAProxy 2.6 or newer; each service's backend (named after the service unless configured)
/// uses a dynamic balance algorithm (`roundrobin`, `leastconn`, `first` or `random`) and has
/// `option httpchk`; the admin socket has `level admin`. A preview backend is optional: by
/// default the router uses `<service>:preview` when HAProxy has it, and skips preview steps
/// otherwise. [`Haproxy`](crate::Haproxy) starts an HAProxy configured so.
///
/// # Guarantees
/// - The routing lives in `<state dir>/<service>.json`, written atomically before HAProxy
///   learns of a new server and after it drops one.
/// - HAProxy drops dynamic servers when it restarts or reloads. The router puts them back,
///   with their weights, the moment it finds them missing: in every health read and weight
///   change, in [`restore`](Self::restore), and every interval while a
///   [`keep_restored`](Self::keep_restored) guard lives. A restored server's first health
///   check is awaited (at most one check interval and the 2 s check timeout) before its
///   health is told, so a restart never reads as a fleet gone unhealthy.
/// - No two services share a backend, and a preview backend is never a name a service could
///   serve from (see [`HaproxyRouterBuilder::build`]).
/// - Every name sent to HAProxy is checked where it enters: server names from the instance
///   addresses and from the state files, backend names at build. A tampered state file is
///   refused, naming the file and the field.
/// - Targets of another service are [`Error::NotOwned`]; a server whose instance no longer
///   listens at its address itself is never healthy.
/// - The runtime-API requests do not grow with the fleet: attaching a target, setting the
///   weights, pointing the preview, draining and deleting a target's servers each send the
///   commands for all its servers in one request (HAProxy runs a request's `;`-separated
///   commands in turn); only the waits (draining, a server's last connections closing) poll.
#[derive(Debug, Clone)]
pub struct HaproxyRouter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    api: RuntimeApi,
    state_dir: PathBuf,
    services: BTreeMap<ServiceName, Backends>,
    addresses: Arc<dyn InstanceAddresses>,
    checks: CheckSettings,
    drain_timeout: Duration,
    poll: Duration,
    /// Serializes one service's changes within this process.
    locks: Mutex<HashMap<ServiceName, Arc<tokio::sync::Mutex<()>>>>,
}

/// One service's routing held for a change (see `Inner::lock`); released when dropped.
struct ServiceLock {
    _file: std::fs::File,
    _process: tokio::sync::OwnedMutexGuard<()>,
}

/// HAProxy health-check settings of each dynamic server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CheckSettings {
    interval: Duration,
    rise: u32,
    fall: u32,
}

/// How long HAProxy gives one health check to answer (`timeout check` in the configuration
/// [`Haproxy`](crate::Haproxy) writes).
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

impl HaproxyRouter {
    /// Runtime-API requests this router (and its clones) has sent, reads (`show stat`) included.
    pub fn api_calls(&self) -> u64 {
        self.inner.api.requests()
    }

    /// Of [`api_calls`](Self::api_calls), the requests that changed HAProxy's state.
    pub fn api_writes(&self) -> u64 {
        self.inner.api.writes()
    }

    /// The dynamic servers HAProxy has now in the service's live backend.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a service the router does not route; runtime-API failures.
    pub async fn servers(&self, service: &ServiceName) -> Result<Vec<String>> {
        let backends = self.inner.backends(service)?;
        let rows = self.inner.api.stats(&backends.live).await?;
        Ok(rows.into_iter().map(|r| r.name).collect())
    }

    /// The preview backend the service routes candidates through, if it has one.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a service the router does not route.
    pub fn preview_backend(&self, service: &ServiceName) -> Result<Option<&str>> {
        Ok(self.inner.backends(service)?.preview.as_deref())
    }
}

/// Whether an HAProxy admin socket answers at `socket`.
pub(crate) async fn probe(socket: PathBuf) -> bool {
    RuntimeApi::new(&socket).verify().await.is_ok()
}

impl Inner {
    fn backends(&self, service: &ServiceName) -> Result<&Backends> {
        self.services
            .get(service)
            .ok_or_else(|| Error::not_found(ResourceKind::EntryPoint, service.as_str()))
    }

    /// Holds the service's routing for one change: within this process (a mutex) and across
    /// processes sharing the state directory (an exclusive lock on `.<service>.lock`), from
    /// reading the state file until HAProxy and the file agree again.
    async fn lock(&self, service: &ServiceName) -> Result<ServiceLock> {
        let lock = Arc::clone(
            self.locks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(service.clone())
                .or_default(),
        );
        let process = lock.lock_owned().await;
        // `.` never starts a service name, so no lock file is another service's state.
        let path = self.state_dir.join(format!(".{service}.lock"));
        let file = blocking(move || lock_file(&path)).await?;
        Ok(ServiceLock {
            _file: file,
            _process: process,
        })
    }

    async fn load(&self, service: &ServiceName) -> Result<ServiceState> {
        state::load(&self.state_dir, service).await
    }

    async fn save(&self, service: &ServiceName, s: &ServiceState) -> Result<()> {
        state::save(&self.state_dir, service, s).await
    }

    /// `NotOwned` if another service routed by this router has the target, else `NotFound`.
    async fn unknown_target(&self, service: &ServiceName, target: &TargetId) -> Error {
        for other in self.services.keys().filter(|s| *s != service) {
            if let Ok(s) = self.load(other).await
                && s.target(target).is_some()
            {
                return Error::NotOwned {
                    kind: ResourceKind::Target,
                    id: target.to_string(),
                    service: service.to_string(),
                };
            }
        }
        Error::not_found(ResourceKind::Target, target.as_str())
    }
}
