//! Fleets read back from their instances: the tags are the fleet.

use std::collections::BTreeMap;

use immutable_core::{
    DeploymentId, FleetId, FleetInfo, FleetKey, FleetSpec, Instance, ServiceName, tags,
};

use crate::ec2::Described;

/// Builds fleets from instances grouped by their fleet tag.
pub(super) fn group(service: &ServiceName, instances: Vec<Described>) -> Vec<FleetInfo> {
    let mut by_fleet: BTreeMap<String, Vec<Described>> = BTreeMap::new();
    for i in instances {
        if let Some(f) = i.tags.get(tags::FLEET) {
            by_fleet.entry(f.clone()).or_default().push(i);
        }
    }
    by_fleet
        .into_iter()
        .map(|(id, members)| fleet_of(service, FleetId::new(id), members))
        .collect()
}

/// One fleet, its key, deployment and capacity read from the tags of its first instance.
fn fleet_of(service: &ServiceName, id: FleetId, members: Vec<Described>) -> FleetInfo {
    let first = &members[0];
    let tag = |k: &str| first.tags.get(k).cloned().unwrap_or_default();
    let spec = FleetSpec::new(
        service.clone(),
        DeploymentId::new(tag(tags::DEPLOYMENT)),
        first.image.clone(),
        tag(tags::CAPACITY).parse().unwrap_or(members.len() as u32),
    )
    .with_key(FleetKey::new(tag(tags::FLEET_KEY)));
    FleetInfo::new(id, spec).with_instances(members.into_iter().map(instance))
}

/// A described instance as a fleet member.
pub(super) fn instance(d: Described) -> Instance {
    Instance {
        id: d.id,
        state: d.state,
    }
}
