//! The integration tests of immutable-aws in one binary: one link and one process for the suite.
//! Each module was a `tests/*.rs` binary of its own; they now run as threads of one
//! process, so a test that needs the machine to itself says so (see `common`).

mod common;

mod adopt;
mod asg;
mod asg_adopt;
mod asg_versions;
#[cfg(feature = "cloudwatch")]
mod cloudwatch;
mod conformance;
mod crash;
mod deploy;
#[cfg(feature = "dynamodb")]
mod dynamodb;
mod errors;
mod fleet;
mod images;
mod packer;
mod plan;
#[cfg(feature = "sns")]
mod sns;
