//! HAProxy, as the local and Docker backends route through it: the managed proxy under the
//! root or the admin socket of one's own, the router's state, and the instances whose
//! addresses it routes to (processes or containers).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use immutable_core::{FleetId, InstanceId, ServiceName};
use immutable_docker::DockerFleet;
use immutable_local::{HaproxyRouter, InstanceAddresses, ManagedProxy, ProcessFleet};

use crate::cli::{BackendKind, LocalFlags};
use crate::config::Config;
use crate::exit::Failure;

/// How often a running command looks for servers HAProxy lost in a restart or reload.
pub(crate) const RESTORE_EVERY: Duration = Duration::from_millis(250);

/// The store root, which the local and Docker backends need.
pub(crate) fn root(local: &LocalFlags) -> Result<&PathBuf, Failure> {
    local.root.as_ref().ok_or_else(|| {
        Failure::refused(
            "the local and Docker backends keep images and fleets under a root: pass --root \
             DIR (or root in [local], or [docker], of the service file)",
        )
    })
}

/// The instances a router sends traffic to: the configured backend's fleets.
#[derive(Debug, Clone)]
pub(crate) enum Instances {
    /// Processes on this machine.
    Local(ProcessFleet),
    /// Containers on Docker hosts.
    Docker(DockerFleet),
}

#[async_trait]
impl InstanceAddresses for Instances {
    async fn addresses(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
    ) -> immutable_core::Result<Vec<(InstanceId, SocketAddr)>> {
        match self {
            Instances::Local(f) => f.addresses(service, fleet).await,
            Instances::Docker(f) => f.addresses(service, fleet).await,
        }
    }
}

/// The configured backend's instances (the local backend's when none is named, as `proxy`
/// takes it); on Docker this connects to the hosts.
pub(crate) async fn instances(config: &Config) -> Result<Instances, Failure> {
    Ok(match config.backend {
        Some(BackendKind::Docker) => Instances::Docker(super::docker::fleet(config).await?),
        _ => Instances::Local(super::local::fleet(&config.local)?),
    })
}

/// A router for `services` on the configured HAProxy, routing to `instances`.
pub(crate) async fn router<'a>(
    local: &LocalFlags,
    instances: impl InstanceAddresses,
    services: impl IntoIterator<Item = &'a str>,
) -> Result<HaproxyRouter, Failure> {
    let socket = haproxy_socket(local)?;
    let interval = local
        .health_check_interval
        .unwrap_or(Duration::from_millis(500));
    let builder = services
        .into_iter()
        .fold(HaproxyRouter::builder(socket), |b, s| b.service(s));
    Ok(builder
        .state_dir(router_state(local)?)
        .instances(instances)
        .health_checks(interval, 2, 2)
        .build()
        .await?)
}

/// HAProxy's admin socket: --haproxy-socket, else the managed proxy's under --root when one
/// was started there.
fn haproxy_socket(local: &LocalFlags) -> Result<PathBuf, Failure> {
    if let Some(s) = &local.haproxy_socket {
        return Ok(s.clone());
    }
    if let Some(root) = &local.root {
        let proxy = ManagedProxy::new(root.join("proxy"));
        if proxy.status()?.is_some() {
            return Ok(proxy.admin_socket());
        }
    }
    Err(Failure::refused(
        "the local and Docker backends route through HAProxy, and none runs under --root: \
         start one (`immutable proxy start --root DIR --port 8080`), or pass --haproxy-socket \
         PATH (the admin socket of your own HAProxy), or haproxy_socket in [local] (or \
         [docker]) of the service file",
    ))
}

/// Where the managed proxy lives: `<root>/proxy`.
pub(crate) fn proxy_dir(local: &LocalFlags) -> Result<PathBuf, Failure> {
    Ok(root(local)?.join("proxy"))
}

/// Where the router keeps each service's routing.
pub(crate) fn router_state(local: &LocalFlags) -> Result<PathBuf, Failure> {
    Ok(match &local.router_state {
        Some(dir) => dir.clone(),
        None => root(local)?.join("router"),
    })
}
