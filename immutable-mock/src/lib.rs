//! # immutable-mock
//!
//! An in-memory cloud for [immutable](immutable_core): [`MockCloud`] implements
//! [`ImageStore`](immutable_core::ImageStore), [`Fleet`](immutable_core::Fleet) and
//! [`TrafficRouter`](immutable_core::TrafficRouter) over one shared, deterministic state, so
//! deploy logic can be unit-tested in milliseconds.
//!
//! - **Virtual time**: instances boot, pass health checks and drain on tokio's clock
//!   ([`Timings`]); under `#[tokio::test(start_paused = true)]` a 30-minute bake takes no real
//!   time.
//! - **Scripted faults**: fail the next N calls of an [`Op`], or exactly its n-th call, with a
//!   chosen [`Fault`], for every service or only those a [`Matching`] names (one service, one
//!   resource); make an image boot unhealthy; kill or stop an instance; delay routing; switch
//!   off the preview entry point ([`MockCloud::set_preview_supported`]).
//! - **Assertions**: a [`Call`] log and a [`Snapshot`] of everything.
//! - **Ownership**: resources carry the core's ownership tags, and foreign ones
//!   ([`MockCloud::add_foreign_fleet`]) are refused with
//!   [`Error::NotOwned`](immutable_core::Error::NotOwned), as on AWS. A service served by
//!   hand ([`MockCloud::add_foreign_target`], [`MockCloud::route_by_hand`]) can be adopted
//!   ([`Engine::adopt`](immutable_core::Engine::adopt)).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> immutable_core::Result<()> {
//! use immutable_core::{DeploymentRequest, Engine, ImageRef, InMemoryStore, ServiceName};
//! use immutable_mock::{Fault, MockCloud, Op};
//!
//! let cloud = MockCloud::new();
//! cloud.add_image("web", "web-v1");
//! cloud.fail_next(Op::Launch, 2, Fault::Throttled); // retried by the engine
//!
//! let engine = Engine::builder()
//!     .backends(cloud.backends())
//!     .store(InMemoryStore::new())
//!     .build()?;
//! let report = engine
//!     .deploy(DeploymentRequest::new("web", ImageRef::name("web-v1")).capacity(3))
//!     .await?;
//! assert!(report.succeeded());
//!
//! let web = ServiceName::new("web")?;
//! let snapshot = cloud.snapshot();
//! assert_eq!(snapshot.live_fleets(&web).len(), 1);
//! assert_eq!(cloud.call_count(Op::Launch), 3);
//! # Ok(()) }
//! ```

mod adopt;
mod check;
mod cloud;
mod fault;
mod fleet;
mod image;
mod index;
mod router;
mod snapshot;
mod state;
mod traits;

pub use check::FailsAtWeight;
pub use cloud::{Call, MockCloud, Timings};
pub use fault::{Fault, Matching, Op};
pub use snapshot::{FleetSnapshot, Snapshot, TargetSnapshot};
