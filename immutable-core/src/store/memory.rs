//! [`InMemoryStore`]: the journal in maps, for tests and single-process tools.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::{
    HaltStore, HistoryPage, Lease, LeaseGrant, Page, Retention, StateStore, WaveStore,
    check_version, grant_lease, renewed_lease,
};
use crate::{
    CommandRecord, DeploymentId, DeploymentRecord, Error, Halt, HaltScope, ResourceKind, Result,
    ServiceName, WaveId, WaveRecord, check_wave_version,
};

/// A [`StateStore`] in memory, for tests and single-process tools. Clones share state.
///
/// Records are indexed by service and by whether they are unfinished, so
/// [`latest`](StateStore::latest), [`history`](StateStore::history), and
/// [`list`](StateStore::list) and [`unfinished`](StateStore::unfinished) of one service, never
/// walk the whole journal. Old records are trimmed
/// after each success as [`Retention`] says ([`Retention::default`] unless
/// [`with_retention`](Self::with_retention) says otherwise), exactly, with no batching.
///
/// Lease expiry follows the caller's clock (the engine's), so lease tests run in virtual time.
#[derive(Debug, Clone, Default)]
pub struct InMemoryStore {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    records: BTreeMap<DeploymentId, DeploymentRecord>,
    by_service: BTreeMap<ServiceName, BTreeSet<DeploymentId>>,
    /// Unfinished records by service.
    open: BTreeMap<ServiceName, BTreeSet<DeploymentId>>,
    leases: BTreeMap<ServiceName, Lease>,
    commands: BTreeMap<DeploymentId, BTreeMap<String, CommandRecord>>,
    halts: BTreeMap<HaltScope, Halt>,
    waves: BTreeMap<WaveId, WaveRecord>,
    retention: Retention,
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        InMemoryStore::default()
    }

    /// Keeps records as `retention` says; the setting is shared by every clone.
    pub fn with_retention(self, retention: Retention) -> Self {
        self.lock().retention = retention;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// The records of `ids`, in id order.
    fn records_of(&self, ids: Option<&BTreeSet<DeploymentId>>) -> Vec<DeploymentRecord> {
        ids.into_iter()
            .flatten()
            .filter_map(|id| self.records.get(id))
            .cloned()
            .collect()
    }

    /// Deletes the service's finished records beyond the newest kept, older than `succeeded`.
    fn trim(&mut self, service: &ServiceName, succeeded: &DeploymentId) {
        let Some(ids) = self.by_service.get(service) else {
            return;
        };
        let excess = self.retention.excess(ids.len());
        let doomed: Vec<DeploymentId> = ids
            .iter()
            .take(excess)
            .filter(|id| {
                self.records
                    .get(*id)
                    .is_some_and(|r| Retention::may_delete(r, succeeded))
            })
            .cloned()
            .collect();
        for id in doomed {
            self.records.remove(&id);
            if let Some(ids) = self.by_service.get_mut(service) {
                ids.remove(&id);
            }
        }
    }
}

#[async_trait]
impl StateStore for InMemoryStore {
    async fn save(&self, record: &mut DeploymentRecord) -> Result<()> {
        let mut state = self.lock();
        check_version(state.records.get(&record.id).map(|r| r.version), record)?;
        record.version += 1;
        let id = record.id.clone();
        if record.phase.is_terminal() {
            if let Some(open) = state.open.get_mut(record.service()) {
                open.remove(&id);
                if open.is_empty() {
                    state.open.remove(record.service());
                }
            }
        } else {
            let open = state.open.entry(record.service().clone()).or_default();
            open.insert(id.clone());
        }
        state
            .by_service
            .entry(record.service().clone())
            .or_default()
            .insert(id.clone());
        state.records.insert(id.clone(), record.clone());
        if state.retention.trims_after(record) {
            state.trim(record.service(), &id);
        }
        Ok(())
    }

    async fn load(&self, id: &DeploymentId) -> Result<DeploymentRecord> {
        self.lock()
            .records
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found(ResourceKind::Deployment, id.to_string()))
    }

    async fn list(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
        let state = self.lock();
        Ok(match service {
            None => state.records.values().cloned().collect(),
            Some(s) => state.records_of(state.by_service.get(s)),
        })
    }

    async fn unfinished(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
        let state = self.lock();
        Ok(match service {
            None => {
                let open: BTreeSet<&DeploymentId> = state.open.values().flatten().collect();
                open.into_iter()
                    .filter_map(|id| state.records.get(id))
                    .cloned()
                    .collect()
            }
            Some(s) => state.records_of(state.open.get(s)),
        })
    }

    async fn services(
        &self,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> Result<Vec<ServiceName>> {
        crate::limits::count("limit", limit, 1, Page::MAX_LIMIT)?;
        let state = self.lock();
        let names = state
            .by_service
            .iter()
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(name, _)| name.clone());
        Ok(crate::store::services_after(names, after, limit))
    }

    async fn latest(&self, service: &ServiceName) -> Result<Option<DeploymentRecord>> {
        let state = self.lock();
        Ok(state
            .by_service
            .get(service)
            .and_then(|ids| ids.last())
            .and_then(|id| state.records.get(id))
            .cloned())
    }

    async fn history(&self, service: &ServiceName, page: &Page) -> Result<HistoryPage> {
        page.check()?;
        let state = self.lock();
        let records = state
            .by_service
            .get(service)
            .into_iter()
            .flat_map(|ids| match &page.before {
                Some(before) => ids.range(..before.clone()),
                None => ids.range(..),
            })
            .rev()
            .take(page.limit + 1)
            .filter_map(|id| state.records.get(id).cloned())
            .collect();
        Ok(HistoryPage::from_newest(records, page))
    }

    async fn acquire_lease(
        &self,
        service: &ServiceName,
        deployment: &DeploymentId,
        holder: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<LeaseGrant> {
        let mut state = self.lock();
        let grant = grant_lease(
            state.leases.get(service),
            service,
            deployment,
            holder,
            ttl,
            now,
        )?;
        state.leases.insert(service.clone(), grant.lease.clone());
        Ok(grant)
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration, now: SystemTime) -> Result<Lease> {
        let mut state = self.lock();
        let renewed = renewed_lease(state.leases.get(&lease.service), lease, ttl, now)?;
        state.leases.insert(lease.service.clone(), renewed.clone());
        Ok(renewed)
    }

    async fn lease(&self, service: &ServiceName) -> Result<Option<Lease>> {
        Ok(self.lock().leases.get(service).cloned())
    }

    async fn add_command(&self, command: &CommandRecord) -> Result<()> {
        let mut state = self.lock();
        let all = state
            .commands
            .entry(command.deployment.clone())
            .or_default();
        if all.contains_key(&command.id) {
            return Err(Error::already_exists(
                ResourceKind::Command,
                command.id.clone(),
            ));
        }
        all.insert(command.id.clone(), command.clone());
        Ok(())
    }

    async fn commands(&self, deployment: &DeploymentId) -> Result<Vec<CommandRecord>> {
        Ok(self
            .lock()
            .commands
            .get(deployment)
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        let mut state = self.lock();
        if state
            .leases
            .get(&lease.service)
            .is_some_and(|l| l.holder == lease.holder)
        {
            state.leases.remove(&lease.service);
        }
        Ok(())
    }

    fn halt_store(&self) -> Option<&dyn HaltStore> {
        Some(self)
    }

    fn wave_store(&self) -> Option<&dyn WaveStore> {
        Some(self)
    }
}

#[async_trait]
impl HaltStore for InMemoryStore {
    async fn set_halt(&self, halt: &Halt) -> Result<()> {
        self.lock().halts.insert(halt.scope.clone(), halt.clone());
        Ok(())
    }

    async fn lift_halt(&self, scope: &HaltScope) -> Result<Option<Halt>> {
        Ok(self.lock().halts.remove(scope))
    }

    async fn halts(&self, service: Option<&ServiceName>) -> Result<Vec<Halt>> {
        Ok(self
            .lock()
            .halts
            .values()
            .filter(|h| service.is_none_or(|s| h.scope.covers(s)))
            .cloned()
            .collect())
    }
}

#[async_trait]
impl WaveStore for InMemoryStore {
    async fn save_wave(&self, record: &mut WaveRecord) -> Result<()> {
        let mut state = self.lock();
        check_wave_version(state.waves.get(&record.id).map(|r| r.version), record)?;
        record.version += 1;
        state.waves.insert(record.id.clone(), record.clone());
        Ok(())
    }

    async fn load_wave(&self, id: &WaveId) -> Result<WaveRecord> {
        self.lock()
            .waves
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found(ResourceKind::WavePlan, id.as_str()))
    }

    async fn unfinished_waves(&self) -> Result<Vec<WaveRecord>> {
        Ok(self
            .lock()
            .waves
            .values()
            .filter(|w| !w.state.is_terminal())
            .cloned()
            .collect())
    }
}
