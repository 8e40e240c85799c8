//! The mock's state behind its lock: images, fleets, instances, targets, routes, the call
//! log and scripted faults, with the rules every operation shares (ownership, health).

use std::collections::BTreeMap;

use immutable_core::{
    DeploymentId, Error, FleetId, FleetKey, HealthState, Image, ImageId, InstanceId, InstanceState,
    Labels, ResourceKind, Result, Routing, Scaling, ServiceName, TargetId, tags,
};
use tokio::time::Instant;

use crate::cloud::{Call, Timings};
use crate::fault::Script;
use crate::index::Index;

#[derive(Debug)]
pub(crate) struct MockImage {
    pub(crate) image: Image,
    pub(crate) unhealthy: bool,
    pub(crate) retired: bool,
}

#[derive(Debug)]
pub(crate) struct MockFleet {
    pub(crate) id: FleetId,
    pub(crate) tags: Labels,
    pub(crate) key: FleetKey,
    pub(crate) image: ImageId,
    pub(crate) capacity: u32,
    pub(crate) instances: Vec<InstanceId>,
    /// Launched held, as a fleet that scales by itself is; the engine makes it active.
    pub(crate) scaling: Scaling,
}

#[derive(Debug)]
pub(crate) struct MockInstance {
    pub(crate) image: ImageId,
    pub(crate) launched_at: Instant,
    /// Stopped or terminated by a call or by a scripted kill.
    pub(crate) ended: Option<InstanceState>,
}

#[derive(Debug)]
pub(crate) struct MockTarget {
    pub(crate) fleet: FleetId,
    pub(crate) tags: Labels,
    pub(crate) registered: BTreeMap<InstanceId, Registration>,
    pub(crate) deleted: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Registration {
    pub(crate) at: Instant,
    pub(crate) draining: bool,
}

#[derive(Debug, Default)]
pub(crate) struct RouteState {
    pub(crate) current: Routing,
    pub(crate) pending: Option<(Instant, Routing)>,
}

/// Everything the mock holds. Resources are added, moved and ended through the methods in
/// [`index`](crate::index), which keep [`State::index`] true; calls find a service's resources
/// through it rather than by walking every service's.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) epoch: Instant,
    pub(crate) timings: Timings,
    pub(crate) next_id: u64,
    pub(crate) images: BTreeMap<ImageId, MockImage>,
    pub(crate) fleets: BTreeMap<FleetId, MockFleet>,
    pub(crate) instances: BTreeMap<InstanceId, MockInstance>,
    pub(crate) targets: BTreeMap<TargetId, MockTarget>,
    pub(crate) routes: BTreeMap<ServiceName, RouteState>,
    pub(crate) previews: BTreeMap<ServiceName, TargetId>,
    pub(crate) index: Index,
    pub(crate) scripts: Vec<Script>,
    pub(crate) calls: Vec<Call>,
    pub(crate) max_instances: Option<usize>,
    /// Whether services have a preview entry point.
    pub(crate) has_preview: bool,
    /// Length of the call log at which the call in flight never returns.
    pub(crate) crash_after: Option<usize>,
}

pub(crate) fn owner(tags: &Labels) -> Option<ServiceName> {
    tags.get(tags::SERVICE)
        .and_then(|s| ServiceName::new(s.clone()).ok())
}

pub(crate) fn ownership_tags(
    service: &ServiceName,
    fleet: &FleetId,
    deployment: &DeploymentId,
) -> Labels {
    tags::ownership(service, fleet, deployment)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

impl State {
    pub(crate) fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn instance_state(&self, id: &InstanceId, now: Instant) -> InstanceState {
        match self.instances.get(id) {
            None => InstanceState::Terminated,
            Some(i) => match i.ended {
                Some(state) => state,
                None if now >= i.launched_at + self.timings.boot => InstanceState::Running,
                None => InstanceState::Pending,
            },
        }
    }

    pub(crate) fn health_of(
        &self,
        target: &MockTarget,
        id: &InstanceId,
        now: Instant,
    ) -> HealthState {
        let Some(reg) = target.registered.get(id) else {
            return HealthState::Unavailable;
        };
        if reg.draining {
            return HealthState::Draining;
        }
        let Some(instance) = self.instances.get(id) else {
            return HealthState::Unavailable;
        };
        match self.instance_state(id, now) {
            InstanceState::Pending => return HealthState::Initial,
            InstanceState::Running => {}
            _ => return HealthState::Unavailable,
        }
        let checks_from = reg.at.max(instance.launched_at + self.timings.boot);
        if now < checks_from + self.timings.health_check {
            return HealthState::Initial;
        }
        if self
            .images
            .get(&instance.image)
            .is_some_and(|i| i.unhealthy)
        {
            HealthState::Unhealthy
        } else {
            HealthState::Healthy
        }
    }

    /// Applies every service's routing changes whose propagation delay has passed.
    pub(crate) fn settle_routes(&mut self) {
        let now = Instant::now();
        for r in self.routes.values_mut() {
            if let Some((when, _)) = &r.pending
                && *when <= now
            {
                r.current = r.pending.take().expect("checked").1;
            }
        }
    }

    pub(crate) fn owned_fleet(&self, service: &ServiceName, id: &FleetId) -> Result<&MockFleet> {
        let fleet = self
            .fleets
            .get(id)
            .ok_or_else(|| Error::not_found(ResourceKind::Fleet, id.as_str()))?;
        check_owner(&fleet.tags, service, ResourceKind::Fleet, id.as_str())?;
        Ok(fleet)
    }

    pub(crate) fn owned_fleet_mut(
        &mut self,
        service: &ServiceName,
        id: &FleetId,
    ) -> Result<&mut MockFleet> {
        self.owned_fleet(service, id)?;
        Ok(self.fleets.get_mut(id).expect("just found"))
    }

    pub(crate) fn owned_target(&self, service: &ServiceName, id: &TargetId) -> Result<&MockTarget> {
        let target = self
            .targets
            .get(id)
            .filter(|t| !t.deleted)
            .ok_or_else(|| Error::not_found(ResourceKind::Target, id.as_str()))?;
        check_owner(&target.tags, service, ResourceKind::Target, id.as_str())?;
        Ok(target)
    }
}

pub(crate) fn check_owner(
    tags: &Labels,
    service: &ServiceName,
    kind: ResourceKind,
    id: &str,
) -> Result<()> {
    if owner(tags).as_ref() == Some(service) {
        Ok(())
    } else {
        Err(Error::NotOwned {
            kind,
            id: id.to_owned(),
            service: service.to_string(),
        })
    }
}
