//! [`EngineBuilder`]: backends, store, clock, settings, and the checks and strategies a
//! deployment may name.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{Engine, Inner, Operator, Settings};
use crate::event::EventBus;
use crate::notify::Notify;
use crate::{
    Backends, Check, Clock, Error, Fleet, FleetAdoption, ImageStore, PreviewRouter, Result,
    ScalingControl, StateStore, Strategy, TargetAdoption, TokioClock, TrafficRouter,
};

/// Builds an [`Engine`].
#[derive(Debug, Default)]
#[must_use]
pub struct EngineBuilder {
    images: Option<Arc<dyn ImageStore>>,
    fleet: Option<Arc<dyn Fleet>>,
    router: Option<Arc<dyn TrafficRouter>>,
    preview: Option<Arc<dyn PreviewRouter>>,
    scaling: Option<Arc<dyn ScalingControl>>,
    adoption: Option<(Arc<dyn FleetAdoption>, Arc<dyn TargetAdoption>)>,
    store: Option<Arc<dyn StateStore>>,
    halts: Option<Arc<dyn StateStore>>,
    settings: Settings,
    clock: Option<Arc<dyn Clock>>,
    checks: BTreeMap<String, Arc<dyn Check>>,
    strategies: BTreeMap<String, Arc<dyn Strategy>>,
    identity: Option<String>,
    notifiers: Vec<Notify>,
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

    /// Tells a notifier about deployments (see [`crate::notify`]); one [`Notify`] per
    /// notifier, each under its own name.
    pub fn notify(mut self, notify: Notify) -> Self {
        self.notifiers.push(notify);
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

    /// A provider's backends and capabilities in one call (see [`Backends`]); replaces any
    /// registered before.
    pub fn backends(mut self, backends: Backends) -> Self {
        self.images = Some(backends.images);
        self.fleet = Some(backends.fleet);
        self.router = Some(backends.router);
        self.preview = backends.preview;
        self.scaling = backends.scaling;
        self.adoption = backends.adoption;
        self
    }

    /// The router's preview entry point (a capability: without it, preview steps are
    /// skipped).
    pub fn preview(mut self, preview: impl PreviewRouter) -> Self {
        self.preview = Some(Arc::new(preview));
        self
    }

    /// Scaling control, for a fleet that scales by itself (a capability: without it, the
    /// engine makes no scaling call).
    pub fn scaling(mut self, scaling: impl ScalingControl) -> Self {
        self.scaling = Some(Arc::new(scaling));
        self
    }

    /// Adoption of a fleet made by hand: the fleet side and the router side (a capability:
    /// without it, [`Engine::adopt`] is [`Error::NotSupported`]).
    pub fn adoption(mut self, fleet: impl FleetAdoption, router: impl TargetAdoption) -> Self {
        self.adoption = Some((Arc::new(fleet), Arc::new(router)));
        self
    }

    /// The journal and lock: required, so that where deployments are recorded is a choice.
    /// [`FileStore`](crate::FileStore) keeps them across crashes on one machine; an
    /// [`InMemoryStore`](crate::InMemoryStore) is for tests and demos, and loses them with
    /// the process.
    pub fn store(self, store: impl StateStore) -> Self {
        self.store_shared(Arc::new(store))
    }

    /// The journal and lock, shared.
    pub fn store_shared(mut self, store: Arc<dyn StateStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Where halts are read and written, when not in the engine's own store: the store that
    /// every engine of a service shares, across regions and accounts, while each keeps its
    /// deployment records in its own. Default: the engine's store.
    pub fn halts_from(mut self, store: Arc<dyn StateStore>) -> Self {
        self.halts = Some(store);
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

    /// Who this engine says it is in the commands it writes (the CLI passes the operator's
    /// name). Default: the host name and the process id.
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// Builds the engine.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming a missing backend (`images`, `fleet`, `router`), a
    /// missing `store`, or a bad setting.
    pub fn build(self) -> Result<Engine> {
        self.settings.validate()?;
        Notify::validate(&self.notifiers)?;
        let missing = |what: &str| Error::invalid(what, "is required: set it on the builder");
        let store = self.store.ok_or_else(|| {
            Error::invalid(
                "store",
                "is required: a FileStore keeps deployments across crashes, an InMemoryStore \
                 only for this process",
            )
        })?;
        let halts = self.halts.unwrap_or_else(|| Arc::clone(&store));
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| Arc::new(TokioClock::new()));
        let identity = self.identity.unwrap_or_else(default_identity);
        let operator = Operator::new(Arc::clone(&store))
            .halts_from(Arc::clone(&halts))
            .clock(Arc::clone(&clock))
            .settings(self.settings.clone())
            .identity(identity);
        Ok(Engine {
            inner: Arc::new(Inner {
                images: self.images.ok_or_else(|| missing("images"))?,
                fleet: self.fleet.ok_or_else(|| missing("fleet"))?,
                router: self.router.ok_or_else(|| missing("router"))?,
                preview: self.preview,
                scaling: self.scaling,
                adoption: self.adoption,
                halts,
                store,
                operator,
                settings: self.settings,
                clock,
                events: EventBus::default(),
                checks: self.checks,
                strategies: self.strategies,
                notifiers: self.notifiers,
                controls: Mutex::default(),
            }),
        })
    }
}

/// `<host> pid <pid>`: enough to tell engines apart in a shared store.
pub(super) fn default_identity() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!("{host} pid {}", std::process::id())
}
