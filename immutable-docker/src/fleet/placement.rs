//! Where a new fleet's instances run: each instance's host and port, chosen once and written
//! to the fleet's state file before any container is made.

use std::collections::{BTreeMap, BTreeSet};

use immutable_core::{FleetId, FleetSpec, InstanceId, Result, ServiceName};
use immutable_local::state_files::blocking;

use super::DockerFleet;
use super::containers::{self, PORT_LABEL};
use super::ports;
use super::state::{FleetState, Placed};

impl DockerFleet {
    /// The fleet's state file, written now with each instance's host and port unless an
    /// earlier launch wrote it.
    pub(super) async fn prepare(&self, spec: &FleetSpec, id: FleetId) -> Result<FleetState> {
        let (states, fid) = (self.states.clone(), id.clone());
        if let Some(state) = blocking(move || states.read(&fid)).await? {
            return Ok(state);
        }
        // Ports the SDK's containers on each host hold, whichever root launched them.
        let mut taken: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
        for host in self.images.hosts().iter() {
            let ports = taken.entry(host.name().to_owned()).or_default();
            for c in containers::list(host, &[]).await? {
                let port = c.labels.as_ref().and_then(|l| l.get(PORT_LABEL));
                if let Some(port) = port.and_then(|p| p.parse().ok()) {
                    ports.insert(port);
                }
            }
        }
        let hosts: Vec<(String, std::net::IpAddr)> = (0..spec.capacity)
            .map(|n| {
                let h = self.images.hosts().for_index(n);
                (h.name().to_owned(), h.address())
            })
            .collect();
        let (states, spec, settings) = (self.states.clone(), spec.clone(), self.settings.clone());
        blocking(move || {
            // One lock for every service's port picks: two launches never pick one port.
            let _ports = states.lock(&ServiceName::new("ports").expect("a valid name"))?;
            let _lock = states.lock(&spec.service)?;
            if let Some(state) = states.read(&id)? {
                return Ok(state);
            }
            for other in states.all()?.iter().filter(|s| !s.terminated) {
                for p in &other.instances {
                    taken.entry(p.host.clone()).or_default().insert(p.port);
                }
            }
            let mut instances = Vec::new();
            for (n, (host, address)) in hosts.into_iter().enumerate() {
                let ports = taken.entry(host.clone()).or_default();
                let port = ports::pick(&settings.ports, address, ports)?;
                instances.push(Placed {
                    id: InstanceId::new(format!("{id}-{n}")),
                    host,
                    port,
                });
            }
            let state = FleetState {
                id,
                service: spec.service.clone(),
                key: spec.key.clone(),
                deployment: spec.deployment.clone(),
                image: spec.image.clone(),
                capacity: spec.capacity,
                network: settings.network,
                instances,
                terminated: false,
            };
            states.write(&state)?;
            Ok(state)
        })
        .await
    }
}
