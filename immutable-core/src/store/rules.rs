//! The rules every store applies the same way: the version compare-and-swap of a save, and
//! who may take or renew a lease.

use std::time::{Duration, SystemTime};

use super::{Lease, LeaseGrant};
use crate::{DeploymentId, DeploymentRecord, Error, ResourceKind, Result, ServiceName};

/// The compare-and-swap rule of [`StateStore::save`](super::StateStore::save): whether
/// `record` may replace what the store holds at version `stored` (`None` when it holds no
/// record of that id).
///
/// A store that checks versions itself calls it under its lock; a store whose database checks
/// a condition (DynamoDB) calls it after the condition failed, with the version it then reads,
/// to name the error.
///
/// # Errors
/// - [`Error::AlreadyExists`] when a first save (version 0) finds a record;
/// - [`Error::NotFound`] when a later save finds none;
/// - [`Error::StaleVersion`] when the versions differ.
pub fn check_version(stored: Option<u64>, record: &DeploymentRecord) -> Result<()> {
    match stored {
        None if record.version != 0 => Err(Error::not_found(
            ResourceKind::Deployment,
            record.id.to_string(),
        )),
        Some(_) if record.version == 0 => Err(Error::already_exists(
            ResourceKind::Deployment,
            record.id.to_string(),
        )),
        Some(v) if v != record.version => Err(Error::StaleVersion {
            deployment: record.id.clone(),
            stored: v,
            ours: record.version,
        }),
        _ => Ok(()),
    }
}

/// Renews `lease` in `store` every third of `ttl`, each renewal under `retry`; returns only
/// when the lease is lost (taken by another holder, or the store failing past the retries).
/// Deployments and wave plans keep their leases with it.
pub(crate) async fn keep_lease(
    store: &dyn super::StateStore,
    mut lease: Lease,
    ttl: Duration,
    clock: &dyn crate::Clock,
    retry: &crate::RetryPolicy,
) -> Error {
    loop {
        tokio::time::sleep(ttl / 3).await;
        let renewed = retry
            .run(|| store.renew_lease(&lease, ttl, clock.now()), |_, _, _| {})
            .await;
        match renewed {
            Ok(renewed) => lease = renewed,
            Err(e) => return e,
        }
    }
}

/// The lease rules both bundled stores share.
pub(crate) fn grant_lease(
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

pub(crate) fn renewed_lease(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::sample_record;

    #[test]
    fn the_version_rule_names_each_refusal() {
        let mut r = sample_record("web");
        assert!(check_version(None, &r).is_ok());
        assert!(matches!(
            check_version(Some(1), &r),
            Err(Error::AlreadyExists { .. })
        ));
        r.version = 2;
        assert!(check_version(Some(2), &r).is_ok());
        assert!(matches!(
            check_version(None, &r),
            Err(Error::NotFound { .. })
        ));
        match check_version(Some(3), &r) {
            Err(Error::StaleVersion { stored, ours, .. }) => assert_eq!((stored, ours), (3, 2)),
            other => panic!("{other:?}"),
        }
    }
}
