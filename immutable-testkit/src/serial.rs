//! Tests that need the machine to themselves, among the threads of one test binary.
//!
//! A test whose assertions hold only with CPU to spare (zero failed requests under load
//! through a real HAProxy, say) takes [`exclusive`]; a test that starts processes or servers
//! takes [`shared`], so it runs alongside others of its kind but never beside an exclusive one.
//! Tests that take neither (pure computations on the mock) are not held back.

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static MACHINE: RwLock<()> = RwLock::const_new(());

/// Waits until no other test holds the machine, and holds it until the guard drops.
pub async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    MACHINE.write().await
}

/// Waits until no test holds the machine exclusively; many tests may hold it shared.
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().await
}

/// [`shared`], for a test that is not async.
pub fn shared_blocking() -> RwLockReadGuard<'static, ()> {
    MACHINE.blocking_read()
}
