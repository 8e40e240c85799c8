//! The PostgreSQL store against a private cluster (immutable-testkit's `postgres`: Debian's
//! postgresql in a temporary directory, one cluster for the binary, a schema per test): the
//! store contracts, its schema and credentials, two runner processes racing for a service, a
//! runner killed and taken over, connections dropped mid-write, the crash harness, and what a
//! deployment sends with 10 or 100,000 records behind it.
#![allow(clippy::print_stdout)]

mod common;

mod config;
mod conformance;
mod cost;
mod crash;
mod dropped;
mod race;
mod runner;
