//! The mock's [`Fleet`](immutable_core::Fleet): fleets of instances that start, fail and stop
//! on virtual time.

use immutable_core::{
    Error, FleetId, FleetInfo, FleetSpec, Instance, InstanceState, ResourceKind, Result, Scaling,
    ServiceName,
};
use tokio::time::Instant;

use crate::cloud::{MockCloud, MockFleet, State, ownership_tags};
use crate::fault::Op;

pub(crate) fn info(s: &State, fleet: &MockFleet, service: &ServiceName) -> FleetInfo {
    let now = Instant::now();
    let deployment = fleet
        .tags
        .get(immutable_core::tags::DEPLOYMENT)
        .cloned()
        .unwrap_or_default();
    let spec = FleetSpec::new(
        service.clone(),
        deployment.into(),
        fleet.image.clone(),
        fleet.capacity,
    );
    FleetInfo::new(fleet.id.clone(), spec.with_key(fleet.key.clone())).with_instances(
        fleet.instances.iter().map(|i| Instance {
            id: i.clone(),
            state: s.instance_state(i, now),
        }),
    )
}

impl MockCloud {
    pub(crate) async fn do_launch(&self, spec: &FleetSpec) -> Result<FleetInfo> {
        let mut s = self.enter_on(Op::Launch, Some(&spec.service), Some(spec.key.as_str()))?;
        if spec.capacity == 0 {
            return Err(Error::invalid("capacity", "must be at least 1"));
        }
        if let Some(existing) = s.fleets_of(&spec.service).find(|f| f.key == spec.key) {
            return Ok(info(&s, existing, &spec.service));
        }
        if s.images.get(&spec.image).is_none_or(|i| i.retired) {
            return Err(Error::not_found(ResourceKind::Image, spec.image.as_str()));
        }
        if let Some(max) = s.max_instances {
            let live = s.live_instances();
            if live + spec.capacity as usize > max {
                return Err(Error::provider(format!(
                    "insufficient capacity: {live} of {max} instances in use, {} asked for",
                    spec.capacity
                )));
            }
        }
        let n = s.next();
        let id = FleetId::new(format!("fleet-{n:06}"));
        let now = Instant::now();
        let instances = (0..spec.capacity)
            .map(|_| s.new_instance(&spec.image, now))
            .collect();
        let fleet = MockFleet {
            id: id.clone(),
            tags: ownership_tags(&spec.service, &id, &spec.deployment),
            key: spec.key.clone(),
            image: spec.image.clone(),
            capacity: spec.capacity,
            instances,
            scaling: Scaling::Held,
        };
        let out = info(&s, &fleet, &spec.service);
        s.insert_fleet(fleet);
        Ok(out)
    }

    pub(crate) async fn do_describe(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
    ) -> Result<FleetInfo> {
        let s = self.enter_on(Op::Describe, Some(service), Some(fleet.as_str()))?;
        let f = s.owned_fleet(service, fleet)?;
        Ok(info(&s, f, service))
    }

    pub(crate) async fn do_list_fleets(&self, service: &ServiceName) -> Result<Vec<FleetInfo>> {
        let s = self.enter(Op::ListFleets, Some(service))?;
        Ok(s.fleets_of(service)
            .map(|f| info(&s, f, service))
            .filter(FleetInfo::is_live)
            .collect())
    }

    pub(crate) async fn do_terminate(&self, service: &ServiceName, fleet: &FleetId) -> Result<()> {
        let mut s = self.enter_on(Op::Terminate, Some(service), Some(fleet.as_str()))?;
        let instances = s.owned_fleet(service, fleet)?.instances.clone();
        for i in instances {
            s.end_instance(&i, InstanceState::Terminated);
        }
        Ok(())
    }

    pub(crate) async fn do_set_scaling(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
        scaling: Scaling,
    ) -> Result<()> {
        let mut s = self.enter_on(Op::SetScaling, Some(service), Some(fleet.as_str()))?;
        s.owned_fleet_mut(service, fleet)?.scaling = scaling;
        Ok(())
    }

    /// Whether a fleet's own scaling is held or active (fleets launched through the trait
    /// start held, as an Auto Scaling group does); `None` for an unknown fleet.
    pub fn scaling(&self, fleet: &FleetId) -> Option<Scaling> {
        self.lock().fleets.get(fleet).map(|f| f.scaling)
    }
}
