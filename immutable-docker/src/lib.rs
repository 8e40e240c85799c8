//! # immutable-docker
//!
//! The Docker backend of **immutable**: images are Docker images by id
//! ([`DockerImageStore`]), instances are containers ([`DockerFleet`]) on one Docker host or
//! several ([`DockerHosts`]), and traffic goes through the local backend's HAProxy router
//! ([`HaproxyRouter`](immutable_local::HaproxyRouter)), which switches every host at once.
//!
//! ```no_run
//! # async fn demo() -> immutable_core::Result<()> {
//! use immutable_core::{DeploymentRequest, Engine, FileStore, ImageRef};
//! use immutable_docker::{DockerFleet, DockerHost, DockerHosts, DockerImageStore, ImageSource, ImportRequest};
//! use immutable_local::{Haproxy, HaproxyOptions};
//!
//! let root = std::path::Path::new("/var/lib/immutable");
//! let hosts = DockerHosts::new([DockerHost::connect("local", "unix:///var/run/docker.sock").await?])?;
//! let images = DockerImageStore::open(root, hosts)?;
//! // An image `docker build -t web:v1 .` made.
//! images
//!     .import(ImportRequest::new("web", "web-v1", ImageSource::Docker("web:v1".into())))
//!     .await?;
//! let fleet = DockerFleet::open(&images)?;
//! let haproxy = Haproxy::start(HaproxyOptions::new(["web"])).await?;
//! let router = haproxy
//!     .router_builder()
//!     .state_dir(root.join("router"))
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
//! # Ok(()) }
//! ```

mod error;
mod fleet;
mod host;
mod images;
mod scratch;

pub use fleet::{DockerFleet, Limits, Network};
pub use host::{DockerHost, DockerHosts, TlsFiles};
pub use images::{DockerImageStore, ImageSource, ImportRequest};
pub use scratch::ScratchImage;
