//! [`HaproxyRouter`]: one HAProxy backend per service, driven through the runtime API.

mod api;
mod health;
mod state;
mod traffic;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use immutable_core::{Error, FleetInfo, InstanceId, ResourceKind, Result, ServiceName, TargetId};

use self::api::RuntimeApi;
use self::state::ServiceState;
use crate::ProcessFleet;
use crate::fsutil::io_error;

/// Where a fleet's instances listen, for the router to register them.
#[async_trait]
pub trait InstanceAddresses: Debug + Send + Sync + 'static {
    /// The address of each live instance of `fleet`.
    async fn addresses(&self, fleet: &FleetInfo) -> Result<Vec<(InstanceId, SocketAddr)>>;
}

#[async_trait]
impl InstanceAddresses for ProcessFleet {
    async fn addresses(&self, fleet: &FleetInfo) -> Result<Vec<(InstanceId, SocketAddr)>> {
        ProcessFleet::addresses(self, &fleet.service, &fleet.id).await
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
/// preview entry point is a second frontend whose backend gets the candidate's servers.
///
/// # Assumptions
/// HAProxy 2.6 or newer; each service's backend (named after the service unless configured)
/// uses a dynamic balance algorithm (`roundrobin`, `leastconn`, `first` or `random`) and has
/// `option httpchk`; the admin socket has `level admin`. [`Haproxy`](crate::Haproxy) starts
/// one configured so.
///
/// # Guarantees
/// The routing lives in `<state dir>/<service>.json`, written atomically, so that
/// [`restore`](Self::restore) can put it back into a restarted HAProxy (dynamic servers do not
/// survive a reload). Targets of another service are [`Error::NotOwned`].
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

/// HAProxy health-check settings of each dynamic server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CheckSettings {
    interval: Duration,
    rise: u32,
    fall: u32,
}

/// Builds a [`HaproxyRouter`].
#[derive(Debug)]
#[must_use]
pub struct HaproxyRouterBuilder {
    socket: PathBuf,
    state_dir: Option<PathBuf>,
    services: BTreeMap<String, (String, Option<String>)>,
    addresses: Option<Arc<dyn InstanceAddresses>>,
    checks: CheckSettings,
    drain_timeout: Duration,
}

impl HaproxyRouter {
    /// Starts building a router on HAProxy's admin socket.
    pub fn builder(admin_socket: impl Into<PathBuf>) -> HaproxyRouterBuilder {
        HaproxyRouterBuilder {
            socket: admin_socket.into(),
            state_dir: None,
            services: BTreeMap::new(),
            addresses: None,
            checks: CheckSettings {
                interval: Duration::from_millis(500),
                rise: 2,
                fall: 2,
            },
            drain_timeout: Duration::from_secs(30),
        }
    }

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

    /// Puts every service's routing back into HAProxy from the state files: after HAProxy was
    /// restarted or reloaded, which drops dynamic servers. Servers that exist are left as they
    /// are. Returns how many servers were added.
    ///
    /// # Errors
    /// Runtime-API and state-file failures.
    pub async fn restore(&self) -> Result<usize> {
        let mut added = 0;
        for (service, backends) in &self.inner.services {
            let _guard = self.inner.lock(service).await;
            let state = state::load(&self.inner.state_dir, service).await?;
            let present: Vec<String> = self
                .inner
                .api
                .stats(&backends.live)
                .await?
                .into_iter()
                .map(|r| r.name)
                .collect();
            let missing: Vec<_> = state
                .server_weights(&state.routing)
                .into_iter()
                .filter(|(s, _)| !present.contains(&s.name))
                .collect();
            let commands: Vec<String> = missing
                .iter()
                .flat_map(|(s, w)| self.inner.add_commands(&backends.live, s, *w))
                .collect();
            self.inner.api.write(&commands, &[traffic::EXISTS]).await?;
            added += missing.len();
            if let Some(t) = &state.preview {
                self.inner.preview_add(backends, &state, t).await?;
            }
        }
        Ok(added)
    }
}

impl HaproxyRouterBuilder {
    /// Routes `service` through the backend named after it, with the preview backend
    /// `<service>-preview` (as [`Haproxy`](crate::Haproxy) generates them).
    pub fn service(self, service: impl Into<String>) -> Self {
        let service = service.into();
        let preview = format!("{service}-preview");
        self.service_backends(service.clone(), service, Some(preview))
    }

    /// Routes `service` through `backend`, with a preview backend or none.
    pub fn service_backends(
        mut self,
        service: impl Into<String>,
        backend: impl Into<String>,
        preview: Option<String>,
    ) -> Self {
        self.services
            .insert(service.into(), (backend.into(), preview));
        self
    }

    /// The directory of the routing state files. Required.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Where instances listen: usually the [`ProcessFleet`]. Required.
    pub fn instances(mut self, addresses: impl InstanceAddresses) -> Self {
        self.addresses = Some(Arc::new(addresses));
        self
    }

    /// HAProxy health checks of each server: every `interval`, `rise` passes to be up, `fall`
    /// failures to be down. Default 500 ms, 2, 2. A check may take up to 2 s to answer
    /// (`timeout check`), whatever the interval, so a short interval does not mark a slow but
    /// healthy server down.
    pub fn health_checks(mut self, interval: Duration, rise: u32, fall: u32) -> Self {
        self.checks = CheckSettings {
            interval: interval.max(Duration::from_millis(10)),
            rise: rise.max(1),
            fall: fall.max(1),
        };
        self
    }

    /// How long detach waits for sessions to end before cutting them. Default 30 s.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Checks the socket and the backends, and builds the router.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `admin_socket` when it is missing or not an HAProxy
    /// admin socket, `service` for a bad name or a backend HAProxy lacks, `state_dir` or
    /// `instances` when unset.
    pub async fn build(self) -> Result<HaproxyRouter> {
        let state_dir = self
            .state_dir
            .ok_or_else(|| Error::invalid("state_dir", "is required: set it on the builder"))?;
        let addresses = self
            .addresses
            .ok_or_else(|| Error::invalid("instances", "is required: set it on the builder"))?;
        let api = RuntimeApi::new(&self.socket);
        api.verify().await?;
        let known = api.backends().await?;
        let mut services = BTreeMap::new();
        for (name, (live, preview)) in self.services {
            let service = ServiceName::new(name)?;
            for b in std::iter::once(&live).chain(preview.as_ref()) {
                if !known.contains(b) {
                    return Err(Error::invalid(
                        "service",
                        format!("HAProxy has no backend `{b}` for service `{service}`"),
                    ));
                }
            }
            services.insert(service, Backends { live, preview });
        }
        std::fs::create_dir_all(&state_dir)
            .map_err(|e| io_error("cannot create", &state_dir, e))?;
        Ok(HaproxyRouter {
            inner: Arc::new(Inner {
                api,
                state_dir,
                services,
                addresses,
                checks: self.checks,
                drain_timeout: self.drain_timeout,
                poll: Duration::from_millis(50),
                locks: Mutex::default(),
            }),
        })
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

    async fn lock(&self, service: &ServiceName) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = Arc::clone(
            self.locks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(service.clone())
                .or_default(),
        );
        lock.lock_owned().await
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
