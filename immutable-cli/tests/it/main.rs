//! The integration tests of immutable-cli in one binary: one link and one process for the suite.
//! Each module was a `tests/*.rs` binary of its own; they now run as threads of one
//! process, so a test that needs the machine to itself says so (see `common`).

mod common;

mod adopt;
mod aws;
mod dashboard;
mod dashboard_browser;
mod docker;
mod local;
mod notify;
mod own_app;
mod packer;
mod postgres;
mod report;
mod walkthrough;
