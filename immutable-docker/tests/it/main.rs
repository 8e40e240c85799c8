//! The integration tests of immutable-docker in one binary, against a real dockerd and a real
//! HAProxy. The tests that count failed requests under load take the machine to themselves
//! (`immutable_testkit::serial`); the others take it shared.

mod common;

mod conformance;
mod crash;
mod fleet;
mod gc;
mod images;
mod negative_control;
mod scratch;
mod tls;
mod two_hosts;
mod zero_downtime;
