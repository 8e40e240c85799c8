//! The replace-and-swap engine: a resumable state machine over the three backend traits.
//!
//! # Expected flow
//! 1. **Plan** ([`Engine::deploy`]): validate the request, resolve the image, take the service's
//!    lease, find the fleet that serves now (blue), create the record.
//! 2. **Provision**: launch the green fleet, idempotent by the deployment id.
//! 3. **Attach**: wait for its instances to run, then register them as a new target that
//!    takes no traffic.
//! 4. **Await healthy**: until `min_healthy` instances pass health checks, or the health
//!    timeout rolls back.
//! 5. **Rollout**: the strategy's steps (preview, checks, shifts, pauses, approval gates);
//!    each weight change is one routing call, made only when green has `min_healthy` healthy
//!    instances. Each step is recorded before it runs and after it ends.
//! 6. **Bake**: blue stays up for `bake_time`, the fast-rollback window, while green's health
//!    is watched (a drop rolls back) and blue's too (a drop loses the window:
//!    [`EventKind::RollbackWindowLost`](crate::EventKind::RollbackWindowLost), then
//!    [`OnBlueLost`] decides).
//! 7. **Retire**: detach (drain) and terminate blue, mark the image promoted, apply image
//!    retention.
//! 8. **Done**: release the lease.
//!
//! Operators steer a running deployment through a [`DeploymentHandle`] (approve, reject,
//! promote, abort), and [`Engine::rollback`] goes back to what served before.
//!
//! Any failure before Retire rolls back: traffic returns to blue in one routing call if it had
//! moved, green is detached and terminated, and the [`RollbackCause`] is recorded. If blue has
//! fewer than `min_healthy` healthy instances by then, traffic does not return to it: the
//! deployment ends in [`Phase::Stopped`](crate::Phase::Stopped) with traffic where it is
//! healthiest and both fleets kept.
//!
//! # Guarantees
//! Each phase observes the world, takes one idempotent action and persists the record, so a
//! deployment cut off at any point continues from its record with [`Engine::resume`]. Traffic
//! only moves to a target with `min_healthy` healthy instances, forward or back (I1); the
//! serving fleet is never
//! detached or terminated (I2); a finished deployment leaves exactly one serving fleet and
//! nothing it created behind (I3); one deployment per service runs at a time (I5).
//!
//! # Assumptions
//! Backends honour the guarantees their traits document: idempotent launch by key, idempotent
//! terminate, atomic weight changes, and ownership tags (I6).
//!
//! # Caveats
//! Waits are polls; a deployment takes up to one poll interval longer than each wait it makes.
//!
//! # Errors
//! Bad input, any duration or count outside [`limits`](mod@crate::limits) included, is
//! [`Error::InvalidInput`] naming the field, before anything is created. A busy
//! service is [`Error::Locked`]. A failure of the store, or of a cleanup call after its retries,
//! returns the error with the record left at its phase, ready for [`Engine::resume`].

mod bake;
mod cause;
mod control;
mod gc;
mod phase;
pub(crate) mod record;
mod roll_back;
mod runner;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use cause::{OnBlueLost, RollbackCause, Stranded};
use control::Control;
pub use control::DeploymentHandle;
pub use gc::{GcMode, GcReport};
pub use roll_back::{RollbackMode, RollbackReport};

use crate::event::EventBus;
use crate::limits;
use crate::{
    Check, Clock, DeploymentId, Error, Event, Fleet, ImageStore, InMemoryStore, Result,
    RetryPolicy, StateStore, Strategy, TokioClock, TrafficRouter,
};

/// Engine-wide settings. Per-deployment settings live in [`DeploymentRequest`](crate::DeploymentRequest).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// How often waits poll the backends. Default 5 s.
    pub poll_interval: Duration,
    /// How long the new fleet's instances may take to reach running. Default 10 minutes.
    pub launch_timeout: Duration,
    /// Retries of retryable errors on forward steps.
    pub retry: RetryPolicy,
    /// Retries of cleanup calls (rollback and retire), which retry any error but
    /// [`Error::NotFound`]: giving up on a cleanup leaks resources. Default 10 attempts.
    pub cleanup_retry: RetryPolicy,
    /// Images of the service kept by retention: the newest this many, plus any in use and the
    /// one replaced by the last deployment. Default 3.
    pub keep_images: usize,
    /// How long a service lease lasts unless renewed; the engine renews it every third of
    /// this. Default 60 s.
    pub lease_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll_interval: Duration::from_secs(5),
            launch_timeout: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            cleanup_retry: RetryPolicy::default().with_max_attempts(10),
            keep_images: 3,
            lease_ttl: Duration::from_secs(60),
        }
    }
}

impl Settings {
    /// Sets the poll interval.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets the launch timeout.
    pub fn with_launch_timeout(mut self, timeout: Duration) -> Self {
        self.launch_timeout = timeout;
        self
    }

    /// Sets the retry policy of forward steps.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the retry policy of cleanup calls.
    pub fn with_cleanup_retry(mut self, retry: RetryPolicy) -> Self {
        self.cleanup_retry = retry;
        self
    }

    /// Sets how many images retention keeps.
    pub fn with_keep_images(mut self, keep: usize) -> Self {
        self.keep_images = keep;
        self
    }

    /// Sets the lease time-to-live.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Checks every duration and count against [`limits`](crate::limits).
    fn validate(&self) -> Result<()> {
        limits::duration(
            "poll_interval",
            self.poll_interval,
            limits::MIN_POLL_INTERVAL,
            limits::MAX_POLL_INTERVAL,
        )?;
        limits::duration(
            "launch_timeout",
            self.launch_timeout,
            limits::MIN_LAUNCH_TIMEOUT,
            limits::MAX_LAUNCH_TIMEOUT,
        )?;
        limits::duration(
            "lease_ttl",
            self.lease_ttl,
            limits::MIN_LEASE_TTL,
            limits::MAX_LEASE_TTL,
        )?;
        if self.keep_images == 0 {
            return Err(Error::invalid(
                "keep_images",
                "must be at least 1: the image being deployed is always kept",
            ));
        }
        limits::count("keep_images", self.keep_images, 1, limits::MAX_KEEP_IMAGES)?;
        self.retry.validate("retry")?;
        self.cleanup_retry.validate("cleanup_retry")
    }
}

/// Runs deployments. Cheap to clone; clones share backends, store, settings and subscribers.
///
/// ```
/// # async fn demo(cloud: impl immutable_core::ImageStore + immutable_core::Fleet
/// #     + immutable_core::TrafficRouter + Clone) -> immutable_core::Result<()> {
/// use immutable_core::{DeploymentRequest, Engine, ImageRef};
///
/// let engine = Engine::builder()
///     .images(cloud.clone())
///     .fleet(cloud.clone())
///     .router(cloud)
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
    store: Arc<dyn StateStore>,
    settings: Settings,
    clock: Arc<dyn Clock>,
    events: EventBus,
    checks: BTreeMap<String, Arc<dyn Check>>,
    strategies: BTreeMap<String, Arc<dyn Strategy>>,
    /// Deployments running in this process, for their handles.
    controls: Mutex<HashMap<DeploymentId, Arc<Control>>>,
}

/// Builds an [`Engine`].
#[derive(Debug, Default)]
#[must_use]
pub struct EngineBuilder {
    images: Option<Arc<dyn ImageStore>>,
    fleet: Option<Arc<dyn Fleet>>,
    router: Option<Arc<dyn TrafficRouter>>,
    store: Option<Arc<dyn StateStore>>,
    settings: Settings,
    clock: Option<Arc<dyn Clock>>,
    checks: BTreeMap<String, Arc<dyn Check>>,
    strategies: BTreeMap<String, Arc<dyn Strategy>>,
}

impl EngineBuilder {
    /// Registers a check under `name`, for [`Step::Checks`](crate::Step::Checks).
    pub fn check(mut self, name: impl Into<String>, check: impl Check) -> Self {
        self.checks.insert(name.into(), Arc::new(check));
        self
    }

    /// Registers a custom strategy under `name`, for
    /// [`StrategySpec::Named`](crate::StrategySpec::Named). A deployment resumed by another
    /// engine finds its strategy by this name, so register it there too.
    pub fn strategy(mut self, name: impl Into<String>, strategy: impl Strategy) -> Self {
        self.strategies.insert(name.into(), Arc::new(strategy));
        self
    }

    /// The image catalog.
    pub fn images(self, images: impl ImageStore) -> Self {
        self.images_shared(Arc::new(images))
    }

    /// The image catalog, shared.
    pub fn images_shared(mut self, images: Arc<dyn ImageStore>) -> Self {
        self.images = Some(images);
        self
    }

    /// The fleet backend.
    pub fn fleet(self, fleet: impl Fleet) -> Self {
        self.fleet_shared(Arc::new(fleet))
    }

    /// The fleet backend, shared.
    pub fn fleet_shared(mut self, fleet: Arc<dyn Fleet>) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// The traffic router.
    pub fn router(self, router: impl TrafficRouter) -> Self {
        self.router_shared(Arc::new(router))
    }

    /// The traffic router, shared.
    pub fn router_shared(mut self, router: Arc<dyn TrafficRouter>) -> Self {
        self.router = Some(router);
        self
    }

    /// The journal and lock. Default: an [`InMemoryStore`].
    pub fn store(self, store: impl StateStore) -> Self {
        self.store_shared(Arc::new(store))
    }

    /// The journal and lock, shared.
    pub fn store_shared(mut self, store: Arc<dyn StateStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Engine settings.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The clock for records and events. Default: a [`TokioClock`].
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Builds the engine.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming a missing backend (`images`, `fleet`, `router`) or a bad
    /// setting.
    pub fn build(self) -> Result<Engine> {
        self.settings.validate()?;
        let missing = |what: &str| Error::invalid(what, "is required: set it on the builder");
        Ok(Engine {
            inner: Arc::new(Inner {
                images: self.images.ok_or_else(|| missing("images"))?,
                fleet: self.fleet.ok_or_else(|| missing("fleet"))?,
                router: self.router.ok_or_else(|| missing("router"))?,
                store: self.store.unwrap_or_else(|| Arc::new(InMemoryStore::new())),
                settings: self.settings,
                clock: self.clock.unwrap_or_else(|| Arc::new(TokioClock::new())),
                events: EventBus::default(),
                checks: self.checks,
                strategies: self.strategies,
                controls: Mutex::default(),
            }),
        })
    }
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

    /// The engine's settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
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
        })
    }
}
