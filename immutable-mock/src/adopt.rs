//! Adoption on the mock: a service served by hand (a target without ownership tags in front of
//! a foreign fleet), and the three adoption calls that hand it to the SDK.

use std::collections::BTreeSet;

use immutable_core::{
    AdoptMode, AdoptRefusal, AdoptSpec, Adoptable, Error, FleetId, FleetInfo, ImageId, InstanceId,
    Labels, ResourceKind, Result, Routing, Scaling, ServiceName, Target, TargetId,
};
use tokio::time::Instant;

use crate::cloud::{MockCloud, MockFleet, MockTarget, Registration, State, owner, ownership_tags};
use crate::fault::Op;
use crate::fleet::info;

impl MockCloud {
    /// Makes a target by hand, without ownership tags, with the live instances of `fleet`
    /// registered (healthy once [`Timings::health_check`](crate::Timings::health_check) has
    /// passed), as a console or Terraform would leave it. Route a service to it with
    /// [`route_by_hand`](Self::route_by_hand).
    ///
    /// # Panics
    /// If `fleet` does not exist.
    pub fn add_foreign_target(&self, fleet: &FleetId) -> TargetId {
        let mut s = self.lock();
        let instances = s
            .fleets
            .get(fleet)
            .expect("a known fleet")
            .instances
            .clone();
        let now = Instant::now();
        let registered = instances
            .into_iter()
            .filter(|i| s.instance_state(i, now).is_live())
            .map(|i| {
                let reg = Registration {
                    at: now,
                    draining: false,
                };
                (i, reg)
            })
            .collect();
        let id = TargetId::new(format!("tg-{:06}", s.next()));
        s.insert_target(
            id.clone(),
            MockTarget {
                fleet: fleet.clone(),
                tags: Labels::new(),
                registered,
                deleted: false,
            },
        );
        id
    }

    /// Sets a service's routing directly, as an operator at a console would, with no
    /// ownership check: the way to serve a service from a target made by hand.
    ///
    /// # Panics
    /// If `service` is not a valid [`ServiceName`].
    pub fn route_by_hand(&self, service: &str, routing: Routing) {
        let service = ServiceName::new(service).expect("a valid service name");
        let mut s = self.lock();
        let route = s.routes.entry(service).or_default();
        route.current = routing;
        route.pending = None;
    }

    pub(crate) async fn do_adoptable(
        &self,
        service: &ServiceName,
        target: &TargetId,
    ) -> Result<Adoptable> {
        let s = self.enter_on(Op::Adoptable, Some(service), Some(target.as_str()))?;
        let t = s
            .targets
            .get(target)
            .filter(|t| !t.deleted)
            .ok_or_else(|| Error::not_found(ResourceKind::Target, target.as_str()))?;
        Ok(Adoptable::new(
            target.clone(),
            owner(&t.tags),
            t.registered.keys().cloned(),
        ))
    }

    pub(crate) async fn do_adopt_target(
        &self,
        service: &ServiceName,
        target: &TargetId,
        fleet: &FleetInfo,
    ) -> Result<Target> {
        let mut s = self.enter_on(Op::AdoptTarget, Some(service), Some(target.as_str()))?;
        s.owned_fleet(service, &fleet.id)?;
        let t = s
            .targets
            .get(target)
            .filter(|t| !t.deleted)
            .ok_or_else(|| Error::not_found(ResourceKind::Target, target.as_str()))?;
        match owner(&t.tags) {
            None => {
                let tags = ownership_tags(service, &fleet.id, &fleet.deployment);
                s.retag_target(target, tags, fleet.id.clone());
            }
            Some(o) if &o == service && t.fleet == fleet.id => {}
            Some(_) => {
                return Err(Error::NotOwned {
                    kind: ResourceKind::Target,
                    id: target.to_string(),
                    service: service.to_string(),
                });
            }
        }
        Ok(Target::new(
            target.clone(),
            fleet.id.clone(),
            service.clone(),
        ))
    }

    pub(crate) async fn do_adopt_fleet(
        &self,
        spec: &AdoptSpec,
        mode: AdoptMode,
    ) -> Result<FleetInfo> {
        let op = match mode {
            AdoptMode::Apply => Op::AdoptFleet,
            _ => Op::PreviewAdoption,
        };
        let mut s = self.enter_on(op, Some(&spec.service), Some(spec.key.as_str()))?;
        let service = &spec.service;
        let id = FleetId::new(format!("fleet-{}", spec.key));
        if let Some(existing) = s.fleets.get(&id)
            && owner(&existing.tags).as_ref() == Some(service)
        {
            return Ok(info(&s, existing, service));
        }
        let fleet = adoptable_fleet(&s, spec, id)?;
        let out = info(&s, &fleet, service);
        if mode == AdoptMode::Apply {
            s.insert_fleet(fleet);
        }
        Ok(out)
    }
}

/// The fleet the live instances of `spec` form, or why they form none.
fn adoptable_fleet(s: &State, spec: &AdoptSpec, id: FleetId) -> Result<MockFleet> {
    let service = &spec.service;
    let now = Instant::now();
    for i in &spec.instances {
        if !s.instances.contains_key(i) {
            return Err(Error::not_found(ResourceKind::Instance, i.as_str()));
        }
        let holder = s.holder(i);
        if let Some(o) = holder.and_then(|f| owner(&f.tags))
            && &o != service
        {
            return Err(Error::NotOwned {
                kind: ResourceKind::Instance,
                id: i.to_string(),
                service: service.to_string(),
            });
        }
    }
    let live: Vec<InstanceId> = spec
        .instances
        .iter()
        .filter(|i| s.instance_state(i, now).is_live())
        .cloned()
        .collect();
    let refused = |refusal| Error::AdoptionRefused {
        service: service.clone(),
        refusal,
    };
    let images: BTreeSet<&ImageId> = live.iter().map(|i| &s.instances[i].image).collect();
    let image = match images.len() {
        0 => {
            let registered = spec.instances.len();
            return Err(refused(AdoptRefusal::NoLiveInstances { registered }));
        }
        1 => images.into_iter().next().expect("one image").clone(),
        _ => {
            let images = images.into_iter().cloned().collect();
            return Err(refused(AdoptRefusal::MixedImages { images }));
        }
    };
    Ok(MockFleet {
        tags: ownership_tags(service, &id, &spec.deployment),
        id,
        key: spec.key.clone(),
        image,
        capacity: live.len() as u32,
        instances: live,
        scaling: Scaling::Active,
    })
}
