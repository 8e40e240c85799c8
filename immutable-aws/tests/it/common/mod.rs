//! The AWS world of these tests lives in the test kit (`immutable_testkit::aws`): moto's
//! server, one per binary with an account per test, and the VPC + ALB world on it.

pub(crate) use immutable_testkit::aws::*;
