//! Criterion benches of the immutable SDK; run them with `cargo bench -p immutable-benches`.
