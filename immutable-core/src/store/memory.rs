use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::{Lease, LeaseGrant, StateStore, grant_lease, renewed_lease, version_conflict};
use crate::{
    CommandRecord, DeploymentId, DeploymentRecord, Error, ResourceKind, Result, ServiceName,
};

/// A [`StateStore`] in memory, for tests and single-process tools. Clones share state.
///
/// Lease expiry follows the caller's clock (the engine's), so lease tests run in virtual time.
#[derive(Debug, Clone, Default)]
pub struct InMemoryStore {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    records: BTreeMap<DeploymentId, DeploymentRecord>,
    commands: BTreeMap<DeploymentId, BTreeMap<String, CommandRecord>>,
    leases: BTreeMap<ServiceName, Lease>,
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        InMemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl StateStore for InMemoryStore {
    async fn save(&self, record: &mut DeploymentRecord) -> Result<()> {
        let mut state = self.lock();
        let stored = state.records.get(&record.id).map(|r| r.version);
        match stored {
            None if record.version != 0 => {
                return Err(Error::not_found(
                    ResourceKind::Deployment,
                    record.id.to_string(),
                ));
            }
            Some(_) if record.version == 0 => {
                return Err(Error::AlreadyExists {
                    kind: ResourceKind::Deployment,
                    id: record.id.to_string(),
                });
            }
            Some(v) if v != record.version => return Err(version_conflict(record, v)),
            _ => {}
        }
        record.version += 1;
        state.records.insert(record.id.clone(), record.clone());
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
        Ok(self
            .lock()
            .records
            .values()
            .filter(|r| service.is_none_or(|s| r.service() == s))
            .cloned()
            .collect())
    }

    async fn unfinished(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
        Ok(self
            .lock()
            .records
            .values()
            .filter(|r| !r.phase.is_terminal() && service.is_none_or(|s| r.service() == s))
            .cloned()
            .collect())
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

    async fn add_command(&self, command: &CommandRecord) -> Result<()> {
        let mut state = self.lock();
        let all = state
            .commands
            .entry(command.deployment.clone())
            .or_default();
        if all.contains_key(&command.id) {
            return Err(Error::AlreadyExists {
                kind: ResourceKind::Command,
                id: command.id.clone(),
            });
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

    async fn lease(&self, service: &ServiceName) -> Result<Option<Lease>> {
        Ok(self.lock().leases.get(service).cloned())
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
}
