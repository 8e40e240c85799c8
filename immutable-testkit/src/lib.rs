//! What the tests of the immutable crates share, in one place instead of a copy per crate.
//!
//! - [`regions`]: several regions, each a mock cloud with its own engine, reading halts from
//!   one shared store: the world of the wave tests.
//! - [`serial`]: a lock for the tests of one binary that need the machine to themselves.
//! - `aws` (feature `aws`): moto's server, one per test binary with an account per test, and
//!   the AWS world on it (built by `immutable_aws::sandbox`, as `demo-setup` builds its own).
//! - `local` (feature `local`): helpers for services behind a real HAProxy; `load`: what
//!   the load tests of every backend read (timeline, warm-up, zero-downtime assertions, the
//!   negative control's router).
//! - `browser` (feature `browser`): a headless Chromium driven through WebDriver, for the
//!   dashboard's browser tests.
//! - `docker` (feature `docker`): the machine's Docker daemon, private daemons (one of which
//!   can be made to refuse container starts), and a sweep of what a test made.
//! - `postgres` (feature `postgres`): a private PostgreSQL cluster, one per test binary, a
//!   schema per test.
//!
//! Each crate keeps one integration-test binary (`tests/it/main.rs`), so its tests run as
//! threads of one process: what one test starts (a server, a lock) the others can share, and
//! what one test changes process-wide the others see. Nothing here changes the environment
//! of the process.
//!
//! Not published: helpers assert and panic, as tests want; none of it is API.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "browser")]
pub mod browser;
#[cfg(feature = "docker")]
pub mod docker;
#[cfg(feature = "local")]
pub mod load;
#[cfg(feature = "local")]
pub mod local;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod regions;
pub mod serial;
