//! [`Snapshot`]: a copy of the mock's whole state, for assertions.

use std::collections::BTreeMap;

use immutable_core::{
    FleetId, HealthState, Image, ImageId, InstanceId, InstanceState, Labels, Routing, Scaling,
    ServiceName, TargetId,
};
use tokio::time::Instant;

use crate::cloud::{MockCloud, owner};

impl MockCloud {
    /// A copy of the whole state, for assertions.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = self.lock();
        s.settle_routes();
        let now = Instant::now();
        Snapshot {
            images: s
                .images
                .values()
                .filter(|i| !i.retired)
                .map(|i| i.image.clone())
                .collect(),
            retired_images: s
                .images
                .values()
                .filter(|i| i.retired)
                .map(|i| i.image.id.clone())
                .collect(),
            fleets: s
                .fleets
                .values()
                .map(|f| FleetSnapshot {
                    id: f.id.clone(),
                    service: owner(&f.tags),
                    tags: f.tags.clone(),
                    image: f.image.clone(),
                    scaling: f.scaling,
                    instances: f
                        .instances
                        .iter()
                        .map(|i| (i.clone(), s.instance_state(i, now)))
                        .collect(),
                })
                .collect(),
            targets: s
                .targets
                .iter()
                .filter(|(_, t)| !t.deleted)
                .map(|(id, t)| TargetSnapshot {
                    id: id.clone(),
                    fleet: t.fleet.clone(),
                    service: owner(&t.tags),
                    healthy: t
                        .registered
                        .keys()
                        .filter(|i| s.health_of(t, i, now) == HealthState::Healthy)
                        .count(),
                    registered: t.registered.keys().cloned().collect(),
                })
                .collect(),
            routing: s
                .routes
                .iter()
                .map(|(svc, r)| (svc.clone(), r.current.clone()))
                .collect(),
            previews: s.previews.clone(),
        }
    }
}

/// A copy of the mock's whole state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Images not retired.
    pub images: Vec<Image>,
    /// Images retired.
    pub retired_images: Vec<ImageId>,
    /// Every fleet ever launched, with its instances' states.
    pub fleets: Vec<FleetSnapshot>,
    /// Targets not deleted.
    pub targets: Vec<TargetSnapshot>,
    /// Each service's routing.
    pub routing: BTreeMap<ServiceName, Routing>,
    /// Each service's preview target.
    pub previews: BTreeMap<ServiceName, TargetId>,
}

/// A fleet in a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetSnapshot {
    /// Its id.
    pub id: FleetId,
    /// Its owner, from its tags; `None` for a foreign fleet.
    pub service: Option<ServiceName>,
    /// Its tags.
    pub tags: Labels,
    /// Its image.
    pub image: ImageId,
    /// Its instances and their states.
    pub instances: Vec<(InstanceId, InstanceState)>,
    /// Whether its own scaling is held or active.
    pub scaling: Scaling,
}

impl FleetSnapshot {
    /// Whether any instance is pending or running.
    pub fn is_live(&self) -> bool {
        self.instances.iter().any(|(_, s)| s.is_live())
    }

    /// How many instances are pending or running.
    pub fn live_instances(&self) -> usize {
        self.instances.iter().filter(|(_, s)| s.is_live()).count()
    }
}

/// A target in a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TargetSnapshot {
    /// Its id.
    pub id: TargetId,
    /// Its fleet.
    pub fleet: FleetId,
    /// Its owner, from its tags.
    pub service: Option<ServiceName>,
    /// Registered instances.
    pub registered: Vec<InstanceId>,
    /// How many of them pass health checks.
    pub healthy: usize,
}

impl Snapshot {
    /// The service's fleets with a live instance.
    pub fn live_fleets(&self, service: &ServiceName) -> Vec<&FleetSnapshot> {
        self.fleets
            .iter()
            .filter(|f| f.service.as_ref() == Some(service) && f.is_live())
            .collect()
    }

    /// The service's targets.
    pub fn targets_of(&self, service: &ServiceName) -> Vec<&TargetSnapshot> {
        self.targets
            .iter()
            .filter(|t| t.service.as_ref() == Some(service))
            .collect()
    }

    /// The service's routing (empty if it never had any).
    pub fn routing_of(&self, service: &ServiceName) -> Routing {
        self.routing.get(service).cloned().unwrap_or_default()
    }

    /// One target by id.
    pub fn target(&self, id: &TargetId) -> Option<&TargetSnapshot> {
        self.targets.iter().find(|t| &t.id == id)
    }

    /// One fleet by id.
    pub fn fleet(&self, id: &FleetId) -> Option<&FleetSnapshot> {
        self.fleets.iter().find(|f| &f.id == id)
    }
}
