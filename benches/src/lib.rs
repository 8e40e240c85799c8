//! Benches of the immutable SDK; run them with `cargo bench -p immutable-benches`.
//!
//! The library holds what the benches share: [`dashboard_store`], a journal as large as the
//! dashboard's scale acceptance asks for, built once and cached.

pub mod dashboard_store;

use std::path::PathBuf;

/// The target directory: `CARGO_TARGET_DIR`, or the parent of `cargo_target_tmpdir` (a bench's
/// `env!("CARGO_TARGET_TMPDIR")`, which Cargo sets for benches only).
pub fn target_dir(cargo_target_tmpdir: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || {
            PathBuf::from(cargo_target_tmpdir)
                .parent()
                .expect("the target directory")
                .to_owned()
        },
        PathBuf::from,
    )
}
