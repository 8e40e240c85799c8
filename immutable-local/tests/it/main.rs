//! The integration tests of immutable-local in one binary: one link and one process for the suite.
//! Each module was a `tests/*.rs` binary of its own; they now run as threads of one
//! process, so a test that needs the machine to itself says so (see `common`).

mod common;

mod bad_input;
mod conformance;
mod detach;
mod fleet;
mod negative_control;
mod proxy;
mod router;
mod zero_downtime;
