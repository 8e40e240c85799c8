//! The mock's [`TrafficRouter`](immutable_core::TrafficRouter): targets, weights, preview and
//! health, with the scripted faults applied.

use immutable_core::{
    Error, FleetInfo, HealthReport, InstanceHealth, ResourceKind, Result, Routing, ServiceName,
    Target, TargetId,
};
use tokio::time::Instant;

use crate::cloud::{MockCloud, MockTarget, Registration, RouteState, check_owner};
use crate::fault::Op;

fn target_of(id: &TargetId, t: &MockTarget, service: &ServiceName) -> Target {
    Target::new(id.clone(), t.fleet.clone(), service.clone())
}

impl MockCloud {
    pub(crate) async fn do_attach(&self, fleet: &FleetInfo) -> Result<Target> {
        let mut s = self.enter_on(Op::Attach, Some(&fleet.service), Some(fleet.id.as_str()))?;
        let service = &fleet.service;
        let owned = s.owned_fleet(service, &fleet.id)?;
        let instances = owned.instances.clone();
        let fleet_tags = owned.tags.clone();
        if let Some((id, t)) = s.targets_fronting(&fleet.id).next() {
            check_owner(&t.tags, service, ResourceKind::Target, id.as_str())?;
            return Ok(target_of(id, t, service));
        }
        let id = TargetId::new(format!("tg-{:06}", s.next()));
        let now = Instant::now();
        let registered = instances
            .into_iter()
            .filter(|i| s.instance_state(i, now).is_live())
            .map(|i| {
                (
                    i,
                    Registration {
                        at: now,
                        draining: false,
                    },
                )
            })
            .collect();
        let target = MockTarget {
            fleet: fleet.id.clone(),
            tags: fleet_tags,
            registered,
            deleted: false,
        };
        let out = target_of(&id, &target, service);
        s.insert_target(id, target);
        Ok(out)
    }

    pub(crate) async fn do_targets(&self, service: &ServiceName) -> Result<Vec<Target>> {
        let s = self.enter(Op::Targets, Some(service))?;
        Ok(s.targets_of(service)
            .map(|(id, t)| target_of(id, t, service))
            .collect())
    }

    pub(crate) async fn do_health(
        &self,
        service: &ServiceName,
        target: &TargetId,
    ) -> Result<HealthReport> {
        let s = self.enter_on(Op::Health, Some(service), Some(target.as_str()))?;
        let t = s.owned_target(service, target)?;
        let now = Instant::now();
        Ok(HealthReport {
            target: target.clone(),
            instances: t
                .registered
                .keys()
                .map(|i| InstanceHealth {
                    instance: i.clone(),
                    state: s.health_of(t, i, now),
                    reason: None,
                })
                .collect(),
        })
    }

    pub(crate) async fn do_routing(&self, service: &ServiceName) -> Result<Routing> {
        let mut s = self.enter(Op::Routing, Some(service))?;
        s.settle_route(service);
        Ok(s.routes
            .get(service)
            .map(|r| r.current.clone())
            .unwrap_or_default())
    }

    pub(crate) async fn do_set_weights(
        &self,
        service: &ServiceName,
        routing: &Routing,
    ) -> Result<()> {
        let mut s = self.enter(Op::SetWeights, Some(service))?;
        for target in routing.weights().keys() {
            s.owned_target(service, target)?;
        }
        s.settle_route(service);
        let delay = s.timings.routing_delay;
        let route = s
            .routes
            .entry(service.clone())
            .or_insert_with(RouteState::default);
        if delay.is_zero() {
            route.current = routing.clone();
            route.pending = None;
        } else {
            route.pending = Some((Instant::now() + delay, routing.clone()));
        }
        Ok(())
    }

    pub(crate) async fn do_preview(
        &self,
        service: &ServiceName,
        target: Option<&TargetId>,
    ) -> Result<()> {
        let mut s = self.enter(Op::Preview, Some(service))?;
        if !s.has_preview {
            return Err(Error::not_supported(
                "preview",
                format!("the mock has no preview entry point for service `{service}`"),
            ));
        }
        match target {
            Some(t) => {
                s.owned_target(service, t)?;
                s.previews.insert(service.clone(), t.clone());
            }
            None => {
                s.previews.remove(service);
            }
        }
        Ok(())
    }

    pub(crate) async fn do_detach(&self, service: &ServiceName, target: &TargetId) -> Result<()> {
        let drain = {
            let mut s = self.enter_on(Op::Detach, Some(service), Some(target.as_str()))?;
            s.owned_target(service, target)?;
            s.settle_route(service);
            if let Some(route) = s.routes.get(service) {
                let pending = route.pending.as_ref().map_or(0, |(_, r)| r.weight(target));
                if route.current.weight(target) > 0 || pending > 0 {
                    return Err(Error::TargetServing {
                        service: service.clone(),
                        target: target.clone(),
                    });
                }
            }
            if s.previews.get(service) == Some(target) {
                s.previews.remove(service);
            }
            let t = s.targets.get_mut(target).expect("checked above");
            for r in t.registered.values_mut() {
                r.draining = true;
            }
            s.timings.drain
        };
        tokio::time::sleep(drain).await;
        self.lock().delete_target(target);
        Ok(())
    }
}
