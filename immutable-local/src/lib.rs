//! # immutable-local
//!
//! The local backend of **immutable**: a real blue-green deployment on one machine, with real
//! traffic. Images are artifact directories ([`LocalImageStore`]), instances are OS processes
//! ([`ProcessFleet`]), and traffic goes through HAProxy, driven through its runtime API
//! ([`HaproxyRouter`]). [`Haproxy`] starts an HAProxy for tests and examples, [`LoadGen`]
//! sends bounded load through it, and [`demo`] is a tiny app to deploy.
//!
//! [`HaproxyRouter`] has one capability besides the three traits: a preview entry point
//! ([`PreviewRouter`](immutable_core::PreviewRouter)), registered with
//! [`EngineBuilder::preview`](immutable_core::EngineBuilder::preview). Processes do not scale
//! by themselves, and adoption ([`Engine::adopt`](immutable_core::Engine::adopt)) is not
//! offered: processes started by hand have no record to become a fleet from; deploy the
//! service instead.
//!
//! ```no_run
//! # async fn demo() -> immutable_core::Result<()> {
//! use immutable_core::{DeploymentRequest, Engine, FileStore, ImageRef};
//! use immutable_local::{Haproxy, HaproxyOptions, ImportRequest, LocalImageStore, ProcessFleet};
//!
//! let root = std::path::Path::new("/var/lib/immutable");
//! let images = LocalImageStore::open(root)?;
//! images
//!     .import(ImportRequest::new("web", "web-v1", "./build/v1", ["./bin/server"]))
//!     .await?;
//! let fleet = ProcessFleet::open(&images)?;
//! let haproxy = Haproxy::start(HaproxyOptions::new(["web"])).await?;
//! let router = haproxy
//!     .router_builder()
//!     .state_dir("/var/lib/immutable/router")
//!     .instances(fleet.clone())
//!     .build()
//!     .await?;
//! let engine = Engine::builder()
//!     .images(images)
//!     .fleet(fleet)
//!     .router(router.clone())
//!     .preview(router)
//!     .store(FileStore::open(root.join("journal"))?)
//!     .build()?;
//! let report = engine
//!     .deploy(DeploymentRequest::new("web", ImageRef::name("web-v1")))
//!     .await?;
//! assert!(report.succeeded());
//! println!("serving on {}", haproxy.url("web"));
//! # Ok(()) }
//! ```

pub mod demo;
mod fleet;
mod fsutil;
mod haproxy;
mod image;
pub mod loadgen;
mod router;

/// The state files this backend keeps, for backends built beside it (`immutable-docker`):
/// JSON written atomically (temporary file, fsync, rename, directory fsync) and read back
/// with errors naming the file, exclusive locks across processes, private directories, and
/// file work moved off the async threads. Nothing here follows a symbolic link planted where
/// it writes.
pub mod state_files {
    pub use crate::fsutil::{
        blocking, create_private_dir_all, lock_file, read_json, write_json_atomic,
    };
}

pub use fleet::ProcessFleet;
pub use haproxy::{EntryPoints, Haproxy, HaproxyOptions, ManagedProxy, ProxyRoute, ProxyStatus};
pub use image::{ImageDetails, ImportRequest, LocalImageStore};
pub use loadgen::{LoadGen, LoadReport, RunningLoad, Sample};
pub use router::{HaproxyRouter, HaproxyRouterBuilder, InstanceAddresses, RestoreGuard};
