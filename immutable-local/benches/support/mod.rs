//! What the local benches share: their runtime and the teardown of the instances they start.

use std::future::Future;

use immutable_local::ProcessFleet;

/// Kills every instance when the bench ends, however it ends.
pub(crate) struct KillOnDrop(pub(crate) ProcessFleet);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill_all();
    }
}

/// Runs the bench on a two-thread runtime, as the machine's two cores allow.
pub(crate) fn block_on(bench: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench);
}
