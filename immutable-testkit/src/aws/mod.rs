//! moto's server and the AWS world on it.
//!
//! One server per test binary ([`Moto::shared`]), each test in an account of its own
//! ([`Account::fresh`]): tests running at once never see each other's resources, and the
//! binary starts Python once. [`Moto::start`] starts a private server, for a test that needs
//! one to itself (its recorder, or the default account of a process it runs).

mod account;
mod calls;
mod moto;
mod world;

pub use account::Account;
pub use calls::{
    CallCounter, assert_calls_constant, calls_per_phase, calls_table, clients_through,
    listener_forwards,
};
pub use moto::{Moto, is_read};
pub use world::{SERVICE, World, create_subnet, engine_settings};
