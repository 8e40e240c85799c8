//! Benches of the immutable SDK; run them with `cargo bench -p immutable-benches`.
//!
//! The library holds what the benches share: [`dashboard_store`], a journal as large as the
//! dashboard's scale acceptance asks for, built once and cached.

pub mod dashboard_store;
