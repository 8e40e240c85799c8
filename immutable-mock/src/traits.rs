//! The three traits and every capability, each call passing through the crash point after its
//! effect.

use async_trait::async_trait;
use immutable_core::{
    AdoptMode, AdoptSpec, Adoptable, Cost, Fleet, FleetAdoption, FleetId, FleetInfo, FleetSpec,
    HealthReport, Image, ImageId, ImageRef, ImageStore, Labels, Operation, PreviewRouter, Result,
    Routing, Scaling, ScalingControl, ServiceName, Target, TargetAdoption, TargetId, TrafficRouter,
};

use crate::MockCloud;

#[async_trait]
impl ImageStore for MockCloud {
    async fn resolve(&self, service: &ServiceName, reference: &ImageRef) -> Result<Image> {
        self.finish(self.do_resolve(service, reference).await).await
    }

    async fn list(&self, service: &ServiceName) -> Result<Vec<Image>> {
        self.finish(self.do_list_images(service).await).await
    }

    async fn label(&self, service: &ServiceName, image: &ImageId, labels: &Labels) -> Result<()> {
        self.finish(self.do_label(service, image, labels).await)
            .await
    }

    async fn retire(&self, service: &ServiceName, image: &ImageId) -> Result<()> {
        self.finish(self.do_retire(service, image).await).await
    }

    fn cost(&self, _: &ServiceName, _: Operation) -> Option<Cost> {
        Some(Cost::calls(1))
    }
}

#[async_trait]
impl Fleet for MockCloud {
    async fn launch(&self, spec: &FleetSpec) -> Result<FleetInfo> {
        self.finish(self.do_launch(spec).await).await
    }

    async fn describe(&self, service: &ServiceName, fleet: &FleetId) -> Result<FleetInfo> {
        self.finish(self.do_describe(service, fleet).await).await
    }

    async fn list(&self, service: &ServiceName) -> Result<Vec<FleetInfo>> {
        self.finish(self.do_list_fleets(service).await).await
    }

    async fn terminate(&self, service: &ServiceName, fleet: &FleetId) -> Result<()> {
        self.finish(self.do_terminate(service, fleet).await).await
    }

    fn cost(&self, _: &ServiceName, _: Operation) -> Option<Cost> {
        Some(Cost::calls(1))
    }
}

#[async_trait]
impl TrafficRouter for MockCloud {
    async fn attach(&self, fleet: &FleetInfo) -> Result<Target> {
        self.finish(self.do_attach(fleet).await).await
    }

    async fn targets(&self, service: &ServiceName) -> Result<Vec<Target>> {
        self.finish(self.do_targets(service).await).await
    }

    async fn health(&self, service: &ServiceName, target: &TargetId) -> Result<HealthReport> {
        self.finish(self.do_health(service, target).await).await
    }

    async fn routing(&self, service: &ServiceName) -> Result<Routing> {
        self.finish(self.do_routing(service).await).await
    }

    async fn set_weights(&self, service: &ServiceName, routing: &Routing) -> Result<()> {
        self.finish(self.do_set_weights(service, routing).await)
            .await
    }

    async fn detach(&self, service: &ServiceName, target: &TargetId) -> Result<()> {
        self.finish(self.do_detach(service, target).await).await
    }

    /// One call each; detach drains for [`Timings::drain`](crate::Timings::drain).
    fn cost(&self, _: &ServiceName, operation: Operation) -> Option<Cost> {
        Some(match operation {
            Operation::Detach => {
                let drain = self.lock().timings.drain;
                Cost::calls(1).polling(0, drain, drain)
            }
            _ => Cost::calls(1),
        })
    }
}

#[async_trait]
impl ScalingControl for MockCloud {
    async fn set_scaling(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
        scaling: Scaling,
    ) -> Result<()> {
        self.finish(self.do_set_scaling(service, fleet, scaling).await)
            .await
    }
}

#[async_trait]
impl PreviewRouter for MockCloud {
    async fn preview(&self, service: &ServiceName, target: Option<&TargetId>) -> Result<()> {
        self.finish(self.do_preview(service, target).await).await
    }
}

#[async_trait]
impl FleetAdoption for MockCloud {
    async fn adopt(&self, spec: &AdoptSpec, mode: AdoptMode) -> Result<FleetInfo> {
        self.finish(self.do_adopt_fleet(spec, mode).await).await
    }
}

#[async_trait]
impl TargetAdoption for MockCloud {
    async fn adoptable(&self, service: &ServiceName, target: &TargetId) -> Result<Adoptable> {
        self.finish(self.do_adoptable(service, target).await).await
    }

    async fn adopt_target(
        &self,
        service: &ServiceName,
        target: &TargetId,
        fleet: &FleetInfo,
    ) -> Result<Target> {
        self.finish(self.do_adopt_target(service, target, fleet).await)
            .await
    }
}
