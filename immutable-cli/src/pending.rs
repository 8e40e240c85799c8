//! TEMPORARY: the engine API of the durable-commands work, until it lands on main.
#![allow(dead_code, unreachable_pub, missing_docs)]
use immutable_core::{DeploymentId, Engine, Error, ImageId, Lease, Outcome, Phase, Result, ServiceName, Step};
use std::time::SystemTime;

pub enum Command { Approve, Reject { reason: String }, Promote, Abort { reason: String } }
#[derive(Debug, serde::Serialize)]
pub struct Status { pub deployment: DeploymentId, pub service: ServiceName, pub phase: Phase,
    pub weight: u32, pub image: ImageId, pub healthy: Option<(usize, usize)>, pub step: Option<(usize, Step)>,
    pub waiting: Option<Waiting>, pub outcome: Option<Outcome>, pub lease: Option<Lease> }
#[derive(Debug, serde::Serialize)]
pub enum Waiting { Launch { until: SystemTime }, Health { until: SystemTime }, Pause { until: SystemTime },
    Approval { index: usize, deadline: Option<SystemTime> }, Bake { until: SystemTime } }

fn no() -> Error { Error::not_supported("pending", "the durable-commands engine API has not landed") }
#[async_trait::async_trait]
pub trait PendingEngine {
    async fn command(&self, d: &DeploymentId, c: Command) -> Result<()>;
    async fn status(&self, d: &DeploymentId) -> Result<Status>;
    async fn status_of(&self, s: &str) -> Result<Option<Status>>;
    fn watch(&self, d: &DeploymentId) -> futures::stream::Empty<Result<Status>>;
    fn suspend(&self, d: &DeploymentId) -> Result<()>;
}
#[async_trait::async_trait]
impl PendingEngine for Engine {
    async fn command(&self, _: &DeploymentId, _: Command) -> Result<()> { Err(no()) }
    async fn status(&self, _: &DeploymentId) -> Result<Status> { Err(no()) }
    async fn status_of(&self, _: &str) -> Result<Option<Status>> { Err(no()) }
    fn watch(&self, _: &DeploymentId) -> futures::stream::Empty<Result<Status>> { futures::stream::empty() }
    fn suspend(&self, _: &DeploymentId) -> Result<()> { Err(no()) }
}
