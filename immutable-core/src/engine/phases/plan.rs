//! The Plan phase: validate the request, take the service's lease, then at once resolve the
//! image, refuse while another deployment is unfinished and find the fleet that serves now
//! (blue), and create the record. It makes no change to the cloud; the record is saved at its
//! end.

use std::time::SystemTime;

use crate::engine::Inner;
use crate::engine::record::{Blue, Origin};
use crate::notify::Trigger;
use crate::{
    DeploymentId, DeploymentRecord, DeploymentSpec, Error, EventKind, Image, Lease, Phase, Result,
    ServiceName,
};

impl Inner {
    /// Plans deployment `id`: resolves its image, takes the service's lease, refuses while
    /// another deployment is unfinished, finds blue and saves the record, entering
    /// [`Phase::Provision`]. Returns the record and the lease held; on an error nothing was
    /// created and the lease is released.
    pub(in crate::engine) async fn plan(
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
        let lease = self.acquire_lease(&spec.service, id).await?;
        match self.create_record(id, spec, now, origin).await {
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

    /// With the lease held: resolves the image, refuses while another deployment is
    /// unfinished, finds blue (the three at once: the reads of blue need the lease, so that
    /// no other deployment moves traffic meanwhile), and saves the new record entering
    /// [`Phase::Provision`]. A bad image is reported before anything else.
    async fn create_record(
        &self,
        id: &DeploymentId,
        spec: DeploymentSpec,
        started: SystemTime,
        origin: Origin,
    ) -> Result<DeploymentRecord> {
        let (image, unfinished, blue) = futures::join!(
            self.resolve_image(id, &spec),
            self.refuse_unfinished(&spec.service),
            self.discover_blue(id, &spec.service)
        );
        let image = image?;
        unfinished?;
        let blue = blue?;
        let mut rec = DeploymentRecord::new(id.clone(), spec, image, blue, started);
        rec.origin = origin;
        rec.enter(Phase::Provision, self.clock.now(), None);
        self.queue_notification(&mut rec, Trigger::Started, None, |n| n);
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
        let (routing, targets) = futures::join!(
            self.call(id, service, "read routing", || self.router.routing(service)),
            self.call(id, service, "list targets", || self.router.targets(service))
        );
        let routing = routing?;
        if routing.is_empty() {
            return Ok(None);
        }
        let Some(target) = routing.sole_target() else {
            return Err(Error::TrafficSplit {
                service: service.clone(),
                routing,
            });
        };
        let Some(target) = targets?.into_iter().find(|t| &t.id == target) else {
            return Err(Error::ServingTargetNotOwned {
                service: service.clone(),
                target: target.clone(),
            });
        };
        if let Some(image) = self.recorded_image(service, &target).await? {
            return Ok(Some(Blue {
                fleet: target.fleet,
                target: target.id,
                image,
            }));
        }
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

    /// The image of the fleet behind `target` as the service's newest record names it: the
    /// new fleet of a deployment that ended done, or the old one of a deployment that rolled
    /// back. `None` when the record does not name this fleet and target (the fleet was
    /// adopted, or the store is new), and the fleet is described instead.
    async fn recorded_image(
        &self,
        service: &ServiceName,
        target: &crate::Target,
    ) -> Result<Option<crate::ImageId>> {
        let Some(rec) = self.store.latest(service).await? else {
            return Ok(None);
        };
        let green = &rec.green;
        let image = match rec.phase {
            Phase::Done
                if green.fleet.as_ref() == Some(&target.fleet)
                    && green.target.as_ref() == Some(&target.id) =>
            {
                Some(rec.image.id)
            }
            Phase::RolledBack => rec
                .blue
                .filter(|b| b.fleet == target.fleet && b.target == target.id)
                .map(|b| b.image),
            _ => None,
        };
        Ok(image)
    }
}
