//! [`DockerFleet`]: fleets of containers, one per instance, on one Docker host or several.

mod addresses;
mod containers;
mod found;
mod placement;
mod ports;
mod settings;
mod state;

pub use settings::{Limits, Network};

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::ContainerSummary;
use futures::future::join_all;
use immutable_core::{
    Cost, Error, Fleet, FleetId, FleetInfo, FleetSpec, Instance, InstanceState, Operation,
    ResourceKind, Result, ServiceName, tags,
};
use immutable_local::state_files::blocking;

use self::containers::{name_of, state_of};
use self::found::from_labels;
use self::state::{FleetState, States, fleet_id};
use crate::host::DockerHost;
use crate::images::{DockerImageStore, digest_of};

/// Fleets of containers started from a [`DockerImageStore`]'s images, spread over its hosts.
///
/// # Expected flow
/// [`launch`](Fleet::launch) places instance `n` on host `n mod hosts`, picks each a port,
/// records both in `<root>/fleets/<fleet>.json`, copies the image to any host that lacks it,
/// then creates and starts one container per instance: named after the instance id
/// (`dk-<16 hex>-<n>`), with the SDK's ownership labels (service, fleet, deployment, and the
/// fleet's key, capacity, image and the instance's port), `PORT`, `INSTANCE_ID`,
/// `IMAGE_ID`, `SERVICE` and `FLEET_ID` in its environment, the restart policy `no` (a
/// dead instance stays dead, as immutable infrastructure wants; the deployment sees it
/// unhealthy), and the [`Limits`]. Health comes from the router's HTTP checks, which a
/// `FROM scratch` image needs: it has no shell for a Docker `HEALTHCHECK`.
///
/// # Guarantees
/// - Launch is idempotent by `(service, key)`: the fleet id is derived from them, each
///   container's name from the fleet id, and a container an earlier attempt made is started
///   if it is not running, never made twice.
/// - [`terminate`](Fleet::terminate) stops every container of the fleet on every host
///   (SIGTERM, then SIGKILL after the grace period) and removes it, then marks the fleet
///   terminated; it is idempotent.
/// - Only containers carrying the SDK's labels for the service are ever listed, stopped or
///   removed (I6). A fleet is found by its labels even without its state file (launched from
///   another store root, or a file lost): [`list`](Fleet::list) shows it, and terminate
///   removes it.
/// - Describe, list and terminate make one list call per host, whatever the fleet's size.
///
/// # Caveats
/// - An instance is running when its container runs; whether it listens is the router's
///   health check's to say.
/// - In [`Network::Host`] a port is free when nothing on this machine holds it (for a host
///   reached at a loopback address) and no container of the SDK on that host records it;
///   a remote host's other programs are not seen, and an instance that cannot bind exits
///   and is never healthy.
#[derive(Debug, Clone)]
pub struct DockerFleet {
    images: DockerImageStore,
    states: States,
    settings: Arc<FleetSettings>,
}

#[derive(Debug, Clone)]
struct FleetSettings {
    ports: RangeInclusive<u16>,
    grace: Duration,
    network: Network,
    limits: Limits,
}

impl DockerFleet {
    /// Fleets over the same root and hosts as `images`.
    ///
    /// # Errors
    /// [`Error::Provider`] naming the directory if `<root>/fleets` cannot be created.
    pub fn open(images: &DockerImageStore) -> Result<Self> {
        Ok(DockerFleet {
            states: States::open(images.root())?,
            images: images.clone(),
            settings: Arc::new(FleetSettings {
                ports: 12000..=19999,
                grace: Duration::from_secs(10),
                network: Network::Host,
                limits: Limits::none(),
            }),
        })
    }

    /// Ports instances may listen on. Default 12000 to 19999: below Linux's ephemeral range
    /// and apart from the local backend's.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `port_range` when it is empty or reaches below 1024.
    pub fn with_port_range(mut self, ports: RangeInclusive<u16>) -> Result<Self> {
        let (start, end) = (*ports.start(), *ports.end());
        if start > end || start < 1024 {
            return Err(Error::invalid(
                "port_range",
                format!("{start}-{end} must be a non-empty range of ports from 1024 to 65535"),
            ));
        }
        Arc::make_mut(&mut self.settings).ports = ports;
        Ok(self)
    }

    /// How long terminate waits after SIGTERM before SIGKILL. Default 10 s; whole seconds,
    /// rounded up, as the Engine API takes it.
    pub fn with_grace_period(mut self, grace: Duration) -> Self {
        Arc::make_mut(&mut self.settings).grace = grace;
        self
    }

    /// How the proxy reaches the containers (default [`Network::Host`]).
    pub fn with_network(mut self, network: Network) -> Self {
        Arc::make_mut(&mut self.settings).network = network;
        self
    }

    /// Resource limits of new containers.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        Arc::make_mut(&mut self.settings).limits = limits;
        self
    }

    fn grace_secs(&self) -> i32 {
        let grace = self.settings.grace;
        i32::try_from(grace.as_secs() + u64::from(grace.subsec_nanos() > 0)).unwrap_or(i32::MAX)
    }

    pub(super) fn host(&self, name: &str) -> Result<&DockerHost> {
        self.images.hosts().get(name).ok_or_else(|| {
            Error::invalid(
                "hosts",
                format!(
                    "this fleet has instances on Docker host `{name}`, which is not among the \
                     hosts given: add it back to reach them"
                ),
            )
        })
    }

    /// The fleet's state: its file, or, without one, what its containers' labels say.
    /// Another service's fleet is [`Error::NotOwned`], an unknown one [`Error::NotFound`].
    pub(super) async fn owned(&self, service: &ServiceName, fleet: &FleetId) -> Result<FleetState> {
        let (states, id) = (self.states.clone(), fleet.clone());
        if let Some(state) = blocking(move || states.read(&id)).await? {
            if &state.service != service {
                return Err(not_owned(fleet, service));
            }
            return Ok(state);
        }
        let mut found = Vec::new();
        for host in self.images.hosts().iter() {
            let label = format!("{}={fleet}", tags::FLEET);
            for c in containers::list(host, &[label]).await? {
                found.push((host.name().to_owned(), c));
            }
        }
        if found.is_empty() {
            return Err(Error::not_found(ResourceKind::Fleet, fleet.as_str()));
        }
        from_labels(service, fleet, &found)
    }

    /// The fleet's containers on the hosts it was placed on, by name.
    pub(super) async fn containers_of(
        &self,
        state: &FleetState,
    ) -> Result<BTreeMap<String, ContainerSummary>> {
        let hosts: BTreeSet<&str> = state.instances.iter().map(|p| p.host.as_str()).collect();
        let labels = [
            format!("{}={}", tags::SERVICE, state.service),
            format!("{}={}", tags::FLEET, state.id),
        ];
        let mut by_name = BTreeMap::new();
        for name in hosts {
            for c in containers::list(self.host(name)?, &labels).await? {
                if let Some(n) = name_of(&c) {
                    by_name.insert(n.to_owned(), c);
                }
            }
        }
        Ok(by_name)
    }

    fn info(state: &FleetState, found: &BTreeMap<String, ContainerSummary>) -> FleetInfo {
        let spec = FleetSpec::new(
            state.service.clone(),
            state.deployment.clone(),
            state.image.clone(),
            state.capacity,
        )
        .with_key(state.key.clone());
        let instances = state.instances.iter().map(|p| Instance {
            id: p.id.clone(),
            state: found
                .get(p.id.as_str())
                .map_or(InstanceState::Terminated, state_of),
        });
        FleetInfo::new(state.id.clone(), spec).with_instances(instances)
    }

    async fn observe(&self, state: &FleetState) -> Result<FleetInfo> {
        Ok(Self::info(state, &self.containers_of(state).await?))
    }
}

pub(super) fn not_owned(fleet: &FleetId, service: &ServiceName) -> Error {
    Error::NotOwned {
        kind: ResourceKind::Fleet,
        id: fleet.to_string(),
        service: service.to_string(),
    }
}

#[async_trait]
impl Fleet for DockerFleet {
    async fn launch(&self, spec: &FleetSpec) -> Result<FleetInfo> {
        if spec.capacity == 0 || spec.capacity > 1000 {
            return Err(Error::invalid(
                "capacity",
                "must be from 1 to 1000 containers",
            ));
        }
        digest_of(spec.image.as_str(), "image")?;
        let state = self
            .prepare(spec, fleet_id(&spec.service, &spec.key))
            .await?;
        if state.terminated {
            return self.observe(&state).await;
        }
        let placed_on: BTreeSet<&str> = state.instances.iter().map(|p| p.host.as_str()).collect();
        for name in placed_on {
            self.images
                .ensure_on(self.host(name)?, &state.image)
                .await?;
        }
        let found = self.containers_of(&state).await?;
        let (limits, grace) = (self.settings.limits, i64::from(self.grace_secs()));
        // Every instance's calls run to their end before launch returns, failed or not: a call
        // dropped in flight could make a container after a rollback looked for them.
        let made = join_all(state.instances.iter().map(|placed| {
            let existing = found.get(placed.id.as_str()).and_then(|c| c.state);
            let state = &state;
            async move {
                let host = self.host(&placed.host)?;
                use bollard::models::ContainerSummaryStateEnum as S;
                if !matches!(existing, None | Some(S::CREATED)) {
                    return Ok(());
                }
                if existing.is_none() {
                    containers::create(host, state, placed, &limits, grace).await?;
                }
                match containers::start(host, placed.id.as_str()).await {
                    // Gone between the look and the start: a create whose client went away
                    // (a deploy tool that died mid-call) is undone by the daemon. Make it
                    // again, once.
                    Err(e) if e.is_not_found() => {
                        containers::create(host, state, placed, &limits, grace).await?;
                        containers::start(host, placed.id.as_str()).await
                    }
                    other => other,
                }
            }
        }))
        .await;
        made.into_iter().collect::<Result<Vec<()>>>()?;
        self.observe(&state).await
    }

    async fn describe(&self, service: &ServiceName, fleet: &FleetId) -> Result<FleetInfo> {
        let state = self.owned(service, fleet).await?;
        self.observe(&state).await
    }

    async fn list(&self, service: &ServiceName) -> Result<Vec<FleetInfo>> {
        let label = format!("{}={service}", tags::SERVICE);
        let mut by_fleet: BTreeMap<String, Vec<(String, ContainerSummary)>> = BTreeMap::new();
        for host in self.images.hosts().iter() {
            for c in containers::list(host, std::slice::from_ref(&label)).await? {
                let fleet = c.labels.as_ref().and_then(|l| l.get(tags::FLEET)).cloned();
                if let Some(fleet) = fleet {
                    by_fleet
                        .entry(fleet)
                        .or_default()
                        .push((host.name().to_owned(), c));
                }
            }
        }
        let states = self.states.clone();
        let known: BTreeMap<String, FleetState> = blocking(move || states.all())
            .await?
            .into_iter()
            .filter(|s| &s.service == service)
            .map(|s| (s.id.to_string(), s))
            .collect();
        let mut fleets = Vec::new();
        for (fleet, found) in &by_fleet {
            let state = match known.get(fleet) {
                Some(state) => state.clone(),
                None => from_labels(service, &FleetId::new(fleet.as_str()), found)?,
            };
            let named = found
                .iter()
                .filter_map(|(_, c)| Some((name_of(c)?.to_owned(), c.clone())))
                .collect();
            let info = Self::info(&state, &named);
            if info.is_live() {
                fleets.push(info);
            }
        }
        Ok(fleets)
    }

    async fn terminate(&self, service: &ServiceName, fleet: &FleetId) -> Result<()> {
        let state = self.owned(service, fleet).await?;
        let labels = [
            format!("{}={service}", tags::SERVICE),
            format!("{}={fleet}", tags::FLEET),
        ];
        let grace = self.grace_secs();
        for host in self.images.hosts().iter() {
            let found = containers::list(host, &labels).await?;
            let stopped = join_all(
                found
                    .iter()
                    .filter_map(name_of)
                    .map(|name| containers::stop_and_remove(host, name, grace)),
            )
            .await;
            stopped.into_iter().collect::<Result<Vec<()>>>()?;
        }
        let states = self.states.clone();
        blocking(move || {
            let _lock = states.lock(&state.service)?;
            match states.read(&state.id)? {
                Some(mut known) if !known.terminated => {
                    known.terminated = true;
                    states.write(&known)
                }
                _ => Ok(()),
            }
        })
        .await
    }

    fn cost(&self, _service: &ServiceName, operation: Operation) -> Option<Cost> {
        let hosts = self.images.hosts().len() as u32;
        Some(match operation {
            // Per instance: create and start; per host: the port survey and a list.
            Operation::Launch => Cost::calls(3 * hosts).batched(2, 1),
            Operation::Terminate => Cost::calls(hosts).batched(2, 1),
            Operation::Describe | Operation::ListFleets => Cost::calls(hosts),
            _ => Cost::calls(0),
        })
    }
}
