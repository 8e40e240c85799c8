//! The Plan phase: validate the request, resolve the image, take the service's lease, refuse
//! while another deployment is unfinished, find the fleet that serves now (blue), and create
//! the record. It makes no change to the cloud; the record is saved at its end.

use std::time::SystemTime;

use super::Inner;
use super::record::{Blue, Origin};
use crate::{
    DeploymentId, DeploymentRecord, DeploymentSpec, Error, EventKind, Image, Lease, Phase, Result,
    ServiceName,
};

impl Inner {
    /// Plans deployment `id`: resolves its image, takes the service's lease, refuses while
    /// another deployment is unfinished, finds blue and saves the record, entering
    /// [`Phase::Provision`]. Returns the record and the lease held; on an error nothing was
    /// created and the lease is released.
    pub(super) async fn plan(
        &self,
        id: &DeploymentId,
        spec: DeploymentSpec,
        origin: Origin,
    ) -> Result<(DeploymentRecord, Lease)> {
        let now = self.clock.now();
        self.emit_for(
            id,
            &spec.service,
            EventKind::PhaseEntered { phase: Phase::Plan },
        );
        let image = self.resolve_image(id, &spec).await?;
        let lease = self.acquire_lease(&spec.service, id).await?;
        match self.create_record(id, spec, image, now, origin).await {
            Ok(rec) => Ok((rec, lease)),
            Err(e) => {
                let _ = self.store.release_lease(&lease).await;
                Err(e)
            }
        }
    }

    /// The image the spec names; an image that does not resolve is bad input.
    async fn resolve_image(&self, id: &DeploymentId, spec: &DeploymentSpec) -> Result<Image> {
        self.call(id, &spec.service, "resolve image", || {
            self.images.resolve(&spec.service, &spec.image)
        })
        .await
        .map_err(|e| match e {
            Error::NotFound { .. } => Error::invalid(
                "image",
                format!(
                    "no image of service `{}` matches {}",
                    spec.service, spec.image
                ),
            ),
            other => other,
        })
    }

    /// With the lease held: refuses while another deployment is unfinished, finds blue, and
    /// saves the new record entering [`Phase::Provision`].
    async fn create_record(
        &self,
        id: &DeploymentId,
        spec: DeploymentSpec,
        image: Image,
        started: SystemTime,
        origin: Origin,
    ) -> Result<DeploymentRecord> {
        self.refuse_unfinished(&spec.service).await?;
        let blue = self.discover_blue(id, &spec.service).await?;
        let mut rec = DeploymentRecord::new(id.clone(), spec, image, blue, started);
        rec.origin = origin;
        rec.enter(Phase::Provision, self.clock.now(), None);
        self.store.save(&mut rec).await?;
        self.emit_for(
            id,
            rec.service(),
            EventKind::Planned {
                image: rec.image.id.clone(),
                capacity: rec.spec.capacity,
                blue: rec.blue.as_ref().map(|b| b.fleet.clone()),
            },
        );
        self.emit_for(
            id,
            rec.service(),
            EventKind::PhaseEntered {
                phase: Phase::Provision,
            },
        );
        Ok(rec)
    }

    async fn refuse_unfinished(&self, service: &ServiceName) -> Result<()> {
        let records = self.store.unfinished(Some(service)).await?;
        match records.first() {
            Some(r) => Err(Error::UnfinishedDeployment {
                service: service.clone(),
                deployment: r.id.clone(),
                phase: r.phase,
            }),
            None => Ok(()),
        }
    }

    /// Finds the fleet that takes all of the service's traffic now, if any.
    async fn discover_blue(
        &self,
        id: &DeploymentId,
        service: &ServiceName,
    ) -> Result<Option<Blue>> {
        let routing = self
            .call(id, service, "read routing", || self.router.routing(service))
            .await?;
        if routing.is_empty() {
            return Ok(None);
        }
        let Some(target) = routing.sole_target() else {
            return Err(Error::TrafficSplit {
                service: service.clone(),
                routing,
            });
        };
        let targets = self
            .call(id, service, "list targets", || self.router.targets(service))
            .await?;
        let Some(target) = targets.into_iter().find(|t| &t.id == target) else {
            return Err(Error::ServingTargetNotOwned {
                service: service.clone(),
                target: target.clone(),
            });
        };
        let fleet = self
            .call(id, service, "describe fleet", || {
                self.fleet.describe(service, &target.fleet)
            })
            .await?;
        Ok(Some(Blue {
            fleet: fleet.id,
            target: target.id,
            image: fleet.image,
        }))
    }
}
