//! [`StoreHooks`]: a [`StateStore`] decorator that calls a test's [`Hooks`] around every call
//! of the store it wraps, forwarding all of it (journal, halts and wave plans), so a test
//! that crashes, refuses or scripts store calls writes only what it changes.

use std::fmt::Debug;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::store::{halts_of, waves_of};
use crate::{
    CommandRecord, DeploymentId, DeploymentRecord, Halt, HaltScope, HaltStore, HistoryPage, Lease,
    LeaseGrant, Page, Result, ServiceName, StateStore, WaveId, WaveRecord, WaveStore,
};

/// One call of a store, as [`Hooks`] see it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum StoreCall<'a> {
    /// [`StateStore::save`], with the record as saved (its new version) in `after`.
    Save(&'a DeploymentRecord),
    /// [`StateStore::load`].
    Load,
    /// [`StateStore::list`].
    List,
    /// [`StateStore::unfinished`].
    Unfinished,
    /// [`StateStore::latest`].
    Latest,
    /// [`StateStore::history`].
    History,
    /// [`StateStore::acquire_lease`].
    AcquireLease,
    /// [`StateStore::renew_lease`].
    RenewLease,
    /// [`StateStore::release_lease`].
    ReleaseLease,
    /// [`StateStore::lease`].
    Lease,
    /// [`StateStore::add_command`].
    AddCommand(&'a CommandRecord),
    /// [`StateStore::commands`].
    Commands,
    /// [`HaltStore::set_halt`].
    SetHalt(&'a Halt),
    /// [`HaltStore::lift_halt`].
    LiftHalt,
    /// [`HaltStore::halts`].
    Halts,
    /// [`WaveStore::save_wave`], with the record as saved in `after`.
    SaveWave(&'a WaveRecord),
    /// [`WaveStore::load_wave`].
    LoadWave,
    /// [`WaveStore::unfinished_waves`].
    UnfinishedWaves,
}

impl StoreCall<'_> {
    /// Whether the call writes to the store.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            StoreCall::Save(_)
                | StoreCall::AcquireLease
                | StoreCall::RenewLease
                | StoreCall::ReleaseLease
                | StoreCall::AddCommand(_)
                | StoreCall::SetHalt(_)
                | StoreCall::LiftHalt
                | StoreCall::SaveWave(_)
        )
    }
}

/// What a test does around the calls of a [`StoreHooks`] store. Both methods do nothing
/// unless the test says otherwise.
#[async_trait]
pub trait Hooks: Debug + Send + Sync + 'static {
    /// Before a call: an error is what the call returns, and the wrapped store is not called.
    async fn before(&self, call: StoreCall<'_>) -> Result<()> {
        let _ = call;
        Ok(())
    }

    /// After a call that succeeded (the write is durable): an error is what the call
    /// returns; a hook that never returns is a process that crashed right after the write.
    async fn after(&self, call: StoreCall<'_>) -> Result<()> {
        let _ = call;
        Ok(())
    }
}

/// A store that runs `H` around every call of `S`, and otherwise is `S`: it keeps halts and
/// wave plans exactly when `S` does.
#[derive(Debug, Clone)]
pub struct StoreHooks<S, H> {
    inner: S,
    hooks: H,
}

impl<S: StateStore, H: Hooks> StoreHooks<S, H> {
    /// `inner` with `hooks` around its calls.
    pub fn new(inner: S, hooks: H) -> Self {
        StoreHooks { inner, hooks }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The hooks.
    pub fn hooks(&self) -> &H {
        &self.hooks
    }

    async fn around<T>(
        &self,
        call: StoreCall<'_>,
        op: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.hooks.before(call).await?;
        let out = op.await?;
        self.hooks.after(call).await?;
        Ok(out)
    }
}

#[async_trait]
impl<S: StateStore, H: Hooks> StateStore for StoreHooks<S, H> {
    async fn save(&self, record: &mut DeploymentRecord) -> Result<()> {
        self.hooks.before(StoreCall::Save(record)).await?;
        self.inner.save(record).await?;
        self.hooks.after(StoreCall::Save(record)).await
    }

    async fn load(&self, id: &DeploymentId) -> Result<DeploymentRecord> {
        self.around(StoreCall::Load, self.inner.load(id)).await
    }

    async fn list(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
        self.around(StoreCall::List, self.inner.list(service)).await
    }

    async fn unfinished(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
        self.around(StoreCall::Unfinished, self.inner.unfinished(service))
            .await
    }

    async fn latest(&self, service: &ServiceName) -> Result<Option<DeploymentRecord>> {
        self.around(StoreCall::Latest, self.inner.latest(service))
            .await
    }

    async fn history(&self, service: &ServiceName, page: &Page) -> Result<HistoryPage> {
        self.around(StoreCall::History, self.inner.history(service, page))
            .await
    }

    async fn acquire_lease(
        &self,
        service: &ServiceName,
        deployment: &DeploymentId,
        holder: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<LeaseGrant> {
        let op = self
            .inner
            .acquire_lease(service, deployment, holder, ttl, now);
        self.around(StoreCall::AcquireLease, op).await
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration, now: SystemTime) -> Result<Lease> {
        self.around(
            StoreCall::RenewLease,
            self.inner.renew_lease(lease, ttl, now),
        )
        .await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        self.around(StoreCall::ReleaseLease, self.inner.release_lease(lease))
            .await
    }

    async fn lease(&self, service: &ServiceName) -> Result<Option<Lease>> {
        self.around(StoreCall::Lease, self.inner.lease(service))
            .await
    }

    async fn add_command(&self, command: &CommandRecord) -> Result<()> {
        self.around(
            StoreCall::AddCommand(command),
            self.inner.add_command(command),
        )
        .await
    }

    async fn commands(&self, deployment: &DeploymentId) -> Result<Vec<CommandRecord>> {
        self.around(StoreCall::Commands, self.inner.commands(deployment))
            .await
    }

    fn halt_store(&self) -> Option<&dyn HaltStore> {
        self.inner.halt_store().map(|_| self as &dyn HaltStore)
    }

    fn wave_store(&self) -> Option<&dyn WaveStore> {
        self.inner.wave_store().map(|_| self as &dyn WaveStore)
    }
}

#[async_trait]
impl<S: StateStore, H: Hooks> HaltStore for StoreHooks<S, H> {
    async fn set_halt(&self, halt: &Halt) -> Result<()> {
        let inner = halts_of(&self.inner, "set_halt")?;
        self.around(StoreCall::SetHalt(halt), inner.set_halt(halt))
            .await
    }

    async fn lift_halt(&self, scope: &HaltScope) -> Result<Option<Halt>> {
        let inner = halts_of(&self.inner, "lift_halt")?;
        self.around(StoreCall::LiftHalt, inner.lift_halt(scope))
            .await
    }

    async fn halts(&self, service: Option<&ServiceName>) -> Result<Vec<Halt>> {
        let inner = halts_of(&self.inner, "halts")?;
        self.around(StoreCall::Halts, inner.halts(service)).await
    }
}

#[async_trait]
impl<S: StateStore, H: Hooks> WaveStore for StoreHooks<S, H> {
    async fn save_wave(&self, record: &mut WaveRecord) -> Result<()> {
        let inner = waves_of(&self.inner, "save_wave")?;
        self.hooks.before(StoreCall::SaveWave(record)).await?;
        inner.save_wave(record).await?;
        self.hooks.after(StoreCall::SaveWave(record)).await
    }

    async fn load_wave(&self, id: &WaveId) -> Result<WaveRecord> {
        let inner = waves_of(&self.inner, "load_wave")?;
        self.around(StoreCall::LoadWave, inner.load_wave(id)).await
    }

    async fn unfinished_waves(&self) -> Result<Vec<WaveRecord>> {
        let inner = waves_of(&self.inner, "unfinished_waves")?;
        self.around(StoreCall::UnfinishedWaves, inner.unfinished_waves())
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::InMemoryStore;
    use crate::conformance::{halt_contract, store_contract, wave_contract};

    /// Counts writes and refuses every call once told to.
    #[derive(Debug, Default)]
    struct Counting {
        writes: Mutex<usize>,
        refuse: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl Hooks for Counting {
        async fn before(&self, _: StoreCall<'_>) -> Result<()> {
            if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(crate::Error::store("refused by the test", None));
            }
            Ok(())
        }
        async fn after(&self, call: StoreCall<'_>) -> Result<()> {
            if call.is_write() {
                *self.writes.lock().unwrap() += 1;
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_decorated_store_meets_every_contract_and_sees_every_write() {
        let store = StoreHooks::new(InMemoryStore::new(), Counting::default());
        store_contract(&store).await;
        halt_contract(&store).await;
        wave_contract(&StoreHooks::new(InMemoryStore::new(), Counting::default())).await;
        assert!(*store.hooks().writes.lock().unwrap() > 0);
        store
            .hooks()
            .refuse
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let web = ServiceName::new("web").unwrap();
        assert!(store.latest(&web).await.is_err());
        assert!(store.halt_store().unwrap().halts(None).await.is_err());
    }
}
