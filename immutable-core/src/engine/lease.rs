//! The service lease: taken before a deployment plans or resumes, renewed every third of its
//! time-to-live while it runs, released at its end.

use super::Inner;
use crate::{DeploymentId, Error, EventKind, Lease, Result, ServiceName};

impl Inner {
    pub(super) async fn acquire_lease(
        &self,
        service: &ServiceName,
        id: &DeploymentId,
    ) -> Result<Lease> {
        let holder = format!("engine-{}", ulid::Ulid::new().to_string().to_lowercase());
        let grant = self
            .store
            .acquire_lease(
                service,
                id,
                &holder,
                self.settings.lease_ttl,
                self.clock.now(),
            )
            .await?;
        if let Some(old) = grant.replaced {
            self.emit_for(
                id,
                service,
                EventKind::LeaseTakenOver {
                    previous_holder: old.holder,
                    previous_deployment: old.deployment,
                },
            );
        }
        Ok(grant.lease)
    }

    /// Renews the lease every third of its time-to-live; returns only when it is lost.
    pub(super) async fn keep_lease(&self, lease: Lease) -> Error {
        let settings = &self.settings;
        crate::store::keep_lease(
            &*self.store,
            lease,
            settings.lease_ttl,
            &*self.clock,
            &settings.retry,
        )
        .await
    }
}
