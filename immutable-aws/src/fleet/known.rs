//! The instance ids of fleets this backend launched or read, so that later reads of a fleet
//! name its instances instead of scanning the account's instances by tag.
//!
//! A bare EC2 fleet never gains an instance except through a launch under its key, and a launch
//! tops up only a fleet short of live instances; so ids read once stay the fleet's as long as
//! every one of them is still described with the fleet's tags and enough of them are live.
//! Whenever that does not hold, the caller scans by tag again (and remembers what it found).

use immutable_core::{FleetId, InstanceState, ServiceName, tags};

use crate::ec2::Described;
use crate::memory::Memory;

/// Instance ids per fleet, shared by the clones of one [`AwsFleet`](super::AwsFleet).
#[derive(Debug, Clone, Default)]
pub(super) struct KnownInstances(Memory<FleetId, Vec<String>>);

impl KnownInstances {
    /// Remembers the fleet's instances as read or launched.
    pub(super) fn remember(&self, fleet: &FleetId, instances: &[Described]) {
        let ids = instances.iter().map(|i| i.id.to_string()).collect();
        self.0.keep(fleet.clone(), ids);
    }

    /// Forgets a terminated fleet, so that the memory holds live fleets only.
    pub(super) fn forget(&self, fleet: &FleetId) {
        self.0.forget(fleet);
    }

    /// The fleet's instance ids, if known.
    pub(super) fn ids(&self, fleet: &FleetId) -> Option<Vec<String>> {
        self.0.get(fleet)
    }
}

/// Whether instances read by id are still the whole fleet: every id answered, every instance
/// tagged with the fleet and the service, and as many live as the fleet's capacity tag asks
/// (a fleet short of live instances may have been topped up by a launch elsewhere).
pub(super) fn still_whole(
    service: &ServiceName,
    fleet: &FleetId,
    ids: &[String],
    found: &[Described],
) -> bool {
    let tagged = |i: &Described| {
        i.tags.get(tags::FLEET).map(String::as_str) == Some(fleet.as_str())
            && i.tags.get(tags::SERVICE).map(String::as_str) == Some(service.as_str())
    };
    let live = found
        .iter()
        .filter(|i| matches!(i.state, InstanceState::Pending | InstanceState::Running))
        .count();
    let capacity = found
        .first()
        .and_then(|i| i.tags.get(tags::CAPACITY))
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(ids.len());
    found.len() == ids.len() && found.iter().all(tagged) && live >= capacity
}
