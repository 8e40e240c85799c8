//! # immutable-postgres
//!
//! A [`StateStore`](immutable_core::StateStore) on PostgreSQL for **immutable**: deployment
//! records, service leases, operators' commands, halts and wave plans in one database that
//! every deploy runner and operator shares, on any machine. Two runners never both hold a
//! service's lease; a runner that dies is taken over once its lease expires, and what it
//! journaled is resumed.
//!
//! ```no_run
//! # async fn demo(cloud: impl immutable_core::ImageStore + immutable_core::Fleet
//! #     + immutable_core::TrafficRouter + Clone) -> immutable_core::Result<()> {
//! use immutable_core::{DeploymentRequest, Engine, ImageRef};
//! use immutable_postgres::PostgresStore;
//!
//! // The password comes from PGPASSWORD or ~/.pgpass when the URL holds none.
//! let url = "postgres://deploy@db.internal:5432/immutable";
//! // Once per database and version (`immutable store migrate --store <url>` does it too):
//! PostgresStore::builder(url)?.build()?.migrate().await?;
//!
//! // In every runner: refused, saying to migrate, while the schema is not at this version.
//! let store = PostgresStore::builder(url)?.open().await?;
//! let engine = Engine::builder()
//!     .images(cloud.clone())
//!     .fleet(cloud.clone())
//!     .router(cloud)
//!     .store(store)
//!     .build()?;
//! // Whatever a runner left unfinished, any runner resumes.
//! for (id, result) in engine.resume_unfinished().await? {
//!     println!("{id}: {:?}", result.map(|r| r.outcome));
//! }
//! let report = engine.deploy(DeploymentRequest::new("web", ImageRef::name("web-v2"))).await?;
//! assert!(report.succeeded());
//! # Ok(()) }
//! ```
//!
//! - [`PostgresStore`]: the store; its docs list the statements each operation sends, and what
//!   it guarantees.
//! - [`PostgresStoreBuilder`]: the URL, the password's sources (the URL, `PGPASSWORD`, a
//!   password file), the schema, the pool, retention and retries.
//! - [`schema`]: the tables and their versions; [`PostgresStore::migrate`] applies them, and
//!   [`SchemaError`] says when a store's schema is not at its version.
//!
//! Errors are the core's [`Error`](immutable_core::Error), mapped where they arise: a lost
//! connection or a restarting server is retried, then reported as retryable; a missing schema
//! says to migrate; a password never appears in a message or a `Debug`.
//!
//! The driver is tokio-postgres over plain TCP or a Unix socket, through a deadpool pool;
//! TLS (`sslmode=require`) is not offered.

mod config;
mod db;
mod error;
mod lease;
mod operated;
mod passfile;
mod plans;
mod records;
pub mod schema;
mod sql;
mod store;
mod url;
mod waves;

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_SIZE, DEFAULT_SCHEMA, PostgresStoreBuilder, default_retry,
};
pub use db::PostgresStoreStats;
pub use error::SchemaError;
pub use plans::QueryPlan;
pub use schema::Migration;
pub use store::PostgresStore;
pub use url::redact;
