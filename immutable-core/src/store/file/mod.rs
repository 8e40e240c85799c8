//! [`FileStore`]: the journal in a directory, the embedded default on one machine.

mod commands;
mod halts;
#[cfg(test)]
mod hostile;
mod index;
mod io;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

pub use io::FileStoreStats;
use io::{Dir, io_error};

use super::{
    HaltStore, HistoryPage, Lease, LeaseGrant, Page, Retention, StateStore, WaveStore, grant_lease,
    renewed_lease,
};
use crate::{
    CommandRecord, DeploymentId, DeploymentRecord, Error, Halt, HaltScope, ResourceKind, Result,
    ServiceName, WaveId, WaveRecord,
};

/// A [`StateStore`] in a directory: the embedded default for a deploy tool on one machine.
///
/// # Layout
/// - `deployments/<service>/<id>.json`: the records, one file each;
/// - `index/<service>.json`: per service, its record count, newest id and unfinished ids;
/// - `leases/<service>.json`: the leases;
/// - `commands/<deployment>/<id>.json`: operators' commands;
/// - `halts/<scope>.json`: halts; `waves/<id>.json`: wave plans, with `waves/open/<id>` markers.
///
/// Every write goes to a temporary file that is fsynced and then renamed over the old one, so
/// a crash leaves either the old or the new version, never a torn one. Every operation holds
/// an exclusive lock on `<dir>/.lock`, so several processes on one machine may share the
/// directory. Lease expiry follows the caller's clock (the engine's), so processes sharing a
/// directory should keep their clocks in step, as any lease over a file system assumes.
///
/// # Cost
/// A deployment reads a bounded number of files whatever the history: a save reads the
/// record it replaces (and the service's index when the record opens or closes);
/// [`unfinished`](StateStore::unfinished) of a service reads its index and the unfinished
/// records; [`latest`](StateStore::latest) the index and one record;
/// [`history`](StateStore::history) lists the service's directory and reads one page. See
/// [`stats`](Self::stats).
///
/// # The index
/// The index is derived data, written in an order that lets it claim too much but never too
/// little (an unfinished record is always named). It is rebuilt from the record files when it
/// is missing beside records, unreadable, or names a record that is missing or finished; a
/// rebuild reads the service's records once. After restoring or deleting record files by
/// hand, call [`rebuild_indexes`](Self::rebuild_indexes).
///
/// # Retention
/// After a success, finished records beyond the newest [`Retention`] keeps are deleted
/// ([`Retention::default`] unless [`with_retention`](Self::with_retention) says otherwise), in
/// batches of a sixteenth of `keep`: a service holds at most `keep + keep / 16` records.
///
/// A record that cannot be parsed is reported as [`Error::Store`] naming the file; it is never
/// overwritten or silently replaced.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: Arc<Dir>,
    retention: Retention,
}

impl FileStore {
    /// Opens (creating if needed, private to the user) a store in `dir`.
    ///
    /// # Errors
    /// [`Error::Store`] naming the directory if it cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let root = dir.into();
        for sub in ["deployments", "leases", "index"] {
            io::create_private_dir_all(&root.join(sub))?;
        }
        let dir = Dir::new(root);
        Ok(FileStore {
            dir: Arc::new(dir),
            retention: Retention::default(),
        })
    }

    /// Keeps records as `retention` says.
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir.root
    }

    /// What this store (and its clones) did to the directory since it was opened.
    pub fn stats(&self) -> FileStoreStats {
        self.dir.stats()
    }

    /// Rebuilds every service's index from its record files: after records were restored or
    /// deleted by hand. Reads every record once.
    ///
    /// # Errors
    /// A record that cannot be read or parsed, named.
    pub async fn rebuild_indexes(&self) -> Result<()> {
        self.locked(|dir| {
            for service in dir.services()? {
                dir.rebuild(&service)?;
            }
            Ok(())
        })
        .await
    }

    async fn locked<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Dir) -> Result<T> + Send + 'static,
    {
        let dir = Arc::clone(&self.dir);
        tokio::task::spawn_blocking(move || dir.locked(f))
            .await
            .map_err(|e| Error::store("file store task failed", Some(Box::new(e) as _)))?
    }
}

#[async_trait]
impl StateStore for FileStore {
    async fn save(&self, record: &mut DeploymentRecord) -> Result<()> {
        let next = record.clone();
        let retention = self.retention;
        let saved = self
            .locked(move |dir| {
                let (saved, closed) = dir.save(next)?;
                if let Some(index) = closed
                    && retention.trims_after(&saved)
                {
                    dir.trim(saved.service(), index, &retention, &saved.id)?;
                }
                Ok(saved.version)
            })
            .await?;
        record.version = saved;
        Ok(())
    }

    async fn load(&self, id: &DeploymentId) -> Result<DeploymentRecord> {
        io::file_stem(id)?;
        let id = id.clone();
        self.locked(move |dir| {
            for service in dir.services()? {
                if let Some(record) = dir.read_record(&service, &id)? {
                    return Ok(record);
                }
            }
            Err(Error::not_found(ResourceKind::Deployment, id.to_string()))
        })
        .await
    }

    async fn list(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
        let service = service.cloned();
        self.locked(move |dir| {
            let mut records = Vec::new();
            for service in dir.services_or_all(service)? {
                for id in dir.record_ids(&service)? {
                    records.extend(dir.read_record(&service, &id)?);
                }
            }
            records.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(records)
        })
        .await
    }

    async fn unfinished(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
        let service = service.cloned();
        self.locked(move |dir| {
            let mut records = Vec::new();
            for service in dir.services_or_all(service)? {
                records.extend(dir.unfinished_of(&service)?);
            }
            records.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(records)
        })
        .await
    }

    async fn latest(&self, service: &ServiceName) -> Result<Option<DeploymentRecord>> {
        let service = service.clone();
        self.locked(move |dir| dir.latest_of(&service)).await
    }

    async fn services(
        &self,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> Result<Vec<ServiceName>> {
        crate::limits::count("limit", limit, 1, Page::MAX_LIMIT)?;
        let after = after.cloned();
        self.locked(move |dir| {
            let mut names = dir.services()?;
            names.sort();
            Ok(crate::store::services_after(names, after.as_ref(), limit))
        })
        .await
    }

    async fn history(&self, service: &ServiceName, page: &Page) -> Result<HistoryPage> {
        page.check()?;
        let (service, page) = (service.clone(), page.clone());
        self.locked(move |dir| {
            let ids = dir.record_ids(&service)?;
            let mut records = Vec::with_capacity(page.limit + 1);
            for id in ids
                .iter()
                .rev()
                .filter(|id| page.before.as_ref().is_none_or(|b| *id < b))
                .take(page.limit + 1)
            {
                records.extend(dir.read_record(&service, id)?);
            }
            Ok(HistoryPage::from_newest(records, &page))
        })
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
        let (service, deployment, holder) =
            (service.clone(), deployment.clone(), holder.to_owned());
        self.locked(move |dir| {
            let path = dir.lease_path(&service);
            let existing: Option<Lease> = dir.read_json(&path, "lease")?;
            let grant = grant_lease(existing.as_ref(), &service, &deployment, &holder, ttl, now)?;
            dir.write_json(&path, &grant.lease)?;
            Ok(grant)
        })
        .await
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration, now: SystemTime) -> Result<Lease> {
        let lease = lease.clone();
        self.locked(move |dir| {
            let path = dir.lease_path(&lease.service);
            let existing: Option<Lease> = dir.read_json(&path, "lease")?;
            let renewed = renewed_lease(existing.as_ref(), &lease, ttl, now)?;
            dir.write_json(&path, &renewed)?;
            Ok(renewed)
        })
        .await
    }

    async fn lease(&self, service: &ServiceName) -> Result<Option<Lease>> {
        let service = service.clone();
        self.locked(move |dir| dir.read_json(&dir.lease_path(&service), "lease"))
            .await
    }

    async fn add_command(&self, command: &CommandRecord) -> Result<()> {
        let command = command.clone();
        self.locked(move |dir| dir.add_command(&command)).await
    }

    async fn commands(&self, deployment: &DeploymentId) -> Result<Vec<CommandRecord>> {
        let deployment = deployment.clone();
        self.locked(move |dir| dir.commands(&deployment)).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        let lease = lease.clone();
        self.locked(move |dir| {
            let path = dir.lease_path(&lease.service);
            let existing: Option<Lease> = dir.read_json(&path, "lease")?;
            if existing.is_some_and(|l| l.holder == lease.holder) {
                std::fs::remove_file(&path).map_err(|e| io_error("cannot remove", &path, e))?;
            }
            Ok(())
        })
        .await
    }

    fn halt_store(&self) -> Option<&dyn HaltStore> {
        Some(self)
    }

    fn wave_store(&self) -> Option<&dyn WaveStore> {
        Some(self)
    }
}

#[async_trait]
impl HaltStore for FileStore {
    async fn set_halt(&self, halt: &Halt) -> Result<()> {
        let halt = halt.clone();
        self.locked(move |dir| dir.set_halt(&halt)).await
    }

    async fn lift_halt(&self, scope: &HaltScope) -> Result<Option<Halt>> {
        let scope = scope.clone();
        self.locked(move |dir| dir.lift_halt(&scope)).await
    }

    async fn halts(&self, service: Option<&ServiceName>) -> Result<Vec<Halt>> {
        let service = service.cloned();
        self.locked(move |dir| dir.halts(service.as_ref())).await
    }
}

#[async_trait]
impl WaveStore for FileStore {
    async fn save_wave(&self, record: &mut WaveRecord) -> Result<()> {
        let next = record.clone();
        record.version = self.locked(move |dir| dir.save_wave(next)).await?;
        Ok(())
    }

    async fn load_wave(&self, id: &WaveId) -> Result<WaveRecord> {
        let id = id.clone();
        self.locked(move |dir| dir.load_wave(&id)).await
    }

    async fn unfinished_waves(&self) -> Result<Vec<WaveRecord>> {
        self.locked(|dir| dir.unfinished_waves()).await
    }
}
