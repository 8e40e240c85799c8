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

use crate::{DeploymentId, DeploymentRecord, Error, ResourceKind, Result, ServiceName};

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

    /// Takes the service's lease for `ttl`: granted when it is free, expired, or already
    /// `holder`'s; [`Error::Locked`] otherwise.
    async fn acquire_lease(
        &self,
        service: &ServiceName,
        deployment: &DeploymentId,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseGrant>;

    /// Extends a held lease; [`Error::Locked`] if another holder took it.
    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease>;

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
                service: service.to_string(),
                holder: l.holder.clone(),
                deployment: l.deployment.to_string(),
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

fn renewed_lease(existing: Option<&Lease>, lease: &Lease, ttl: Duration, now: SystemTime) -> Result<Lease> {
    match existing {
        Some(l) if l.holder == lease.holder => Ok(Lease {
            expires_at: now + ttl,
            ..l.clone()
        }),
        Some(l) => Err(Error::Locked {
            service: lease.service.to_string(),
            holder: l.holder.clone(),
            deployment: l.deployment.to_string(),
        }),
        None => Err(Error::not_found(
            ResourceKind::Lease,
            format!("{} held by {}", lease.service, lease.holder),
        )),
    }
}

fn version_conflict(record: &DeploymentRecord, stored: u64) -> Error {
    Error::conflict(format!(
        "deployment {} is at version {stored} in the store, but this copy is at version {}; \
         another engine is advancing it",
        record.id, record.version
    ))
}
