//! The Docker backend: a catalog of Docker images and fleets of containers, their states
//! under the root, on the hosts of `--docker-host`, routed by HAProxy as on the local backend
//! (see `routing`); and `demo-setup`, which builds two `FROM scratch` images of the demo app.

use std::net::{IpAddr, Ipv4Addr};

use immutable_core::{Engine, EngineBuilder, Error};
use immutable_docker::{
    DockerFleet, DockerHost, DockerHosts, DockerImageStore, ImageSource, ImportRequest, Network,
    ScratchImage, TlsFiles,
};
use immutable_local::HaproxyRouter;

use super::routing::{Instances, root, router};
use crate::config::{Config, DockerConfig, HostSpec};
use crate::exit::{Failure, reason};
use crate::output::{DemoImage, DemoSetupDoc};

/// The label that tells the demo images apart (and one service's from another's: a service
/// cannot import an image another imported).
const DEMO_LABEL: &str = "demo-app";

/// An engine builder with the Docker backend for `service`, and its router.
pub(super) async fn engine(
    config: &Config,
    service: &str,
) -> Result<(EngineBuilder, HaproxyRouter), Failure> {
    let images = images(config).await?;
    let fleet = fleet_of(&images, &config.docker)?;
    let router = router(&config.local, Instances::Docker(fleet.clone()), [service]).await?;
    let builder = Engine::builder()
        .images(images)
        .fleet(fleet)
        .router(router.clone())
        .preview(router.clone());
    Ok((builder, router))
}

/// The image catalog under the root, over the hosts (connected to first: a host that does not
/// answer leaves nothing made).
pub(crate) async fn images(config: &Config) -> Result<DockerImageStore, Failure> {
    let root = root(&config.local)?;
    let hosts = hosts(&config.docker).await?;
    Ok(DockerImageStore::open(root, hosts)?)
}

/// The fleets of containers, with the configured network and limits.
pub(crate) async fn fleet(config: &Config) -> Result<DockerFleet, Failure> {
    fleet_of(&images(config).await?, &config.docker)
}

pub(super) fn fleet_of(
    images: &DockerImageStore,
    docker: &DockerConfig,
) -> Result<DockerFleet, Failure> {
    Ok(DockerFleet::open(images)?
        .with_network(docker.network)
        .with_limits(docker.limits))
}

/// Connects to every host, in order.
///
/// Refused (exit 2): TLS files that cannot be read. An error (exit 1): a daemon that does
/// not answer; the message names the host as it was given.
async fn hosts(docker: &DockerConfig) -> Result<DockerHosts, Failure> {
    let mut hosts = Vec::new();
    for spec in &docker.hosts {
        hosts.push(connect(spec, docker).await?);
    }
    DockerHosts::new(hosts).map_err(|e| {
        Failure::refused(format!(
            "--docker-host: {} (pass --docker-host NAME=URL)",
            reason(e)
        ))
    })
}

async fn connect(spec: &HostSpec, docker: &DockerConfig) -> Result<DockerHost, Failure> {
    let tls = docker
        .tls_dir
        .as_ref()
        .filter(|_| spec.url.starts_with("tcp://"));
    let host = match tls {
        Some(dir) => DockerHost::connect_tls(&spec.name, &spec.url, &TlsFiles::in_dir(dir)).await,
        None => DockerHost::connect(&spec.name, &spec.url).await,
    };
    let host = host.map_err(|e| match e {
        Error::InvalidInput { ref field, .. } if field == "tls" => Failure::refused(format!(
            "--docker-tls-dir (for {}): {}",
            spec.given,
            reason(e)
        )),
        e => {
            let mut failure = Failure::from(e);
            failure.message = format!("{}: {}", spec.given, failure.message);
            failure
        }
    })?;
    Ok(host.with_address(address(spec).await?))
}

/// Where HAProxy reaches a host's containers: this machine for a unix socket, the host of a
/// tcp:// URL (resolved, an IPv4 address preferred) for a daemon elsewhere.
async fn address(spec: &HostSpec) -> Result<IpAddr, Failure> {
    let Some(rest) = ["tcp://", "http://"]
        .iter()
        .find_map(|scheme| spec.url.strip_prefix(scheme))
    else {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let with_port = if authority.ends_with(']') || !authority.contains(':') {
        format!("{authority}:2375")
    } else {
        authority.to_owned()
    };
    let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| Failure::error(format!("{}: cannot resolve {authority}: {e}", spec.given)))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .map(std::net::SocketAddr::ip)
        .ok_or_else(|| Failure::error(format!("{}: {authority} has no address", spec.given)))
}

/// Builds two images of the demo app (this program, `FROM scratch`, run as `demo-app`: an
/// HTTP server on $PORT answering with its image id, on 127.0.0.1 for host networking and on
/// 0.0.0.0 for published ports) on the first host, and imports them as `<service>-v1` and
/// `<service>-v2`.
pub(crate) async fn demo_setup(config: &Config, service: &str) -> Result<DemoSetupDoc, Failure> {
    let root = root(&config.local)?;
    let images = images(config).await?;
    let program = std::env::current_exe()
        .map_err(|e| Failure::error(format!("cannot find this program: {e}")))?;
    let builder = images
        .hosts()
        .iter()
        .next()
        .ok_or_else(|| Failure::refused("name a Docker host: --docker-host NAME=URL"))?
        .clone();
    let mut names = Vec::new();
    for name in [format!("{service}-v1"), format!("{service}-v2")] {
        let mut image = ScratchImage::new(&program)
            .arg("demo-app")
            .label(DEMO_LABEL, &name);
        if config.docker.network == Network::Published {
            // Docker delivers a published port's traffic on the container's bridge address.
            image = image.env("DEMO_HOST", "0.0.0.0");
        }
        let id = image.build(builder.client()).await?;
        let image = images
            .import(ImportRequest::new(service, &name, ImageSource::Docker(id)))
            .await?;
        names.push(DemoImage::Imported {
            name,
            id: image.id.to_string(),
        });
    }
    Ok(DemoSetupDoc {
        root: Some(root.display().to_string()),
        images: names,
        ..DemoSetupDoc::default()
    })
}
