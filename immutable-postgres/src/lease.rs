//! Service leases: one row per service, taken by one conditional upsert (free, expired at the
//! caller's clock, or already the taker's), renewed and released only by their holder.

use std::time::{Duration, SystemTime};

use immutable_core::{DeploymentId, Error, Lease, LeaseGrant, ResourceKind, Result, ServiceName};

use crate::PostgresStore;
use crate::db::{Count, nanos, time};
use crate::error::Doing;

impl PostgresStore {
    /// The refusal of a conditional lease write: the lease as it stands now.
    async fn locked(&self, service: &ServiceName, doing: &Doing<'_>) -> Result<Error> {
        Ok(match self.stored_lease(service, doing).await? {
            Some(held) => Error::Locked {
                service: service.clone(),
                holder: held.holder,
                deployment: held.deployment,
            },
            None => Error::not_found(ResourceKind::Lease, service.to_string()),
        })
    }

    pub(crate) async fn take_lease(
        &self,
        service: &ServiceName,
        deployment: &DeploymentId,
        holder: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<LeaseGrant> {
        let db = &self.db;
        let doing = &db.doing("acquire", ResourceKind::Lease, service.as_str());
        let lease = Lease {
            service: service.clone(),
            deployment: deployment.clone(),
            holder: holder.to_owned(),
            expires_at: now + ttl,
        };
        let (s, d) = (service.as_str(), deployment.as_str());
        let (expires, now) = (nanos(lease.expires_at), nanos(now));
        // A retried take finds its own lease (the holder is the taker's): granted again.
        let rows = db
            .retrying(doing, move |_| async move {
                db.write_returning(
                    &db.sql.acquire_lease,
                    &[&s, &d, &holder, &expires, &now],
                    doing,
                )
                .await
            })
            .await?;
        let Some(row) = rows.first() else {
            return Err(self.locked(service, doing).await?);
        };
        let replaced = match (
            row.get::<_, Option<String>>(0),
            row.get::<_, Option<String>>(1),
            row.get::<_, Option<i64>>(2),
        ) {
            (Some(deployment), Some(holder), Some(expires_at)) => Some(Lease {
                service: service.clone(),
                deployment: DeploymentId::new(deployment),
                holder,
                expires_at: time(expires_at),
            }),
            _ => None,
        };
        Ok(LeaseGrant { lease, replaced })
    }

    pub(crate) async fn extend_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Lease> {
        let db = &self.db;
        let doing = &db.doing("renew", ResourceKind::Lease, lease.service.as_str());
        let (s, h) = (lease.service.as_str(), lease.holder.as_str());
        let expires_at = now + ttl;
        let expires = nanos(expires_at);
        let rows = db
            .retrying(doing, move |_| async move {
                db.write_returning(&db.sql.renew_lease, &[&s, &h, &expires], doing)
                    .await
            })
            .await?;
        match rows.first() {
            Some(row) => Ok(Lease {
                service: lease.service.clone(),
                deployment: DeploymentId::new(row.get::<_, String>(0)),
                holder: lease.holder.clone(),
                expires_at,
            }),
            None => Err(self.locked(&lease.service, doing).await?),
        }
    }

    pub(crate) async fn drop_lease(&self, lease: &Lease) -> Result<()> {
        let db = &self.db;
        let doing = &db.doing("release", ResourceKind::Lease, lease.service.as_str());
        let (s, h) = (lease.service.as_str(), lease.holder.as_str());
        db.retrying(doing, move |_| async move {
            db.execute(&db.sql.release_lease, &[&s, &h], doing).await
        })
        .await?;
        Ok(())
    }

    pub(crate) async fn stored_lease(
        &self,
        service: &ServiceName,
        doing: &Doing<'_>,
    ) -> Result<Option<Lease>> {
        let db = &self.db;
        let s = service.as_str();
        let rows = db
            .retrying(doing, move |_| async move {
                db.query(&db.sql.read_lease, &[&s], Count::Read, doing)
                    .await
            })
            .await?;
        Ok(rows.first().map(|row| Lease {
            service: service.clone(),
            deployment: DeploymentId::new(row.get::<_, String>(0)),
            holder: row.get(1),
            expires_at: time(row.get(2)),
        }))
    }
}
