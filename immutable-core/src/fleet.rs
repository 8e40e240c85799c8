//! Fleets: groups of identical instances launched from one image, and the [`Fleet`] trait.

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::service::string_id;
use crate::{Cost, DeploymentId, ImageId, Operation, Result, ServiceName};

string_id!(
    /// A fleet's id, unique within the provider account.
    FleetId
);

string_id!(
    /// An instance's id.
    InstanceId
);

string_id!(
    /// The idempotency key of a launch: launching a key that exists returns that fleet.
    ///
    /// The engine uses the deployment id, so one deployment has at most one fleet.
    FleetKey
);

impl From<&DeploymentId> for FleetKey {
    fn from(value: &DeploymentId) -> Self {
        FleetKey::new(value.as_str())
    }
}

/// What to launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FleetSpec {
    /// The owning service; written as an ownership tag on every instance.
    pub service: ServiceName,
    /// The idempotency key.
    pub key: FleetKey,
    /// The deployment launching the fleet; written as a tag.
    pub deployment: DeploymentId,
    /// The image every instance boots from.
    pub image: ImageId,
    /// How many instances.
    pub capacity: u32,
    /// The fleet this one replaces (the one serving when the deployment began), for backends
    /// that copy its settings; `None` for a service's first deployment.
    pub replaces: Option<FleetId>,
}

impl FleetSpec {
    /// A spec keyed by the deployment id.
    pub fn new(
        service: ServiceName,
        deployment: DeploymentId,
        image: ImageId,
        capacity: u32,
    ) -> Self {
        FleetSpec {
            key: FleetKey::from(&deployment),
            service,
            deployment,
            image,
            capacity,
            replaces: None,
        }
    }

    /// Names the fleet this one replaces.
    #[must_use]
    pub fn replacing(mut self, fleet: Option<FleetId>) -> Self {
        self.replaces = fleet;
        self
    }

    /// Sets the idempotency key (by default the deployment id).
    #[must_use]
    pub fn with_key(mut self, key: FleetKey) -> Self {
        self.key = key;
        self
    }
}

/// The lifecycle state of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum InstanceState {
    /// Booting.
    Pending,
    /// Running.
    Running,
    /// Shutting down or stopping.
    Stopping,
    /// Stopped; it can serve no traffic.
    Stopped,
    /// Gone, or going.
    Terminated,
}

impl std::fmt::Display for InstanceState {
    /// `pending`, `running`, `stopping`, `stopped`, `terminated`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::Terminated => "terminated",
        })
    }
}

impl InstanceState {
    /// Pending or running: the instance counts toward the fleet.
    pub fn is_live(self) -> bool {
        matches!(self, InstanceState::Pending | InstanceState::Running)
    }
}

/// One instance of a fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// The provider's id.
    pub id: InstanceId,
    /// Its state.
    pub state: InstanceState,
}

/// A fleet as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FleetInfo {
    /// The fleet's id.
    pub id: FleetId,
    /// The owning service.
    pub service: ServiceName,
    /// The launch's idempotency key.
    pub key: FleetKey,
    /// The deployment that launched it.
    pub deployment: DeploymentId,
    /// The image its instances run.
    pub image: ImageId,
    /// How many instances were asked for.
    pub capacity: u32,
    /// Its instances, terminated ones included while the provider still reports them.
    pub instances: Vec<Instance>,
}

impl FleetInfo {
    /// A fleet launched from `spec`, with no instances yet (for backends).
    pub fn new(id: FleetId, spec: FleetSpec) -> Self {
        let FleetSpec {
            service,
            key,
            deployment,
            image,
            capacity,
            replaces: _,
        } = spec;
        FleetInfo {
            id,
            service,
            key,
            deployment,
            image,
            capacity,
            instances: Vec::new(),
        }
    }

    /// Sets its instances.
    #[must_use]
    pub fn with_instances(mut self, instances: impl IntoIterator<Item = Instance>) -> Self {
        self.instances = instances.into_iter().collect();
        self
    }

    /// How many instances are in `state`.
    pub fn count(&self, state: InstanceState) -> usize {
        self.instances.iter().filter(|i| i.state == state).count()
    }

    /// Whether any instance is pending or running.
    pub fn is_live(&self) -> bool {
        self.instances.iter().any(|i| i.state.is_live())
    }
}

/// Whether a fleet's own scaling may change its size.
///
/// A fleet that scales by itself (an Auto Scaling group with policies or schedules) is held
/// while a deployment depends on its size: the old fleet from launch until the deployment
/// ends, so the fast-rollback fleet keeps its size; the new one until it takes all traffic.
/// Replacing failed instances is not scaling and goes on while held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Scaling {
    /// The fleet keeps its size: no scale-in, no scale-out.
    Held,
    /// The fleet's own policies and schedules act.
    Active,
}

/// Groups of identical instances launched from one image.
///
/// There is deliberately no way to change a running fleet: to change anything, launch a new one.
///
/// # Guarantees expected of an implementation
/// - [`launch`](Fleet::launch) is idempotent by `(service, key)`: launching a key that exists
///   returns that fleet and launches nothing.
/// - [`terminate`](Fleet::terminate) is idempotent: terminating a terminated fleet succeeds.
/// - Every call is scoped to the service: a fleet without the service's ownership tags is
///   [`Error::NotOwned`](crate::Error::NotOwned) or invisible, never modified (I6).
/// - Unknown ids give [`Error::NotFound`](crate::Error::NotFound).
/// - A fleet that scales by itself is launched [`Scaling::Held`] and acts on its own only
///   after [`ScalingControl::set_scaling`] makes it [`Scaling::Active`].
///
/// What only some fleets can do is a capability of its own, registered on the
/// [`EngineBuilder`](crate::EngineBuilder) next to the fleet: [`ScalingControl`] for fleets
/// that scale by themselves, [`FleetAdoption`](crate::FleetAdoption) for fleets that can take
/// over instances made by hand.
#[async_trait]
pub trait Fleet: Debug + Send + Sync + 'static {
    /// Launches `spec.capacity` instances of `spec.image`, or returns the fleet already launched
    /// under `spec.key`.
    async fn launch(&self, spec: &FleetSpec) -> Result<FleetInfo>;

    /// Describes one of the service's fleets.
    async fn describe(&self, service: &ServiceName, fleet: &FleetId) -> Result<FleetInfo>;

    /// Every live fleet of the service, found by its ownership tags.
    async fn list(&self, service: &ServiceName) -> Result<Vec<FleetInfo>>;

    /// Terminates every instance of one of the service's fleets.
    async fn terminate(&self, service: &ServiceName, fleet: &FleetId) -> Result<()>;

    /// What one of this trait's operations costs in provider calls; `None` (the default)
    /// when the backend does not say. [`Engine::plan`](crate::Engine::plan) adds these up.
    fn cost(&self, service: &ServiceName, operation: Operation) -> Option<Cost> {
        let _ = (service, operation);
        None
    }
}

/// A fleet that scales by itself (an Auto Scaling group): the engine holds the old fleet at
/// its size before it launches the new one, makes the new one active once it takes all
/// traffic, and makes the old one active first thing in a rollback. Registered with
/// [`EngineBuilder::scaling`](crate::EngineBuilder::scaling); an engine without it makes no
/// scaling call, which is right for fleets whose size nothing else changes.
///
/// # Guarantees expected of an implementation
/// - [`set_scaling`](ScalingControl::set_scaling) is idempotent.
/// - It is scoped to the service like every [`Fleet`] call: an unknown fleet is
///   [`Error::NotFound`](crate::Error::NotFound), another service's is
///   [`Error::NotOwned`](crate::Error::NotOwned) or not found, and neither is changed.
#[async_trait]
pub trait ScalingControl: Debug + Send + Sync + 'static {
    /// Holds a fleet at its size or lets its own scaling act (see [`Scaling`]).
    async fn set_scaling(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
        scaling: Scaling,
    ) -> Result<()>;
}
