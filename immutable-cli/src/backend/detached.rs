//! A backend that has nothing: for commands that only read and write the store (approve,
//! reject, promote, abort, status, watch), which must work from any machine that shares the
//! store without the provider's settings.

use async_trait::async_trait;
use immutable_core::{
    EngineBuilder, Error, Fleet, FleetId, FleetInfo, FleetSpec, HealthReport, Image, ImageId,
    ImageRef, ImageStore, Labels, Result, Routing, ServiceName, Target, TargetId, TrafficRouter,
};

/// Refuses every backend call.
#[derive(Debug, Clone, Copy)]
struct Detached;

fn refuse<T>(operation: &str) -> Result<T> {
    Err(Error::not_supported(
        operation,
        "this command reads and writes the store only; give --backend and its options",
    ))
}

/// An engine builder whose backends refuse every call.
pub(super) fn builder() -> EngineBuilder {
    immutable_core::Engine::builder()
        .images(Detached)
        .fleet(Detached)
        .router(Detached)
}

#[async_trait]
impl ImageStore for Detached {
    async fn resolve(&self, _: &ServiceName, _: &ImageRef) -> Result<Image> {
        refuse("resolve")
    }
    async fn list(&self, _: &ServiceName) -> Result<Vec<Image>> {
        refuse("list images")
    }
    async fn label(&self, _: &ServiceName, _: &ImageId, _: &Labels) -> Result<()> {
        refuse("label")
    }
    async fn retire(&self, _: &ServiceName, _: &ImageId) -> Result<()> {
        refuse("retire")
    }
}

#[async_trait]
impl Fleet for Detached {
    async fn launch(&self, _: &FleetSpec) -> Result<FleetInfo> {
        refuse("launch")
    }
    async fn describe(&self, _: &ServiceName, _: &FleetId) -> Result<FleetInfo> {
        refuse("describe")
    }
    async fn list(&self, _: &ServiceName) -> Result<Vec<FleetInfo>> {
        refuse("list fleets")
    }
    async fn terminate(&self, _: &ServiceName, _: &FleetId) -> Result<()> {
        refuse("terminate")
    }
}

#[async_trait]
impl TrafficRouter for Detached {
    async fn attach(&self, _: &FleetInfo) -> Result<Target> {
        refuse("attach")
    }
    async fn targets(&self, _: &ServiceName) -> Result<Vec<Target>> {
        refuse("targets")
    }
    async fn health(&self, _: &ServiceName, _: &TargetId) -> Result<HealthReport> {
        refuse("health")
    }
    async fn routing(&self, _: &ServiceName) -> Result<Routing> {
        refuse("routing")
    }
    async fn set_weights(&self, _: &ServiceName, _: &Routing) -> Result<()> {
        refuse("set weights")
    }
    async fn detach(&self, _: &ServiceName, _: &TargetId) -> Result<()> {
        refuse("detach")
    }
}
