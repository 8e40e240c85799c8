//! The integration tests of immutable-core in one binary: one link and one process for the suite.
//! Each module was a `tests/*.rs` binary of its own; they now run as threads of one
//! process, so a test that needs the machine to itself says so (see `common`).

mod common;

mod adopt;
mod causes;
mod commands;
mod crash;
mod engine;
mod gc;
mod halts;
#[cfg(feature = "http-check")]
mod http_check;
mod journal;
#[cfg(feature = "notify-webhook")]
mod notify;
mod plan;
#[cfg(feature = "prometheus-check")]
mod prometheus;
mod property;
mod resume;
mod scaling;
mod strategy;
mod timeline;
mod wave_crash;
mod waves;
mod way_back;
