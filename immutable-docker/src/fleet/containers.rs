//! The Engine API calls on one host's containers: list by labels, create, start, stop and
//! remove. Every call names the container by the instance id (its name) and checks the
//! SDK's labels before it changes anything.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerSummary, ContainerSummaryStateEnum, HostConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions, StartContainerOptions,
    StopContainerOptions,
};
use immutable_core::{Error, InstanceState, ResourceKind, Result, tags};

use super::state::{FleetState, Placed};
use super::{Limits, Network};
use crate::error::status;
use crate::host::DockerHost;

/// The label holding an instance's port.
pub(crate) const PORT_LABEL: &str = "immutable:port";

/// The SDK's containers on `host` carrying every label of `labels` (`key=value`), stopped
/// ones included.
pub(crate) async fn list(host: &DockerHost, labels: &[String]) -> Result<Vec<ContainerSummary>> {
    let mut filters = vec![format!("{}={}", tags::MANAGED_BY, tags::MANAGED_BY_VALUE)];
    filters.extend(labels.iter().cloned());
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([("label".to_owned(), filters)])),
        ..Default::default()
    };
    host.client()
        .list_containers(Some(options))
        .await
        .map_err(|e| host.error("list containers", ResourceKind::Instance, "", e))
}

/// A container's name, without Docker's leading `/`.
pub(crate) fn name_of(container: &ContainerSummary) -> Option<&str> {
    container
        .names
        .as_ref()?
        .iter()
        .find_map(|n| n.strip_prefix('/').or(Some(n)))
}

/// A container's state in the core's terms.
pub(crate) fn state_of(container: &ContainerSummary) -> InstanceState {
    use ContainerSummaryStateEnum as S;
    match container.state {
        Some(S::RUNNING) => InstanceState::Running,
        Some(S::CREATED | S::RESTARTING) => InstanceState::Pending,
        Some(S::PAUSED) => InstanceState::Stopped,
        Some(S::STOPPING | S::REMOVING) => InstanceState::Stopping,
        _ => InstanceState::Terminated,
    }
}

/// What every container of the fleet carries: the ownership tags, and what rebuilds the
/// fleet from its containers alone (key, capacity, image) and allocates ports.
fn labels(fleet: &FleetState, placed: &Placed) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> =
        tags::ownership(&fleet.service, &fleet.id, &fleet.deployment)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
    labels.insert(tags::FLEET_KEY.to_owned(), fleet.key.to_string());
    labels.insert(tags::CAPACITY.to_owned(), fleet.capacity.to_string());
    labels.insert(tags::IMAGE.to_owned(), fleet.image.to_string());
    labels.insert(PORT_LABEL.to_owned(), placed.port.to_string());
    labels
}

/// Creates the instance's container (stopped). A container of that name made by an earlier
/// attempt is a success.
pub(crate) async fn create(
    host: &DockerHost,
    fleet: &FleetState,
    placed: &Placed,
    limits: &Limits,
    grace_secs: i64,
) -> Result<()> {
    let port = placed.port.to_string();
    let env = vec![
        format!("PORT={port}"),
        format!("INSTANCE_ID={}", placed.id),
        format!("IMAGE_ID={}", fleet.image),
        format!("SERVICE={}", fleet.service),
        format!("FLEET_ID={}", fleet.id),
    ];
    let (network_mode, port_bindings, exposed) = match fleet.network {
        Network::Host => ("host".to_owned(), None, None),
        Network::Published => {
            let binding = PortBinding {
                host_ip: Some(host.address().to_string()),
                host_port: Some(port.clone()),
            };
            let key = format!("{port}/tcp");
            (
                "bridge".to_owned(),
                Some(HashMap::from([(key.clone(), Some(vec![binding]))])),
                Some(vec![key]),
            )
        }
    };
    let body = ContainerCreateBody {
        image: Some(fleet.image.to_string()),
        env: Some(env),
        labels: Some(labels(fleet, placed)),
        exposed_ports: exposed,
        stop_signal: Some("SIGTERM".to_owned()),
        stop_timeout: Some(grace_secs),
        host_config: Some(HostConfig {
            network_mode: Some(network_mode),
            port_bindings,
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            memory: limits.memory_bytes,
            nano_cpus: limits.nano_cpus,
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some(placed.id.to_string()),
        ..Default::default()
    };
    match host.client().create_container(Some(options), body).await {
        Ok(_) => Ok(()),
        // The name is taken: an earlier attempt made it, or is making it right now (Docker
        // reserves the name before the container exists). Wait until it does.
        Err(e) if status(&e) == Some(409) => await_created(host, placed.id.as_str()).await,
        Err(e) => Err(host.error(
            "create container",
            ResourceKind::Instance,
            placed.id.as_str(),
            e,
        )),
    }
}

/// Waits (at most 10 s) until the container `name` can be inspected.
async fn await_created(host: &DockerHost, name: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + CREATE_WAIT;
    loop {
        match host.client().inspect_container(name, None).await {
            Ok(_) => return Ok(()),
            Err(e) if status(&e) == Some(404) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) if status(&e) == Some(404) => {
                return Err(Error::Timeout {
                    what: format!(
                        "container {name} on host {}, whose name another create holds",
                        host.name()
                    ),
                    after: CREATE_WAIT,
                });
            }
            Err(e) => return Err(host.error("inspect container", ResourceKind::Instance, name, e)),
        }
    }
}

/// How long a create that found its name taken waits for the container to exist.
const CREATE_WAIT: Duration = Duration::from_secs(10);

/// Starts a created container; one running already is a success.
pub(crate) async fn start(host: &DockerHost, name: &str) -> Result<()> {
    match host
        .client()
        .start_container(name, None::<StartContainerOptions>)
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if status(&e) == Some(304) => Ok(()),
        Err(e) => Err(host.error("start container", ResourceKind::Instance, name, e)),
    }
}

/// Stops a container (SIGTERM, then SIGKILL after `grace_secs`) and removes it; one gone
/// already is a success.
pub(crate) async fn stop_and_remove(host: &DockerHost, name: &str, grace_secs: i32) -> Result<()> {
    let stop = StopContainerOptions {
        t: Some(grace_secs),
        ..Default::default()
    };
    match host.client().stop_container(name, Some(stop)).await {
        Ok(()) => {}
        Err(e) if matches!(status(&e), Some(304 | 404)) => {}
        Err(e) => return Err(host.error("stop container", ResourceKind::Instance, name, e)),
    }
    let remove = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match host.client().remove_container(name, Some(remove)).await {
        Ok(()) => Ok(()),
        // 404: gone; 409: removal already in progress.
        Err(e) if matches!(status(&e), Some(404 | 409)) => Ok(()),
        Err(e) => Err(host.error("remove container", ResourceKind::Instance, name, e)),
    }
}
