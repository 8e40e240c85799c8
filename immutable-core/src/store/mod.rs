//! The journal and lock: deployment records with versioned compare-and-swap, per-service leases
//! with expiry, and the bounded reads a deployment needs (a service's unfinished deployments,
//! its latest one, its history page by page), with retention of old records.

mod file;
mod memory;
mod page;
mod rules;

use std::fmt::Debug;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use file::{FileStore, FileStoreStats};
pub use memory::InMemoryStore;
pub use page::{HistoryPage, Page, Retention};
pub use rules::check_version;
pub(crate) use rules::{grant_lease, keep_lease, renewed_lease};

use crate::{
    CommandRecord, DeploymentId, DeploymentRecord, Halt, HaltScope, Result, ServiceName, WaveId,
    WaveRecord,
};

/// A per-service lock with an expiry. The running deployment renews it; a lease left by a dead
/// process can be taken over once it has expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The locked service.
    pub service: ServiceName,
    /// The deployment holding it.
    pub deployment: DeploymentId,
    /// A token unique to the engine run holding it.
    pub holder: String,
    /// When it lapses unless renewed.
    pub expires_at: SystemTime,
}

/// A granted lease, and the expired lease it replaced, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseGrant {
    /// The lease now held.
    pub lease: Lease,
    /// An expired lease of another holder that this grant replaced.
    pub replaced: Option<Lease>,
}

/// Where deployments are journaled and services locked.
///
/// # Guarantees expected of an implementation
/// - [`save`](StateStore::save) is a compare-and-swap on [`DeploymentRecord::version`]: it
///   succeeds only if the stored version equals the record's (0 meaning "not stored yet"), then
///   bumps the record's version. Otherwise [`Error::StaleVersion`](crate::Error::StaleVersion)
///   (or [`Error::AlreadyExists`](crate::Error::AlreadyExists) for a second first save, and
///   [`Error::NotFound`](crate::Error::NotFound) for a later save of an unknown record);
///   [`check_version`] states the rule once.
/// - A saved record is durable once `save` returns.
/// - At most one unexpired lease per service; [`Error::Locked`](crate::Error::Locked) for
///   anyone else.
/// - "Newest" means the greatest [`DeploymentId`]: ids are ULIDs, so they sort by creation
///   time ([`DeploymentId::generate`] is monotonic within a process).
///
/// # Cost
/// A deployment's path (deploy, resume, rollback, gc) calls only [`save`](Self::save),
/// [`load`](Self::load), [`unfinished`](Self::unfinished), [`latest`](Self::latest) and the
/// lease methods. The bundled stores answer those without reading the finished history, so a
/// deployment costs the same with ten records behind it or ten thousand. [`list`](Self::list)
/// reads everything and is meant for tools; [`history`](Self::history) reads one page.
///
/// The defaults of `unfinished`, `latest` and `history` are built on `list`: correct, but as
/// slow as reading everything. A store that keeps long histories should override them.
#[async_trait]
pub trait StateStore: Debug + Send + Sync + 'static {
    /// Stores `record` if its version matches, and bumps the version.
    async fn save(&self, record: &mut DeploymentRecord) -> Result<()>;

    /// Loads one record; [`Error::NotFound`](crate::Error::NotFound) for an unknown id.
    async fn load(&self, id: &DeploymentId) -> Result<DeploymentRecord>;

    /// Every record, or the service's, oldest first.
    ///
    /// Reads the whole journal (or the service's whole history): for tools and tests, never
    /// on a deployment's path. Page through one service with [`history`](Self::history).
    async fn list(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>>;

    /// The unfinished records (neither done, rolled back nor stopped), of every service or of
    /// one, oldest first.
    ///
    /// The bundled stores read only the unfinished records (and, for
    /// [`FileStore`], one small index per service), whatever the history.
    async fn unfinished(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
        let mut records = self.list(service).await?;
        records.retain(|r| !r.phase.is_terminal());
        Ok(records)
    }

    /// The service's newest record, finished or not; `None` if it has none.
    ///
    /// The bundled stores read one record (and, for [`FileStore`], the service's index).
    async fn latest(&self, service: &ServiceName) -> Result<Option<DeploymentRecord>> {
        Ok(self
            .list(Some(service))
            .await?
            .into_iter()
            .max_by(|a, b| a.id.cmp(&b.id)))
    }

    /// One page of the service's history, newest first: at most `page.limit` records older
    /// than `page.before` (all, without it), and the page after it, if any.
    ///
    /// The bundled stores read at most `page.limit + 1` records. A page whose `limit` is 0 or
    /// above [`Page::MAX_LIMIT`] is refused ([`Page::check`]).
    async fn history(&self, service: &ServiceName, page: &Page) -> Result<HistoryPage> {
        page.check()?;
        let mut records = self.list(Some(service)).await?;
        records.sort_by(|a, b| b.id.cmp(&a.id));
        records.retain(|r| page.before.as_ref().is_none_or(|b| &r.id < b));
        Ok(HistoryPage::from_newest(records, page))
    }

    /// The services that have records, in name order: at most `limit` (1 to
    /// [`Page::MAX_LIMIT`]) whose names come after `after` (from the first, without it). For
    /// listing a journal's services a page at a time, as a dashboard does.
    ///
    /// [`FileStore`] and [`InMemoryStore`] read no record; the default reads the whole journal.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) naming `limit` when it is out of
    /// range; store errors.
    async fn services(
        &self,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> Result<Vec<ServiceName>> {
        crate::limits::count("limit", limit, 1, Page::MAX_LIMIT)?;
        let names: std::collections::BTreeSet<ServiceName> = self
            .list(None)
            .await?
            .into_iter()
            .map(|r| r.spec.service)
            .collect();
        Ok(services_after(names, after, limit))
    }

    /// Takes the service's lease until `now + ttl`: granted when it is free, expired at `now`,
    /// or already `holder`'s; [`Error::Locked`](crate::Error::Locked) otherwise.
    ///
    /// `now` is the caller's clock (the engine's), so records, leases and deadlines share one
    /// time source: under a paused tokio clock, leases expire in virtual time.
    async fn acquire_lease(
        &self,
        service: &ServiceName,
        deployment: &DeploymentId,
        holder: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<LeaseGrant>;

    /// Extends a held lease until `now + ttl`; [`Error::Locked`](crate::Error::Locked) if
    /// another holder took it.
    async fn renew_lease(&self, lease: &Lease, ttl: Duration, now: SystemTime) -> Result<Lease>;

    /// Gives a held lease up; releasing a lease that is no longer held is not an error.
    async fn release_lease(&self, lease: &Lease) -> Result<()>;

    /// The service's lease as stored, expired or not; `None` if there is none. A read: it
    /// takes nothing.
    async fn lease(&self, service: &ServiceName) -> Result<Option<Lease>>;

    /// Appends an operator's command to a deployment. A create, never an overwrite: two
    /// commands given at once are both kept; writing the same command id twice is
    /// [`Error::AlreadyExists`](crate::Error::AlreadyExists) or a no-op, never a second
    /// command.
    async fn add_command(&self, command: &CommandRecord) -> Result<()>;

    /// A deployment's commands, oldest first (command ids sort by time).
    async fn commands(&self, deployment: &DeploymentId) -> Result<Vec<CommandRecord>>;

    /// The store's halts, or `None` for a store that keeps none. Required, so that a store
    /// wrapping another says whether it forwards them: an engine whose store has none makes
    /// every [`HaltStore`] call through it [`Error::NotSupported`](crate::Error::NotSupported),
    /// and reads no halt. The bundled stores answer `Some(self)`.
    fn halt_store(&self) -> Option<&dyn HaltStore>;

    /// The store's wave plans, or `None` for a store that keeps none; a
    /// [`WaveRunner`](crate::WaveRunner) over it is
    /// [`Error::NotSupported`](crate::Error::NotSupported). The bundled stores answer
    /// `Some(self)`.
    fn wave_store(&self) -> Option<&dyn WaveStore>;
}

/// Halts (see [`Halt`]): a capability of a [`StateStore`], reached through
/// [`StateStore::halt_store`].
#[async_trait]
pub trait HaltStore: Debug + Send + Sync + 'static {
    /// Sets the halt of `halt.scope`, replacing one that stands there. Durable once it
    /// returns; every process sharing the store sees it at its next read.
    async fn set_halt(&self, halt: &Halt) -> Result<()>;

    /// Lifts the halt of `scope`, returning it; `Ok(None)` if none stood.
    async fn lift_halt(&self, scope: &HaltScope) -> Result<Option<Halt>>;

    /// The halts that cover `service` (its own and the one for every service), or every halt.
    async fn halts(&self, service: Option<&ServiceName>) -> Result<Vec<Halt>>;
}

/// Wave plans' records (see [`WaveRunner`](crate::WaveRunner)): a capability of a
/// [`StateStore`], reached through [`StateStore::wave_store`].
#[async_trait]
pub trait WaveStore: Debug + Send + Sync + 'static {
    /// Stores a wave plan's record if its version matches, and bumps the version, as
    /// [`StateStore::save`] does for deployments
    /// ([`check_wave_version`](crate::check_wave_version) states the rule).
    async fn save_wave(&self, record: &mut WaveRecord) -> Result<()>;

    /// Loads a wave plan's record; [`Error::NotFound`](crate::Error::NotFound) for an unknown id.
    async fn load_wave(&self, id: &WaveId) -> Result<WaveRecord>;

    /// The wave plans that have not ended (halted ones included), oldest first.
    async fn unfinished_waves(&self) -> Result<Vec<WaveRecord>>;
}

/// The halts of `store`, or [`Error::NotSupported`](crate::Error::NotSupported) naming what
/// needed them.
pub(crate) fn halts_of<'a>(
    store: &'a dyn StateStore,
    operation: &'static str,
) -> Result<&'a dyn HaltStore> {
    store.halt_store().ok_or_else(|| {
        crate::Error::not_supported(
            operation,
            "this state store keeps no halts; use one of the bundled stores",
        )
    })
}

/// The wave plans of `store`, or [`Error::NotSupported`](crate::Error::NotSupported).
pub(crate) fn waves_of<'a>(
    store: &'a dyn StateStore,
    operation: &'static str,
) -> Result<&'a dyn WaveStore> {
    store.wave_store().ok_or_else(|| {
        crate::Error::not_supported(
            operation,
            "this state store keeps no wave plans; use one of the bundled stores",
        )
    })
}

/// The page of `names` (in order) after `after`, at most `limit` long.
pub(crate) fn services_after(
    names: impl IntoIterator<Item = ServiceName>,
    after: Option<&ServiceName>,
    limit: usize,
) -> Vec<ServiceName> {
    names
        .into_iter()
        .filter(|n| after.is_none_or(|a| n > a))
        .take(limit)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::ManualClock;
    use crate::conformance::{
        command_contract, halt_contract, history_contract, lease_contract, retention_contract,
        store_contract, wave_contract,
    };

    #[tokio::test]
    async fn in_memory_store_meets_the_contract() {
        store_contract(&InMemoryStore::new()).await;
        history_contract(&InMemoryStore::new()).await;
        command_contract(&InMemoryStore::new()).await;
        halt_contract(&InMemoryStore::new()).await;
        wave_contract(&InMemoryStore::new()).await;
        retention_contract(&InMemoryStore::new().with_retention(Retention::keep(3))).await;
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
        lease_contract(&InMemoryStore::new(), &clock).await;
    }

    #[tokio::test]
    async fn file_store_meets_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        store_contract(&FileStore::open(dir.path().join("a")).unwrap()).await;
        history_contract(&FileStore::open(dir.path().join("h")).unwrap()).await;
        command_contract(&FileStore::open(dir.path().join("c")).unwrap()).await;
        halt_contract(&FileStore::open(dir.path().join("halts")).unwrap()).await;
        wave_contract(&FileStore::open(dir.path().join("waves")).unwrap()).await;
        let kept = FileStore::open(dir.path().join("r"))
            .unwrap()
            .with_retention(Retention::keep(3));
        retention_contract(&kept).await;
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
        let store = FileStore::open(dir.path().join("b")).unwrap();
        lease_contract(&store, &clock).await;
    }

    /// A store with only the required methods, so the defaults answer the contract too.
    #[derive(Debug, Default)]
    struct Minimal(InMemoryStore);

    #[async_trait]
    impl StateStore for Minimal {
        async fn save(&self, record: &mut DeploymentRecord) -> Result<()> {
            self.0.save(record).await
        }
        async fn load(&self, id: &DeploymentId) -> Result<DeploymentRecord> {
            self.0.load(id).await
        }
        async fn list(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
            self.0.list(service).await
        }
        async fn acquire_lease(
            &self,
            service: &ServiceName,
            deployment: &DeploymentId,
            holder: &str,
            ttl: Duration,
            now: SystemTime,
        ) -> Result<LeaseGrant> {
            self.0
                .acquire_lease(service, deployment, holder, ttl, now)
                .await
        }
        async fn renew_lease(
            &self,
            lease: &Lease,
            ttl: Duration,
            now: SystemTime,
        ) -> Result<Lease> {
            self.0.renew_lease(lease, ttl, now).await
        }
        async fn release_lease(&self, lease: &Lease) -> Result<()> {
            self.0.release_lease(lease).await
        }
        async fn lease(&self, service: &ServiceName) -> Result<Option<Lease>> {
            self.0.lease(service).await
        }
        async fn add_command(&self, command: &CommandRecord) -> Result<()> {
            self.0.add_command(command).await
        }
        async fn commands(&self, deployment: &DeploymentId) -> Result<Vec<CommandRecord>> {
            self.0.commands(deployment).await
        }
        fn halt_store(&self) -> Option<&dyn HaltStore> {
            None
        }
        fn wave_store(&self) -> Option<&dyn WaveStore> {
            None
        }
    }

    #[tokio::test]
    async fn the_default_methods_meet_the_contract() {
        store_contract(&Minimal::default()).await;
        history_contract(&Minimal::default()).await;
    }

    #[tokio::test]
    async fn a_store_without_halts_or_waves_says_so() {
        use crate::Error;
        let store = Minimal::default();
        assert!(matches!(
            halts_of(&store, "halt"),
            Err(Error::NotSupported { .. })
        ));
        assert!(matches!(
            waves_of(&store, "run a wave plan"),
            Err(Error::NotSupported { .. })
        ));
        assert!(halts_of(&InMemoryStore::new(), "halt").is_ok());
        assert!(waves_of(&InMemoryStore::new(), "run a wave plan").is_ok());
    }
}
