//! The service's images and the fleets that use them, for the `image` commands: no router,
//! no engine, no store.

use std::sync::Arc;

use immutable_aws::AwsImageStore;
use immutable_core::{Fleet, FleetInfo, Image, ImageStore, ServiceName};
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
    /// AMIs and EC2 instances (or groups) in a region.
    Aws {
        images: AwsImageStore,
        fleet: Arc<dyn Fleet>,
        region: Option<String>,
    },
}

impl Catalog {
    /// The configured backend's catalog.
    pub(crate) async fn open(config: &Config) -> Result<Catalog, Failure> {
        Ok(match config.backend()? {
            BackendKind::Local => {
                let images = LocalImageStore::open(super::local::root(&config.local)?)?;
                let fleet = ProcessFleet::open(&images)?;
                Catalog::Local { images, fleet }
            }
            BackendKind::Aws => {
                let clients = super::aws_clients(&config.aws).await;
                let fleet: Arc<dyn Fleet> = match config.aws.fleet.unwrap_or_default() {
                    FleetKind::Instances => Arc::new(super::aws::instances(&clients, &config.aws)?),
                    FleetKind::Asg => Arc::new(super::aws::groups(&clients, &config.aws)?),
                };
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
            Catalog::Aws { fleet, .. } => fleet.as_ref(),
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
