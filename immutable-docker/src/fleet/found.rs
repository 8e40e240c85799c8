//! A fleet found by its containers' labels alone, when its state file is missing (launched
//! from another store root, or lost in a crash).

use bollard::models::ContainerSummary;
use immutable_core::{
    DeploymentId, Error, FleetId, FleetKey, ImageId, InstanceId, Result, ServiceName, tags,
};

use super::containers::{PORT_LABEL, name_of};
use super::state::{FleetState, Placed};
use super::{Network, not_owned};
use crate::images::digest_of;

/// A fleet rebuilt from its containers' labels (no state file): their names, hosts and ports.
pub(super) fn from_labels(
    service: &ServiceName,
    fleet: &FleetId,
    found: &[(String, ContainerSummary)],
) -> Result<FleetState> {
    let label = |c: &ContainerSummary, k: &str| c.labels.as_ref().and_then(|l| l.get(k)).cloned();
    let first = &found[0].1;
    if label(first, tags::SERVICE).as_deref() != Some(service.as_str()) {
        return Err(not_owned(fleet, service));
    }
    let unreadable = |what: &str| {
        Error::provider(format!(
            "the containers of fleet {fleet} carry no readable {what} label; remove them by hand"
        ))
    };
    let deployment = label(first, tags::DEPLOYMENT)
        .and_then(|d| DeploymentId::parse(&d).ok())
        .ok_or_else(|| unreadable(tags::DEPLOYMENT))?;
    let image = label(first, tags::IMAGE).ok_or_else(|| unreadable(tags::IMAGE))?;
    digest_of(&image, "image").map_err(|_| unreadable(tags::IMAGE))?;
    let instances = found
        .iter()
        .filter(|(_, c)| label(c, tags::SERVICE).as_deref() == Some(service.as_str()))
        .filter_map(|(host, c)| {
            Some(Placed {
                id: InstanceId::new(name_of(c)?),
                host: host.clone(),
                port: label(c, PORT_LABEL)?.parse().ok()?,
            })
        })
        .collect();
    Ok(FleetState {
        id: fleet.clone(),
        service: service.clone(),
        key: FleetKey::new(label(first, tags::FLEET_KEY).unwrap_or_else(|| fleet.to_string())),
        deployment,
        image: ImageId::new(image),
        capacity: label(first, tags::CAPACITY)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        network: Network::Host,
        instances,
        terminated: false,
    })
}
