//! The journal and lock: deployment records with versioned compare-and-swap, and per-service
//! leases with expiry.

mod file;
mod memory;

use std::fmt::Debug;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use file::FileStore;
pub use memory::InMemoryStore;

use crate::{
    CommandRecord, DeploymentId, DeploymentRecord, Error, ResourceKind, Result, ServiceName,
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
///   bumps the record's version. Otherwise [`Error::Conflict`] (or
///   [`Error::AlreadyExists`] for a second first save).
/// - A saved record is durable once `save` returns.
/// - At most one unexpired lease per service; [`Error::Locked`] for anyone else.
#[async_trait]
pub trait StateStore: Debug + Send + Sync + 'static {
    /// Stores `record` if its version matches, and bumps the version.
    async fn save(&self, record: &mut DeploymentRecord) -> Result<()>;

    /// Loads one record; [`Error::NotFound`] for an unknown id.
    async fn load(&self, id: &DeploymentId) -> Result<DeploymentRecord>;

    /// Every record, or the service's, oldest first.
    async fn list(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>>;

    /// The unfinished records (neither done nor rolled back), or the service's, oldest first.
    ///
    /// The default filters [`list`](StateStore::list); stores with many finished records
    /// should answer it without reading them all.
    async fn unfinished(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
        let mut records = self.list(service).await?;
        records.retain(|r| !r.phase.is_terminal());
        Ok(records)
    }

    /// Takes the service's lease until `now + ttl`: granted when it is free, expired at `now`,
    /// or already `holder`'s; [`Error::Locked`] otherwise.
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

    /// Extends a held lease until `now + ttl`; [`Error::Locked`] if another holder took it.
    async fn renew_lease(&self, lease: &Lease, ttl: Duration, now: SystemTime) -> Result<Lease>;

    /// Appends an operator's command to a deployment. A create, never an overwrite: two
    /// commands given at once are both kept; writing the same command id twice is
    /// [`Error::AlreadyExists`] (or a no-op), never a second command.
    async fn add_command(&self, command: &CommandRecord) -> Result<()>;

    /// A deployment's commands, oldest first (command ids sort by time).
    async fn commands(&self, deployment: &DeploymentId) -> Result<Vec<CommandRecord>>;

    /// The service's lease as stored, expired or not; `None` if there is none. A read: it
    /// takes nothing.
    async fn lease(&self, service: &ServiceName) -> Result<Option<Lease>>;

    /// Gives a held lease up; releasing a lease that is no longer held is not an error.
    async fn release_lease(&self, lease: &Lease) -> Result<()>;
}

/// The lease rules both bundled stores share.
fn grant_lease(
    existing: Option<&Lease>,
    service: &ServiceName,
    deployment: &DeploymentId,
    holder: &str,
    ttl: Duration,
    now: SystemTime,
) -> Result<LeaseGrant> {
    let replaced = match existing {
        Some(l) if l.holder == holder => None,
        Some(l) if l.expires_at > now => {
            return Err(Error::Locked {
                service: service.clone(),
                holder: l.holder.clone(),
                deployment: l.deployment.clone(),
            });
        }
        other => other.cloned(),
    };
    Ok(LeaseGrant {
        lease: Lease {
            service: service.clone(),
            deployment: deployment.clone(),
            holder: holder.to_owned(),
            expires_at: now + ttl,
        },
        replaced,
    })
}

fn renewed_lease(
    existing: Option<&Lease>,
    lease: &Lease,
    ttl: Duration,
    now: SystemTime,
) -> Result<Lease> {
    match existing {
        Some(l) if l.holder == lease.holder => Ok(Lease {
            expires_at: now + ttl,
            ..l.clone()
        }),
        Some(l) => Err(Error::Locked {
            service: lease.service.clone(),
            holder: l.holder.clone(),
            deployment: l.deployment.clone(),
        }),
        None => Err(Error::not_found(
            ResourceKind::Lease,
            format!("{} held by {}", lease.service, lease.holder),
        )),
    }
}

fn version_conflict(record: &DeploymentRecord, stored: u64) -> Error {
    Error::StaleVersion {
        deployment: record.id.clone(),
        stored,
        ours: record.version,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::ManualClock;
    use crate::conformance::{
        command_contract, lease_contract, sample_record as record, store_contract,
    };

    #[tokio::test]
    async fn in_memory_store_meets_the_contract() {
        store_contract(&InMemoryStore::new()).await;
        command_contract(&InMemoryStore::new()).await;
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
        lease_contract(&InMemoryStore::new(), &clock).await;
    }

    #[tokio::test]
    async fn file_store_meets_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        store_contract(&FileStore::open(dir.path().join("a")).unwrap()).await;
        command_contract(&FileStore::open(dir.path().join("c")).unwrap()).await;
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
        let store = FileStore::open(dir.path().join("b")).unwrap();
        lease_contract(&store, &clock).await;
    }

    #[tokio::test]
    async fn two_file_stores_on_one_directory_share_records_and_leases() {
        let dir = tempfile::tempdir().unwrap();
        let one = FileStore::open(dir.path()).unwrap();
        let two = FileStore::open(dir.path()).unwrap();
        let mut r = record("web");
        one.save(&mut r).await.unwrap();
        assert_eq!(two.load(&r.id).await.unwrap(), r);
        let web = ServiceName::new("web").unwrap();
        let ttl = Duration::from_secs(60);
        let now = SystemTime::now();
        one.acquire_lease(&web, &r.id, "one", ttl, now)
            .await
            .unwrap();
        assert!(matches!(
            two.acquire_lease(&web, &r.id, "two", ttl, now).await,
            Err(Error::Locked { .. })
        ));
        // Writes leave no temporary files behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("deployments"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![format!("{}.json", r.id)]);
    }

    #[tokio::test]
    async fn a_corrupted_record_is_an_error_naming_the_file_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let mut r = record("web");
        store.save(&mut r).await.unwrap();
        let path = dir
            .path()
            .join("deployments")
            .join(format!("{}.json", r.id));
        let full = std::fs::read(&path).unwrap();
        for broken in [
            &full[..full.len() / 2],
            b"not json".as_slice(),
            b"".as_slice(),
        ] {
            std::fs::write(&path, broken).unwrap();
            for result in [
                store.load(&r.id).await.map(|_| ()),
                store.list(None).await.map(|_| ()),
                store.save(&mut r.clone()).await,
            ] {
                match result {
                    Err(Error::Store { message, .. }) => {
                        assert!(message.contains(&path.display().to_string()), "{message}");
                        assert!(message.contains("corrupted"), "{message}");
                    }
                    other => panic!("expected a store error, got {other:?}"),
                }
            }
            assert_eq!(
                std::fs::read(&path).unwrap(),
                broken,
                "the broken file was modified"
            );
        }
    }

    #[tokio::test]
    async fn ids_that_are_not_file_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        match store.load(&DeploymentId::new("../../etc/passwd")).await {
            Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "deployment"),
            other => panic!("{other:?}"),
        }
    }
}
