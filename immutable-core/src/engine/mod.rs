//! The replace-and-swap engine: a resumable state machine over the three backend traits.

// The phases, in the order a deployment walks them (phases.rs), and what operators and tools
// do besides deploying (operations.rs).
mod operations;
mod phases;

// What the phases share, and the driver.
mod budget;
mod builder;
mod cause;
mod control;
mod lease;
mod notifying;
mod phase;
mod poll;
pub(crate) mod record;
mod request;
mod run;
mod runner;
mod settings;
mod timeline;
mod wait;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

pub use budget::{Budget, Calls, Eta};
pub use builder::EngineBuilder;
pub use cause::{OnBlueLost, RollbackCause, Stranded};
use control::Control;
pub use control::DeploymentHandle;
pub use operations::adopt::Adoption;
pub use operations::command::{Command, CommandRecord};
pub use operations::dry_run::{PlannedDeployment, Refusal};
pub use operations::gc::{GcMode, GcReport};
pub use operations::operator::Operator;
pub(crate) use operations::rollback::redeploy_request;
pub use operations::rollback::{RollbackMode, RollbackReport};
pub use operations::status::{Status, Waiting};
pub use phase::Phase;
pub use record::{Blue, DeploymentRecord, Green, HistoryEntry, Origin, Outcome, Report, Retired};
pub use request::{DeploymentRequest, DeploymentSpec};
pub use settings::Settings;
pub use timeline::{Mark, Side, Timeline, TimelineEntry};

use crate::event::EventBus;
use crate::{
    Check, Clock, DeploymentId, Error, Event, Fleet, FleetAdoption, ImageStore, PreviewRouter,
    Result, ScalingControl, StateStore, Strategy, TargetAdoption, TrafficRouter,
};

/// Runs deployments. Cheap to clone; clones share backends, store, settings and subscribers.
///
/// # Expected flow
/// 1. **Plan** ([`Engine::deploy`]): validate the request, resolve the image, take the service's
///    lease, find the fleet that serves now (blue), create the record.
/// 2. **Provision**: launch the green fleet, idempotent by the deployment id.
/// 3. **Attach**: wait for its instances to run, then register them as a new target that
///    takes no traffic.
/// 4. **Await healthy**: until `min_healthy` instances pass health checks, or the health
///    timeout rolls back.
/// 5. **Rollout**: the strategy's steps (preview, checks, shifts, pauses, approval gates);
///    each weight change is one routing call, made only when green has `min_healthy` healthy
///    instances. Each step is recorded before it runs and after it ends.
/// 6. **Bake**: blue stays up for `bake_time`, the fast-rollback window, while green's health
///    is watched (a drop rolls back) and blue's too (a drop loses the window:
///    [`EventKind::RollbackWindowLost`](crate::EventKind::RollbackWindowLost), then
///    [`OnBlueLost`] decides).
/// 7. **Retire**: detach (drain) and terminate blue, mark the image promoted, apply image
///    retention.
/// 8. **Done**: release the lease.
///
/// Operators steer a running deployment through a [`DeploymentHandle`] (approve, reject,
/// promote, abort), and [`Engine::rollback`] goes back to what served before. A fleet that
/// serves without the SDK's ownership tags (made by hand or by another tool) is refused until
/// [`Engine::adopt`] hands it over.
///
/// Any failure before Retire rolls back: traffic returns to blue in one routing call if it had
/// moved, green is detached and terminated, and the [`RollbackCause`] is recorded. If blue has
/// fewer than `min_healthy` healthy instances by then, traffic does not return to it: the
/// deployment ends in [`Phase::Stopped`] with traffic where it is
/// healthiest and both fleets kept.
///
/// # Guarantees
/// Each phase observes the world, takes one idempotent action and persists the record, so a
/// deployment cut off at any point continues from its record with [`Engine::resume`]. Traffic
/// only moves to a target with `min_healthy` healthy instances, forward or back (I1); the
/// serving fleet is never
/// detached or terminated (I2); a finished deployment leaves exactly one serving fleet and
/// nothing it created behind (I3); one deployment per service runs at a time (I5).
///
/// # Assumptions
/// Backends honour the guarantees their traits document: idempotent launch by key, idempotent
/// terminate, atomic weight changes, and ownership tags (I6).
///
/// # Caveats
/// Waits are polls; a deployment takes up to one poll interval longer than each wait it makes.
///
/// # Errors
/// Bad input, any duration or count outside [`limits`](mod@crate::limits) included, is
/// [`Error::InvalidInput`] naming the field, before anything is created. A busy
/// service is [`Error::Locked`]. A failure of the store, or of a cleanup call after its retries,
/// returns the error with the record left at its phase, ready for [`Engine::resume`].
///
/// ```
/// # async fn demo(cloud: impl immutable_core::ImageStore + immutable_core::Fleet
/// #     + immutable_core::TrafficRouter + Clone) -> immutable_core::Result<()> {
/// use immutable_core::{DeploymentRequest, Engine, FileStore, ImageRef};
///
/// let engine = Engine::builder()
///     .images(cloud.clone())
///     .fleet(cloud.clone())
///     .router(cloud)
///     .store(FileStore::open("/var/lib/my-deployer/journal")?)
///     .build()?;
/// let report = engine.deploy(DeploymentRequest::new("web", ImageRef::name("web-v2"))).await?;
/// assert!(report.succeeded());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    images: Arc<dyn ImageStore>,
    fleet: Arc<dyn Fleet>,
    router: Arc<dyn TrafficRouter>,
    /// The capabilities registered on the builder; an absent one is a call never made.
    preview: Option<Arc<dyn PreviewRouter>>,
    scaling: Option<Arc<dyn ScalingControl>>,
    adoption: Option<(Arc<dyn FleetAdoption>, Arc<dyn TargetAdoption>)>,
    store: Arc<dyn StateStore>,
    /// Where halts are read and written (the engine's store unless told otherwise).
    halts: Arc<dyn StateStore>,
    /// Status, commands and halts, through the store alone.
    operator: Operator,
    settings: Settings,
    clock: Arc<dyn Clock>,
    events: EventBus,
    checks: BTreeMap<String, Arc<dyn Check>>,
    strategies: BTreeMap<String, Arc<dyn Strategy>>,
    /// Who is told what (see [`crate::notify`]).
    notifiers: Vec<crate::notify::Notify>,
    /// Deployments running in this process, for their handles.
    controls: Mutex<HashMap<DeploymentId, Arc<Control>>>,
}

impl Engine {
    /// Starts building an engine.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Calls `f` with every event of every deployment this engine runs, in order, on the task
    /// running the deployment. Keep it quick; send the event elsewhere for slow work.
    pub fn subscribe(&self, f: impl Fn(&Event) + Send + Sync + 'static) {
        self.inner.events.subscribe(Arc::new(f));
    }

    /// A channel that receives every event of every deployment this engine runs.
    pub fn events(&self) -> tokio::sync::mpsc::UnboundedReceiver<Event> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.subscribe(move |e| {
            let _ = tx.send(e.clone());
        });
        rx
    }

    /// The journal and lock.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.inner.store
    }

    /// The router, for checks run outside a deployment (a wave plan's bake gates).
    pub(crate) fn router(&self) -> &Arc<dyn TrafficRouter> {
        &self.inner.router
    }

    /// The engine's settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Stops a deployment running in this engine at its next safe point, releasing its lease;
    /// its `deploy` or `resume` returns [`Error::Suspended`]. See
    /// [`DeploymentHandle::suspend`].
    ///
    /// # Errors
    /// [`Error::NotFound`] if no such deployment is running here.
    pub fn suspend(&self, deployment: &DeploymentId) -> Result<()> {
        self.handle(deployment)?.suspend();
        Ok(())
    }

    /// A handle on a deployment running in this engine, to approve, reject, promote or abort
    /// it. The deployment's id is in every [`Event`].
    ///
    /// # Errors
    /// [`Error::NotFound`] if no such deployment is running here.
    pub fn handle(&self, deployment: &DeploymentId) -> Result<DeploymentHandle> {
        let controls = self
            .inner
            .controls
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let control = controls.get(deployment).cloned().ok_or_else(|| {
            Error::not_found(crate::ResourceKind::Deployment, deployment.to_string())
        })?;
        Ok(DeploymentHandle {
            id: deployment.clone(),
            control,
            engine: self.clone(),
        })
    }
}
