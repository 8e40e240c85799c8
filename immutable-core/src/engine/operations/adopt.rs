//! [`Engine::adopt`]: hands a fleet that already serves a service, made by hand or by another
//! tool, to the SDK, so that the next deployment replaces it like any old fleet.
//!
//! # Expected flow
//! 1. With [`AdoptMode::Apply`], take the service's lease (I5); a dry run only checks it.
//! 2. Refuse while a deployment of the service is unfinished.
//! 3. Read the routing: it must send all traffic to one target, which must not carry
//!    ownership tags yet ([`TargetAdoption::adoptable`](crate::TargetAdoption::adoptable)).
//! 4. Ask the fleet backend what fleet the target's instances form
//!    ([`FleetAdoption::adopt`](crate::FleetAdoption::adopt)), and resolve the image they run.
//! 5. Apply only: tag the fleet, then the target
//!    ([`TargetAdoption::adopt_target`](crate::TargetAdoption::adopt_target)), then save a
//!    record of [`Origin::Adopted`] in [`Phase::Done`], so `history` shows the adoption and a
//!    later deployment finds the adopted fleet as the one it replaces.
//!
//! # Guarantees
//! A dry run makes read calls only, to the cloud and to the store. Nothing is tagged without
//! [`AdoptMode::Apply`]. Routing never changes. A refusal changes nothing.
//!
//! # Caveats
//! Cut off after the fleet was tagged and before the target was, an adoption is completed by
//! running it again: the fleet backend tags the service's own instances anew. Until then
//! [`Engine::gc`] keeps every fleet of a service whose traffic goes to a target it does not
//! own, so the serving instances are never taken for orphans. Cut off after the target was
//! tagged, the adoption is done but has no record.

use std::time::SystemTime;

use serde::Serialize;

use crate::engine::Engine;
use crate::engine::record::{Green, Origin};
use crate::{
    AdoptMode, AdoptRefusal, AdoptSpec, DeploymentId, DeploymentRecord, DeploymentRequest, Error,
    FleetAdoption, FleetInfo, Image, ImageRef, Labels, Phase, Result, ServiceName, TargetAdoption,
    TargetId,
};

/// What [`Engine::adopt`] found and, with [`AdoptMode::Apply`], tagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Adoption {
    /// The service.
    pub service: ServiceName,
    /// Whether it tagged anything.
    pub mode: AdoptMode,
    /// The adoption's id: written as the deployment tag and, once applied, the id of its
    /// record. A dry run's id is used for nothing; an apply takes a new one.
    pub id: DeploymentId,
    /// The target the entry point sends all traffic to.
    pub target: TargetId,
    /// The fleet its instances form, as the fleet backend tags (or would tag) it.
    pub fleet: FleetInfo,
    /// The image they run, as the image store knows it; `None` when it does not (a
    /// deregistered image): a rollback could then not redeploy it.
    pub image: Option<Image>,
}

impl Adoption {
    /// Whether the target and the fleet were tagged.
    pub fn applied(&self) -> bool {
        self.mode == AdoptMode::Apply
    }
}

impl Engine {
    /// Adopts the fleet that serves `service` without the SDK's ownership tags: with
    /// [`AdoptMode::DryRun`] reports what it would tag (the serving target, its instances and
    /// the fleet they form), making read calls only; with [`AdoptMode::Apply`] tags them as the
    /// service's current fleet and records the adoption. The next [`deploy`](Engine::deploy)
    /// then replaces that fleet like any other, and retires it.
    ///
    /// See the module documentation for the steps and their guarantees.
    ///
    /// # Errors
    /// - [`Error::InvalidInput`] naming `service` for a bad name.
    /// - [`Error::Locked`] while another run holds the service's lease.
    /// - [`Error::AdoptionRefused`] with an [`AdoptRefusal`]: a deployment is unfinished,
    ///   traffic is split or goes nowhere, the serving target is owned already (by this
    ///   service or another), or its instances are not one live fleet of one image.
    /// - [`Error::NotSupported`] when no adoption is registered on the builder.
    /// - Backend and store errors; nothing was tagged unless the error came after the fleet
    ///   was (run the adoption again to complete it).
    pub async fn adopt(&self, service: impl Into<String>, mode: AdoptMode) -> Result<Adoption> {
        let service = ServiceName::new(service)?;
        self.adoption()?;
        let id = DeploymentId::generate();
        let inner = &*self.inner;
        let lease = match mode {
            AdoptMode::Apply => Some(inner.acquire_lease(&service, &id).await?),
            _ => {
                self.refuse_locked(&service).await?;
                None
            }
        };
        let result = self.adopt_serving(&service, &id, mode).await;
        if let Some(lease) = lease {
            let _ = inner.store.release_lease(&lease).await;
        }
        result
    }

    /// The adoption capability, or [`Error::NotSupported`] when none is registered.
    fn adoption(&self) -> Result<(&dyn FleetAdoption, &dyn TargetAdoption)> {
        match &self.inner.adoption {
            Some((fleets, targets)) => Ok((&**fleets, &**targets)),
            None => Err(Error::not_supported(
                "adopt",
                "no adoption is registered on this engine (EngineBuilder::adoption)",
            )),
        }
    }

    /// [`Error::Locked`] while an unexpired lease is held, read without taking it.
    async fn refuse_locked(&self, service: &ServiceName) -> Result<()> {
        match self.inner.store.lease(service).await? {
            Some(lease) if lease.expires_at > self.inner.clock.now() => Err(Error::Locked {
                service: service.clone(),
                holder: lease.holder,
                deployment: lease.deployment,
            }),
            _ => Ok(()),
        }
    }

    /// The adoption proper, with the lease held (or checked, for a dry run).
    async fn adopt_serving(
        &self,
        service: &ServiceName,
        id: &DeploymentId,
        mode: AdoptMode,
    ) -> Result<Adoption> {
        let inner = &*self.inner;
        let (fleets, targets) = self.adoption()?;
        let refused = |refusal| Error::AdoptionRefused {
            service: service.clone(),
            refusal,
        };
        if let Some(r) = inner.store.unfinished(Some(service)).await?.first() {
            return Err(refused(AdoptRefusal::Unfinished {
                deployment: r.id.clone(),
                phase: r.phase,
            }));
        }
        let target = self.unowned_serving_target(service, id).await?;
        let adoptable = inner
            .call(id, service, "read serving target", || {
                targets.adoptable(service, &target)
            })
            .await?;
        match adoptable.owner {
            Some(owner) if &owner == service => {
                return Err(refused(AdoptRefusal::AlreadyManaged { target }));
            }
            Some(owner) => return Err(refused(AdoptRefusal::OwnedByAnother { target, owner })),
            None => {}
        }
        let spec = AdoptSpec::new(service.clone(), id.clone(), adoptable.instances);
        let preview = inner
            .call(id, service, "describe adoptable fleet", || {
                fleets.adopt(&spec, AdoptMode::DryRun)
            })
            .await?;
        let image = self.adopted_image(id, service, &preview).await?;
        let mut adoption = Adoption {
            service: service.clone(),
            mode,
            id: id.clone(),
            target,
            fleet: preview,
            image,
        };
        if mode == AdoptMode::Apply {
            self.apply_adoption(&spec, &mut adoption).await?;
        }
        Ok(adoption)
    }

    /// The one target all traffic goes to, refusing when there is none, when traffic is
    /// split, or when the service owns it already.
    async fn unowned_serving_target(
        &self,
        service: &ServiceName,
        id: &DeploymentId,
    ) -> Result<TargetId> {
        let inner = &*self.inner;
        let refused = |refusal| Error::AdoptionRefused {
            service: service.clone(),
            refusal,
        };
        let routing = inner
            .call(id, service, "read routing", || {
                inner.router.routing(service)
            })
            .await?;
        if routing.is_empty() {
            return Err(refused(AdoptRefusal::NothingServed));
        }
        let Some(target) = routing.sole_target().cloned() else {
            return Err(refused(AdoptRefusal::TrafficSplit { routing }));
        };
        let owned = inner
            .call(id, service, "list targets", || {
                inner.router.targets(service)
            })
            .await?;
        if owned.iter().any(|t| t.id == target) {
            return Err(refused(AdoptRefusal::AlreadyManaged { target }));
        }
        Ok(target)
    }

    /// The image the fleet runs, `None` when the image store does not know it.
    async fn adopted_image(
        &self,
        id: &DeploymentId,
        service: &ServiceName,
        fleet: &FleetInfo,
    ) -> Result<Option<Image>> {
        let inner = &*self.inner;
        let reference = ImageRef::Id(fleet.image.clone());
        match inner
            .call(id, service, "resolve image", || {
                inner.images.resolve(service, &reference)
            })
            .await
        {
            Ok(image) => Ok(Some(image)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Tags the fleet, then the target, then saves the adoption's record.
    async fn apply_adoption(&self, spec: &AdoptSpec, adoption: &mut Adoption) -> Result<()> {
        let inner = &*self.inner;
        let (fleets, targets) = self.adoption()?;
        let (id, service) = (&adoption.id, &adoption.service);
        // Built first: a fleet the record model cannot hold is refused before any tag.
        let mut record = self.adoption_record(adoption)?;
        let fleet = inner
            .call(id, service, "adopt fleet", || {
                fleets.adopt(spec, AdoptMode::Apply)
            })
            .await?;
        let target = inner
            .call(id, service, "adopt target", || {
                targets.adopt_target(service, &adoption.target, &fleet)
            })
            .await?;
        record.green = Green {
            fleet: Some(fleet.id.clone()),
            target: Some(target.id),
        };
        adoption.fleet = fleet;
        inner.store.save(&mut record).await?;
        tracing::info!(
            service = %service,
            adoption = %id,
            target = %adoption.target,
            fleet = %adoption.fleet.id,
            "adopted the serving fleet"
        );
        Ok(())
    }

    /// The adoption's record, finished: the fleet's size with default settings.
    fn adoption_record(&self, adoption: &Adoption) -> Result<DeploymentRecord> {
        let fleet = &adoption.fleet;
        let spec =
            DeploymentRequest::new(adoption.service.as_str(), ImageRef::Id(fleet.image.clone()))
                .capacity(fleet.capacity)
                .validate()?;
        let image = adoption.image.clone().unwrap_or_else(|| Image {
            id: fleet.image.clone(),
            name: fleet.image.to_string(),
            service: None,
            labels: Labels::new(),
            created_at: SystemTime::UNIX_EPOCH,
        });
        let now = self.inner.clock.now();
        let mut record = DeploymentRecord::new(adoption.id.clone(), spec, image, None, now);
        record.origin = Origin::Adopted;
        record.weight = 100;
        let note = format!(
            "adopted target {} and fleet {} ({} instance(s) of image {})",
            adoption.target,
            fleet.id,
            fleet.instances.len(),
            fleet.image
        );
        record.enter(Phase::Done, now, Some(note));
        Ok(record)
    }
}
