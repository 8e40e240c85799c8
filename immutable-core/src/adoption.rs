//! Adoption's backend seam: what serves a service now ([`Adoptable`]), what to adopt
//! ([`AdoptSpec`]) and whether to change anything ([`AdoptMode`]).
//!
//! [`Engine::adopt`](crate::Engine::adopt) drives it:
//! [`TargetAdoption::adoptable`] reads the target that serves and its instances,
//! [`FleetAdoption::adopt`] says (or makes) the fleet those instances form, and
//! [`TargetAdoption::adopt_target`] tags the target as that fleet's. Both traits are
//! capabilities, registered together with [`EngineBuilder::adoption`](crate::EngineBuilder::adoption).

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{DeploymentId, FleetInfo, FleetKey, InstanceId, Result, ServiceName, Target, TargetId};

/// Whether an adoption only reports or also tags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AdoptMode {
    /// Read calls only: report what would be tagged. The default.
    #[default]
    DryRun,
    /// Tag the serving target, its instances (or what launched them) as the service's fleet.
    Apply,
}

/// A target that serves a service's entry point, as the router reads it for adoption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Adoptable {
    /// The target.
    pub target: TargetId,
    /// The service whose ownership tag it carries; `None` for a target made by hand.
    pub owner: Option<ServiceName>,
    /// The instances registered in it, in any health state.
    pub instances: Vec<InstanceId>,
}

impl Adoptable {
    /// Builds one (for backends).
    pub fn new(
        target: TargetId,
        owner: Option<ServiceName>,
        instances: impl IntoIterator<Item = InstanceId>,
    ) -> Self {
        Adoptable {
            target,
            owner,
            instances: instances.into_iter().collect(),
        }
    }
}

/// What [`FleetAdoption::adopt`] adopts: the instances registered in the
/// serving target, for a service, under the adoption's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AdoptSpec {
    /// The service that adopts them; written as an ownership tag.
    pub service: ServiceName,
    /// The adoption's id; written as the deployment tag, as a launch writes its deployment's.
    pub deployment: DeploymentId,
    /// The fleet's key, as a launch's key (the adoption's id).
    pub key: FleetKey,
    /// The instances the serving target sends traffic to.
    pub instances: Vec<InstanceId>,
}

impl AdoptSpec {
    /// A spec keyed by the adoption's id.
    pub fn new(
        service: ServiceName,
        deployment: DeploymentId,
        instances: impl IntoIterator<Item = InstanceId>,
    ) -> Self {
        AdoptSpec {
            key: FleetKey::from(&deployment),
            service,
            deployment,
            instances: instances.into_iter().collect(),
        }
    }
}

/// A fleet backend that can take over the instances a target made by hand sends traffic to.
#[async_trait]
pub trait FleetAdoption: Debug + Send + Sync + 'static {
    /// The fleet that `spec.instances` (the instances the serving target sends traffic to,
    /// made by hand or by another tool) form, and with [`AdoptMode::Apply`] makes it one of
    /// the service's fleets: the backend tags what makes a fleet on it (the instances
    /// themselves, or the group that launched them) with the ownership tags, `spec.key` and
    /// the capacity, so that [`Fleet::describe`](crate::Fleet::describe) and
    /// [`Fleet::list`](crate::Fleet::list) find it under the returned id and
    /// [`Fleet::terminate`](crate::Fleet::terminate) can retire it.
    ///
    /// # Guarantees expected of an implementation
    /// - [`AdoptMode::DryRun`] makes read calls only and returns the fleet as `Apply` with the
    ///   same spec would make it: same id, image, capacity and instances.
    /// - Only live (pending or running) instances count; the fleet's capacity is how many
    ///   there are (or the size of the group that launched them).
    /// - Instances may carry no ownership tags, or the service's own (an adoption cut off
    ///   earlier: they are tagged again under `spec.key`). Any carrying another service's are
    ///   [`Error::NotOwned`](crate::Error::NotOwned) and nothing is changed (I6).
    /// - Unknown instances are [`Error::NotFound`](crate::Error::NotFound); no live instance is
    ///   [`AdoptRefusal::NoLiveInstances`](crate::AdoptRefusal::NoLiveInstances) and live ones
    ///   running different images [`AdoptRefusal::MixedImages`](crate::AdoptRefusal::MixedImages),
    ///   both as [`Error::AdoptionRefused`](crate::Error::AdoptionRefused).
    /// - `Apply` is idempotent by `spec.key`.
    async fn adopt(&self, spec: &AdoptSpec, mode: AdoptMode) -> Result<FleetInfo>;
}

/// A router that can hand a target made by hand to the SDK.
#[async_trait]
pub trait TargetAdoption: Debug + Send + Sync + 'static {
    /// Reads a target the service's entry point sends traffic to, for adoption: who owns it
    /// (by its ownership tags; `None` for one made by hand) and the instances registered in
    /// it. [`Engine::adopt`](crate::Engine::adopt) passes the sole target of
    /// [`TrafficRouter::routing`](crate::TrafficRouter::routing).
    ///
    /// Read calls only. This is the one call that reads a target without the service's
    /// ownership tags, and it changes nothing (I6). An unknown target is
    /// [`Error::NotFound`](crate::Error::NotFound).
    async fn adoptable(&self, service: &ServiceName, target: &TargetId) -> Result<Adoptable>;

    /// Writes the service's ownership tags ([`tags::ownership`](crate::tags::ownership) of
    /// `fleet`'s service, id and deployment) on `target`, so that it becomes `fleet`'s target:
    /// [`TrafficRouter::targets`](crate::TrafficRouter::targets) lists it from then on, and a
    /// deployment replaces it like any other. Routing is unchanged.
    ///
    /// Called only by [`Engine::adopt`](crate::Engine::adopt) with [`AdoptMode::Apply`], after
    /// [`FleetAdoption::adopt`] tagged the fleet. Idempotent: a target tagged for the same
    /// service and fleet succeeds without a change. A target carrying another service's (or
    /// another fleet's) tags is [`Error::NotOwned`](crate::Error::NotOwned) and is not changed.
    async fn adopt_target(
        &self,
        service: &ServiceName,
        target: &TargetId,
        fleet: &FleetInfo,
    ) -> Result<Target>;
}
