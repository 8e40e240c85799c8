#![allow(unreachable_pub)]
pub mod lab;
pub use immutable_testkit::load::{Timeline, assert_zero_downtime, until_event, warm_up};
pub use lab::*;
