//! Fleets: groups of identical instances launched from one image, and the [`Fleet`] trait.

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::service::string_id;
use crate::{AdoptMode, AdoptSpec, Cost, DeploymentId, ImageId, Operation, Result, ServiceName};

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
/// - [`launch`](Fleet::launch) finds a fleet [`launch_new`](Fleet::launch_new) made (the
///   engine retries and resumes with `launch`).
/// - [`terminate`](Fleet::terminate) is idempotent: terminating a terminated fleet succeeds.
/// - Every call is scoped to the service: a fleet without the service's ownership tags is
///   [`Error::NotOwned`](crate::Error::NotOwned) or invisible, never modified (I6).
/// - Unknown ids give [`Error::NotFound`](crate::Error::NotFound).
/// - A fleet that scales by itself is launched [`Scaling::Held`] and acts on its own only
///   after [`set_scaling`](Fleet::set_scaling) makes it [`Scaling::Active`];
///   `set_scaling` is idempotent.
#[async_trait]
pub trait Fleet: Debug + Send + Sync + 'static {
    /// Launches `spec.capacity` instances of `spec.image`, or returns the fleet already launched
    /// under `spec.key`.
    async fn launch(&self, spec: &FleetSpec) -> Result<FleetInfo>;

    /// [`launch`](Fleet::launch) for a key nothing was ever launched under: the engine calls it
    /// once, on the first attempt of the launch of a deployment it has just created (no earlier
    /// run, no retry), so there is nothing for an idempotency lookup to find and a backend may
    /// skip it. The default calls [`launch`](Fleet::launch). A caller that cannot promise the
    /// key is new calls `launch`: skipping the lookup for a key already used could launch a
    /// second fleet.
    async fn launch_new(&self, spec: &FleetSpec) -> Result<FleetInfo> {
        self.launch(spec).await
    }

    /// Describes one of the service's fleets.
    async fn describe(&self, service: &ServiceName, fleet: &FleetId) -> Result<FleetInfo>;

    /// Every live fleet of the service, found by its ownership tags.
    async fn list(&self, service: &ServiceName) -> Result<Vec<FleetInfo>>;

    /// Terminates every instance of one of the service's fleets.
    async fn terminate(&self, service: &ServiceName, fleet: &FleetId) -> Result<()>;

    /// Holds a fleet at its size or lets its own scaling act (see [`Scaling`]). The engine
    /// holds the old fleet before it launches the new one, makes the new one active once it
    /// takes all traffic, and makes the old one active first thing in a rollback.
    ///
    /// Fleets that do not scale by themselves have nothing to do: the default succeeds
    /// without a call.
    async fn set_scaling(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
        scaling: Scaling,
    ) -> Result<()> {
        let _ = (service, fleet, scaling);
        Ok(())
    }

    /// The fleet that `spec.instances` (the instances the serving target sends traffic to,
    /// made by hand or by another tool) form, and with [`AdoptMode::Apply`] makes it one of
    /// the service's fleets: the backend tags what makes a fleet on it (the instances
    /// themselves, or the group that launched them) with the ownership tags, `spec.key` and
    /// the capacity, so that [`describe`](Fleet::describe) and [`list`](Fleet::list) find it
    /// under the returned id and [`terminate`](Fleet::terminate) can retire it.
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
    ///
    /// The default answers [`Error::NotSupported`](crate::Error::NotSupported): the backend
    /// cannot adopt.
    async fn adopt(&self, spec: &AdoptSpec, mode: AdoptMode) -> Result<FleetInfo> {
        let _ = mode;
        Err(crate::Error::not_supported(
            "adopt",
            format!(
                "this fleet backend cannot adopt the instances serving service `{}`",
                spec.service
            ),
        ))
    }

    /// What one of this trait's operations costs in provider calls; `None` (the default)
    /// when the backend does not say. [`Engine::plan`](crate::Engine::plan) adds these up.
    fn cost(&self, service: &ServiceName, operation: Operation) -> Option<Cost> {
        let _ = (service, operation);
        None
    }
}
