//! [`Backends`]: one provider's three backends and the capabilities it has, registered on an
//! [`EngineBuilder`](crate::EngineBuilder) in one call.

use std::sync::Arc;

use crate::{
    Fleet, FleetAdoption, ImageStore, PreviewRouter, ScalingControl, TargetAdoption, TrafficRouter,
};

/// A provider's backends: the three every engine needs, and the capabilities only some
/// providers have, each present or absent by choice (never a method that quietly does
/// nothing). [`EngineBuilder::backends`](crate::EngineBuilder::backends) registers them all;
/// the conformance suite (feature `conformance`) checks each one present.
///
/// ```
/// # fn demo(cloud: immutable_mock::MockCloud) {
/// use std::sync::Arc;
/// use immutable_core::Backends;
///
/// // A provider without a preview entry point, scaling control or adoption:
/// let plain = Backends::from_one(cloud.clone());
/// assert!(plain.preview.is_none());
/// // The same with a preview entry point:
/// let with_preview = Backends::from_one(cloud.clone()).with_preview(Arc::new(cloud));
/// assert!(with_preview.preview.is_some());
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Backends {
    /// The image catalog.
    pub images: Arc<dyn ImageStore>,
    /// The fleet backend.
    pub fleet: Arc<dyn Fleet>,
    /// The router.
    pub router: Arc<dyn TrafficRouter>,
    /// The router's preview entry point, if it has one.
    pub preview: Option<Arc<dyn PreviewRouter>>,
    /// Scaling control, for fleets that scale by themselves.
    pub scaling: Option<Arc<dyn ScalingControl>>,
    /// Adoption of a fleet and target made by hand: the fleet side and the router side.
    pub adoption: Option<(Arc<dyn FleetAdoption>, Arc<dyn TargetAdoption>)>,
}

impl Backends {
    /// The three required backends, with no capability.
    pub fn new(
        images: Arc<dyn ImageStore>,
        fleet: Arc<dyn Fleet>,
        router: Arc<dyn TrafficRouter>,
    ) -> Self {
        Backends {
            images,
            fleet,
            router,
            preview: None,
            scaling: None,
            adoption: None,
        }
    }

    /// One value implementing all three traits, shared, with no capability.
    pub fn from_one<T: ImageStore + Fleet + TrafficRouter + Clone>(backend: T) -> Self {
        Backends::new(
            Arc::new(backend.clone()),
            Arc::new(backend.clone()),
            Arc::new(backend),
        )
    }

    /// With a preview entry point.
    #[must_use]
    pub fn with_preview(mut self, preview: Arc<dyn PreviewRouter>) -> Self {
        self.preview = Some(preview);
        self
    }

    /// With scaling control.
    #[must_use]
    pub fn with_scaling(mut self, scaling: Arc<dyn ScalingControl>) -> Self {
        self.scaling = Some(scaling);
        self
    }

    /// With adoption: the fleet side and the router side.
    #[must_use]
    pub fn with_adoption(
        mut self,
        fleet: Arc<dyn FleetAdoption>,
        router: Arc<dyn TargetAdoption>,
    ) -> Self {
        self.adoption = Some((fleet, router));
        self
    }
}
