//! Benches of the immutable SDK; run them with `cargo bench -p immutable-benches`.
//!
//! The library holds what the benches share: [`dashboard_store`], a journal as large as the
//! dashboard's scale acceptance asks for, built once and cached; and the [`Spread`] of a
//! row's timings that the benches' tables print.

pub mod dashboard_store;

use std::path::PathBuf;
use std::time::Duration;

/// The spread of a bench row's timings.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    /// The fastest.
    pub min: Duration,
    /// The middle one.
    pub median: Duration,
    /// The mean.
    pub mean: Duration,
    /// The one 90 % of the timings are below.
    pub p90: Duration,
    /// The slowest.
    pub max: Duration,
}

impl Spread {
    /// The spread of `times` (at least one).
    pub fn of(times: &[Duration]) -> Spread {
        let mut t = times.to_vec();
        t.sort();
        Spread {
            min: t[0],
            median: t[t.len() / 2],
            mean: t.iter().sum::<Duration>() / t.len() as u32,
            p90: t[t.len() * 9 / 10],
            max: t[t.len() - 1],
        }
    }
}

/// A duration in milliseconds, to two decimals, for the benches' tables.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

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
