//! The AWS backends as one [`Backends`], with every capability they have, so that an engine
//! over Auto Scaling groups cannot be built without the scaling control that holds the old
//! group at its size.

use std::sync::Arc;

use immutable_core::Backends;

use crate::{AsgFleet, AwsFleet, AwsImageStore, AwsRouter};

/// AMIs, bare EC2 instances and an ALB, with the router's preview entry point (a service
/// without a preview listener answers `NotSupported`, and its preview steps are skipped) and
/// adoption of instances made by hand. For
/// [`EngineBuilder::backends`](immutable_core::EngineBuilder::backends).
pub fn instance_backends(images: AwsImageStore, fleet: AwsFleet, router: AwsRouter) -> Backends {
    let (fleet, router) = (Arc::new(fleet), Arc::new(router));
    Backends::new(Arc::new(images), fleet.clone(), router.clone())
        .with_preview(router.clone())
        .with_adoption(fleet, router)
}

/// AMIs, Auto Scaling groups and an ALB, with the preview entry point, adoption of a group
/// made by hand, and the groups' scaling control. Give the router the fleet's
/// [`membership`](AsgFleet::membership).
pub fn group_backends(images: AwsImageStore, fleet: AsgFleet, router: AwsRouter) -> Backends {
    let (fleet, router) = (Arc::new(fleet), Arc::new(router));
    Backends::new(Arc::new(images), fleet.clone(), router.clone())
        .with_preview(router.clone())
        .with_scaling(fleet.clone())
        .with_adoption(fleet, router)
}
