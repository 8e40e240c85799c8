//! Adoption's backend seam: what serves a service now ([`Adoptable`]), what to adopt
//! ([`AdoptSpec`]) and whether to change anything ([`AdoptMode`]).
//!
//! [`Engine::adopt`](crate::Engine::adopt) drives it:
//! [`TrafficRouter::adoptable`](crate::TrafficRouter::adoptable) reads the target that serves and
//! its instances, [`Fleet::adopt`](crate::Fleet::adopt) says (or makes) the fleet those
//! instances form, and [`TrafficRouter::adopt_target`](crate::TrafficRouter::adopt_target)
//! tags the target as that fleet's.

use serde::{Deserialize, Serialize};

use crate::{DeploymentId, FleetKey, InstanceId, ServiceName, TargetId};

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

/// What [`Fleet::adopt`](crate::Fleet::adopt) adopts: the instances registered in the
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
