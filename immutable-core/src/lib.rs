//! # immutable-core
//!
//! The provider-agnostic core of **immutable**, an SDK for blue-green swaps of immutable server
//! fleets: never change a deployed server; build a new image, start a new fleet from it, verify
//! it, move traffic to it, keep the old fleet for a fast-rollback window, then retire it.
//!
//! This crate holds the three backend traits ([`ImageStore`], [`Fleet`], [`TrafficRouter`]),
//! the resumable [`Engine`], rollout strategies ([`Steps`] presets and the [`Strategy`] trait),
//! [`Check`]s, the journal and lock ([`StateStore`] with
//! [`InMemoryStore`] and [`FileStore`]), typed [`Event`]s, [`halt`](Engine::halt)s that stop
//! every engine sharing a store, [`WavePlan`]s across regions and accounts, and, behind the
//! `conformance` feature, the suite every backend runs.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> immutable_core::Result<()> {
//! use immutable_core::{DeploymentRequest, Engine, ImageRef, InMemoryStore};
//! use immutable_mock::MockCloud;
//!
//! // Any backend will do: the in-memory MockCloud here, immutable-aws in production.
//! let cloud = MockCloud::new();
//! cloud.add_image("web", "web-v1");
//! let engine = Engine::builder()
//!     .backends(cloud.backends())
//!     // A FileStore keeps deployments across crashes; in memory is for tests and demos.
//!     .store(InMemoryStore::new())
//!     .build()?;
//! let report = engine
//!     .deploy(DeploymentRequest::new("web", ImageRef::name("web-v1")).capacity(2))
//!     .await?;
//! assert!(report.succeeded());
//! # Ok(()) }
//! ```
//!
//! The engine's phases, guarantees and caveats are documented on [`Engine`]; wave plans' on
//! [`WaveRunner`]. Every public type has one path: the crate root.

mod adoption;
mod backends;
mod check;
mod clock;
mod cost;
mod engine;
mod error;
mod event;
mod fleet;
mod halt;
mod human;
mod image;
pub mod limits;
pub mod notify;
mod retry;
mod router;
mod serde_duration;
mod service;
mod store;
mod strategy;
mod wave;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use adoption::{AdoptMode, AdoptSpec, Adoptable, FleetAdoption, TargetAdoption};
pub use backends::Backends;
pub use check::{Check, CheckContext, CheckOutcome, HealthRatioCheck};
#[cfg(feature = "prometheus-check")]
pub use check::{Condition, NoData, PrometheusCheck, PrometheusCheckBuilder};
#[cfg(feature = "http-check")]
pub use check::{CutoverCheck, HttpCheck};
pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use cost::{Cost, Operation};
pub use engine::Mark;
pub use engine::{
    Adoption, Blue, Budget, Calls, Command, CommandRecord, DeploymentHandle, DeploymentRecord,
    DeploymentRequest, DeploymentSpec, Engine, EngineBuilder, Eta, GcMode, GcReport, Green,
    HistoryEntry, OnBlueLost, Operator, Origin, Outcome, Phase, PlannedDeployment, Refusal, Report,
    Retired, RollbackCause, RollbackMode, RollbackReport, Settings, Side, Status, Stranded,
    Timeline, TimelineEntry, Waiting,
};
pub use error::{AdoptRefusal, BoxError, Error, ErrorCategory, NoRollback, ResourceKind, Result};
pub use event::{Event, EventKind};
pub use fleet::{
    Fleet, FleetId, FleetInfo, FleetKey, FleetSpec, Instance, InstanceId, InstanceState, Scaling,
    ScalingControl,
};
pub use halt::{Halt, HaltScope, OnHalt};
pub use image::{Image, ImageId, ImageRef, ImageStore, Labels, check_labels};
pub use notify::{Notification, Notifier, Notify, Trigger};
pub use retry::RetryPolicy;
pub use router::{
    HealthReport, HealthState, InstanceHealth, PreviewRouter, Routing, Target, TargetId,
    TrafficRouter,
};
pub use service::{DeploymentId, ServiceName, tags};
pub use store::{
    FileStore, FileStoreStats, HaltStore, HistoryPage, InMemoryStore, Lease, LeaseGrant, Page,
    Retention, StateStore, WaveStore, check_version,
};
pub use strategy::{OnTimeout, Progress, Step, StepRecord, Steps, Strategy, StrategySpec};
pub use wave::{
    OnWaveFailure, TargetOutcome, TargetRun, TargetSpec, WaveBake, WaveEvent, WaveEventKind,
    WaveFailure, WaveHistoryEntry, WaveId, WavePlan, WavePlanSpec, WaveRecord, WaveReport,
    WaveRunner, WaveRunnerBuilder, WaveSpec, WaveState, WaveTarget, check_wave_version,
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn assert_bounds<T: ?Sized + Send + Sync + std::fmt::Debug + 'static>() {}

    #[test]
    fn traits_are_object_safe_and_shareable() {
        assert_bounds::<dyn ImageStore>();
        assert_bounds::<dyn Fleet>();
        assert_bounds::<dyn TrafficRouter>();
        assert_bounds::<dyn StateStore>();
        let _: Option<Arc<dyn ImageStore>> = None;
        let _: Option<Arc<dyn Fleet>> = None;
        let _: Option<Arc<dyn TrafficRouter>> = None;
        fn is_send<T: Send>(_: T) {}
        let engine: Option<Engine> = None;
        if let Some(e) = engine {
            is_send(async move {
                e.deploy(DeploymentRequest::new("x", ImageRef::name("y")))
                    .await
            });
        }
    }
}

/// The README's examples run as doc tests (they use both HTTP-based checks).
#[cfg(all(doctest, feature = "http-check", feature = "prometheus-check"))]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
