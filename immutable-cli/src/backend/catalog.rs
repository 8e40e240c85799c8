//! The service's images and the fleets that use them, for the `image` commands: no router,
//! no engine, no store.

use std::sync::Arc;

use immutable_aws::AwsImageStore;
use immutable_core::{Fleet, FleetInfo, Image, ImageStore, ServiceName};
use immutable_docker::{DockerFleet, DockerImageStore};
use immutable_local::{LocalImageStore, ProcessFleet};

use crate::cli::{BackendKind, FleetKind};
use crate::config::Config;
use crate::exit::Failure;

/// A backend's image catalog and fleets.
#[derive(Debug)]
pub(crate) enum Catalog {
    /// Artifact directories and processes under a root.
    Local {
        images: LocalImageStore,
        fleet: ProcessFleet,
    },
    /// Docker images on the hosts, and fleets of containers, their states under a root.
    Docker {
        images: DockerImageStore,
        fleet: DockerFleet,
    },
    /// AMIs and EC2 instances (or groups) in a region.
    Aws {
        images: AwsImageStore,
        /// The fleets, or why they cannot be read (no launch template or instance type
        /// given): `import` needs none.
        fleet: Result<Arc<dyn Fleet>, String>,
        region: Option<String>,
    },
}

impl Catalog {
    /// The configured backend's catalog.
    pub(crate) async fn open(config: &Config) -> Result<Catalog, Failure> {
        Ok(match config.backend()? {
            BackendKind::Local => {
                let images = LocalImageStore::open(super::routing::root(&config.local)?)?;
                let fleet = ProcessFleet::open(&images)?;
                Catalog::Local { images, fleet }
            }
            BackendKind::Docker => {
                let images = super::docker::images(config).await?;
                let fleet = super::docker::fleet_of(&images, &config.docker)?;
                Catalog::Docker { images, fleet }
            }
            BackendKind::Aws => {
                let clients = super::aws_clients_in_region(&config.aws).await?;
                let fleet: Result<Arc<dyn Fleet>, Failure> =
                    match config.aws.fleet.unwrap_or_default() {
                        FleetKind::Instances => super::aws::instances(&clients, &config.aws)
                            .map(|f| Arc::new(f) as Arc<dyn Fleet>),
                        FleetKind::Asg => super::aws::groups(&clients, &config.aws)
                            .map(|f| Arc::new(f) as Arc<dyn Fleet>),
                    };
                let fleet = fleet.map_err(|f| f.message.clone());
                Catalog::Aws {
                    images: AwsImageStore::new(&clients),
                    fleet,
                    region: clients.sdk.region().map(|r| r.to_string()),
                }
            }
        })
    }

    /// The image store.
    pub(crate) fn images(&self) -> &dyn ImageStore {
        match self {
            Catalog::Local { images, .. } => images,
            Catalog::Docker { images, .. } => images,
            Catalog::Aws { images, .. } => images,
        }
    }

    /// The service's fleets that still have instances.
    pub(crate) async fn live_fleets(
        &self,
        service: &ServiceName,
    ) -> Result<Vec<FleetInfo>, Failure> {
        let fleet: &dyn Fleet = match self {
            Catalog::Local { fleet, .. } => fleet,
            Catalog::Docker { fleet, .. } => fleet,
            Catalog::Aws { fleet, .. } => fleet.as_deref().map_err(|why| {
                Failure::refused(format!(
                    "{why} (the image commands read the service's fleets to tell which images \
                     are in use, with the options a deploy takes)"
                ))
            })?,
        };
        let mut fleets = fleet.list(service).await?;
        fleets.retain(FleetInfo::is_live);
        Ok(fleets)
    }
}

/// The fleets of `live` launched from `image`.
pub(crate) fn users<'a>(image: &Image, live: &'a [FleetInfo]) -> Vec<&'a FleetInfo> {
    live.iter().filter(|f| f.image == image.id).collect()
}
