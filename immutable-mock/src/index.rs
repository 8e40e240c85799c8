//! The mock's state indexed by service, so that a call reads only its own service's resources
//! and its cost does not grow with unrelated services; and the only ways to add, move or end a
//! resource, which keep the index true.
//!
//! The index is derived data: `Index::rebuilt` computes it from the resources alone (their
//! ownership tags, fleets and images), and the tests check that the kept index equals it.

use std::collections::{BTreeMap, BTreeSet};

use immutable_core::{FleetId, ImageId, InstanceId, InstanceState, Labels, ServiceName, TargetId};
use tokio::time::Instant;

use crate::state::{MockFleet, MockImage, MockInstance, MockTarget, State, owner};

/// One owner's resources.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Owned {
    /// Retired ones too.
    pub(crate) images: BTreeSet<ImageId>,
    /// Terminated ones too.
    pub(crate) fleets: BTreeSet<FleetId>,
    /// Not deleted.
    pub(crate) targets: BTreeSet<TargetId>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Index {
    pub(crate) services: BTreeMap<ServiceName, Owned>,
    /// Resources of no service (foreign ones).
    unowned: Owned,
    /// The targets (not deleted) in front of each fleet.
    fleet_targets: BTreeMap<FleetId, BTreeSet<TargetId>>,
    /// Every instance launched from each image.
    image_instances: BTreeMap<ImageId, BTreeSet<InstanceId>>,
    /// The fleet each instance belongs to.
    holders: BTreeMap<InstanceId, FleetId>,
    /// Instances neither stopped nor terminated.
    live_instances: usize,
}

impl Index {
    fn owned(&mut self, owner: Option<ServiceName>) -> &mut Owned {
        match owner {
            Some(service) => self.services.entry(service).or_default(),
            None => &mut self.unowned,
        }
    }

    fn of(&self, owner: Option<&ServiceName>) -> Option<&Owned> {
        match owner {
            Some(service) => self.services.get(service),
            None => Some(&self.unowned),
        }
    }

    fn add_target(&mut self, id: &TargetId, target: &MockTarget) {
        self.owned(owner(&target.tags)).targets.insert(id.clone());
        let fronting = self.fleet_targets.entry(target.fleet.clone()).or_default();
        fronting.insert(id.clone());
    }

    fn remove_target(&mut self, id: &TargetId, target: &MockTarget) {
        self.owned(owner(&target.tags)).targets.remove(id);
        if let Some(fronting) = self.fleet_targets.get_mut(&target.fleet) {
            fronting.remove(id);
        }
    }

    /// Without empty entries, which say nothing.
    #[cfg(test)]
    pub(crate) fn normalized(mut self) -> Index {
        self.services.retain(|_, o| *o != Owned::default());
        self.fleet_targets.retain(|_, t| !t.is_empty());
        self.image_instances.retain(|_, i| !i.is_empty());
        self
    }

    /// The index of `state`'s resources, computed from them alone.
    #[cfg(test)]
    pub(crate) fn rebuilt(state: &State) -> Index {
        let mut index = Index::default();
        for (id, i) in &state.images {
            index
                .owned(i.image.service.clone())
                .images
                .insert(id.clone());
        }
        for (id, f) in &state.fleets {
            index.owned(owner(&f.tags)).fleets.insert(id.clone());
            for i in &f.instances {
                let other = index.holders.insert(i.clone(), id.clone());
                assert!(other.is_none(), "instance {i} is in two fleets");
            }
        }
        for (id, t) in state.targets.iter().filter(|(_, t)| !t.deleted) {
            index.add_target(id, t);
        }
        for (id, i) in &state.instances {
            let users = index.image_instances.entry(i.image.clone()).or_default();
            users.insert(id.clone());
            index.live_instances += usize::from(i.ended.is_none());
        }
        index.normalized()
    }
}

impl State {
    /// The images owned by `service`, or of no service for `None`, retired ones too.
    pub(crate) fn images_of(
        &self,
        service: Option<&ServiceName>,
    ) -> impl Iterator<Item = &MockImage> {
        let owned = self.index.of(service);
        owned
            .into_iter()
            .flat_map(|o| &o.images)
            .filter_map(|id| self.images.get(id))
    }

    /// The fleets owned by `service`, terminated ones too, in id order.
    pub(crate) fn fleets_of(&self, service: &ServiceName) -> impl Iterator<Item = &MockFleet> {
        let owned = self.index.of(Some(service));
        owned
            .into_iter()
            .flat_map(|o| &o.fleets)
            .filter_map(|id| self.fleets.get(id))
    }

    /// The targets owned by `service`, not deleted, in id order.
    pub(crate) fn targets_of(
        &self,
        service: &ServiceName,
    ) -> impl Iterator<Item = (&TargetId, &MockTarget)> {
        let owned = self.index.of(Some(service));
        owned
            .into_iter()
            .flat_map(|o| &o.targets)
            .filter_map(|id| self.targets.get_key_value(id))
    }

    /// The targets in front of `fleet`, whoever owns them, not deleted, in id order.
    pub(crate) fn targets_fronting(
        &self,
        fleet: &FleetId,
    ) -> impl Iterator<Item = (&TargetId, &MockTarget)> {
        self.index
            .fleet_targets
            .get(fleet)
            .into_iter()
            .flatten()
            .filter_map(|id| self.targets.get_key_value(id))
    }

    /// Every instance launched from `image`.
    pub(crate) fn instances_of(&self, image: &ImageId) -> impl Iterator<Item = &InstanceId> {
        self.index.image_instances.get(image).into_iter().flatten()
    }

    /// The fleet `instance` belongs to.
    pub(crate) fn holder(&self, instance: &InstanceId) -> Option<&MockFleet> {
        let id = self.index.holders.get(instance)?;
        self.fleets.get(id)
    }

    /// Instances neither stopped nor terminated, in the whole cloud.
    pub(crate) fn live_instances(&self) -> usize {
        self.index.live_instances
    }

    pub(crate) fn insert_image(&mut self, image: MockImage) {
        let id = image.image.id.clone();
        let owner = image.image.service.clone();
        self.index.owned(owner).images.insert(id.clone());
        self.images.insert(id, image);
    }

    /// A running or pending instance of `image`, to be put in a fleet by
    /// [`insert_fleet`](Self::insert_fleet).
    pub(crate) fn new_instance(&mut self, image: &ImageId, launched_at: Instant) -> InstanceId {
        let id = InstanceId::new(format!("i-{:06}", self.next()));
        let users = self.index.image_instances.entry(image.clone()).or_default();
        users.insert(id.clone());
        self.index.live_instances += 1;
        let instance = MockInstance {
            image: image.clone(),
            launched_at,
            ended: None,
        };
        self.instances.insert(id.clone(), instance);
        id
    }

    /// Stops or terminates an instance; nothing for an unknown one.
    pub(crate) fn end_instance(&mut self, id: &InstanceId, state: InstanceState) {
        if let Some(i) = self.instances.get_mut(id) {
            if i.ended.is_none() {
                self.index.live_instances -= 1;
            }
            i.ended = Some(state);
        }
    }

    /// Adds a fleet, taking its instances from the fleets that held them (adoption moves
    /// instances; a launch brings new ones).
    pub(crate) fn insert_fleet(&mut self, fleet: MockFleet) {
        let id = fleet.id.clone();
        if let Some(replaced) = self.fleets.remove(&id) {
            self.index.owned(owner(&replaced.tags)).fleets.remove(&id);
            for i in &replaced.instances {
                self.index.holders.remove(i);
            }
        }
        let mut left: BTreeMap<FleetId, BTreeSet<&InstanceId>> = BTreeMap::new();
        for i in &fleet.instances {
            if let Some(old) = self.index.holders.insert(i.clone(), id.clone()) {
                left.entry(old).or_default().insert(i);
            }
        }
        for (old, moved) in left {
            if let Some(f) = self.fleets.get_mut(&old) {
                f.instances.retain(|i| !moved.contains(i));
            }
        }
        self.index
            .owned(owner(&fleet.tags))
            .fleets
            .insert(id.clone());
        self.fleets.insert(id, fleet);
    }

    pub(crate) fn insert_target(&mut self, id: TargetId, target: MockTarget) {
        self.index.add_target(&id, &target);
        self.targets.insert(id, target);
    }

    /// Gives a target new tags and a new fleet (adoption).
    pub(crate) fn retag_target(&mut self, id: &TargetId, tags: Labels, fleet: FleetId) {
        let Some(t) = self.targets.get_mut(id) else {
            return;
        };
        self.index.remove_target(id, t);
        t.tags = tags;
        t.fleet = fleet;
        self.index.add_target(id, t);
    }

    /// Deletes a drained target: it stays in the state, deleted, for nobody to find.
    pub(crate) fn delete_target(&mut self, id: &TargetId) {
        let Some(t) = self.targets.get_mut(id) else {
            return;
        };
        self.index.remove_target(id, t);
        t.deleted = true;
        t.registered = BTreeMap::new();
    }

    /// Applies `service`'s routing change if its propagation delay has passed.
    pub(crate) fn settle_route(&mut self, service: &ServiceName) {
        let now = Instant::now();
        if let Some(r) = self.routes.get_mut(service)
            && r.pending.as_ref().is_some_and(|(when, _)| *when <= now)
        {
            r.current = r.pending.take().expect("checked").1;
        }
    }
}

#[cfg(test)]
mod tests;
