//! Several regions, each a mock cloud with its own engine and store, all reading halts from one
//! shared store, and a wave runner over them: the world of the wave and halt tests.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use immutable_core::{
    Check, CheckContext, CheckOutcome, DeploymentRequest, Engine, ImageId, ImageRef, InMemoryStore,
    Settings, StateStore, Step, Steps, WaveEvent, WaveRunner,
};
use immutable_mock::MockCloud;

use super::settings;

pub const POLL: Duration = Duration::from_secs(5);
pub const BAKE: Duration = Duration::from_secs(600);

/// A check whose result the test flips: a metric that goes bad.
#[derive(Debug, Clone, Default)]
pub struct Metric {
    bad: Arc<AtomicBool>,
}

impl Metric {
    pub fn go_bad(&self) {
        self.bad.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl Check for Metric {
    async fn run(&self, _ctx: &CheckContext<'_>) -> CheckOutcome {
        if self.bad.load(Ordering::SeqCst) {
            CheckOutcome::fail("error rate 7.5 % above 1 %")
        } else {
            CheckOutcome::Pass
        }
    }
}

pub struct Region {
    pub cloud: MockCloud,
    pub store: InMemoryStore,
    pub engine: Engine,
    /// The `errors` check of this region's deployments.
    pub errors: Metric,
    pub v1: ImageId,
    pub v2: ImageId,
}

pub struct Regions {
    pub shared: Arc<dyn StateStore>,
    pub regions: BTreeMap<String, Region>,
    pub gate: Metric,
    pub events: Arc<Mutex<Vec<WaveEvent>>>,
}

/// A canary with a check: 10 %, the `errors` check, a pause, 100 %.
pub fn checked_canary() -> Steps {
    Steps::from_steps(
        "checked-canary",
        vec![
            Step::shift(10),
            Step::Checks {
                names: vec!["errors".into()],
            },
            Step::pause(Duration::from_secs(60)),
            Step::shift(100),
        ],
    )
    .unwrap()
}

pub fn v2_request() -> DeploymentRequest {
    DeploymentRequest::new("web", ImageRef::name("web-v2"))
        .capacity(2)
        .min_healthy(2)
        .strategy(checked_canary())
        .bake_time(Duration::from_secs(120))
        .health_timeout(Duration::from_secs(300))
}

/// Regions with web-v1 deployed everywhere, their engines reading halts from `shared`.
pub async fn regions(names: &[&str], shared: Arc<dyn StateStore>) -> Regions {
    regions_with(names, shared, settings()).await
}

pub async fn regions_with(
    names: &[&str],
    shared: Arc<dyn StateStore>,
    settings: Settings,
) -> Regions {
    let mut regions = BTreeMap::new();
    for name in names {
        let region = region(name, &shared, settings.clone());
        let v1 = DeploymentRequest::new("web", ImageRef::name("web-v1"))
            .capacity(2)
            .bake_time(Duration::ZERO);
        assert!(region.engine.deploy(v1).await.unwrap().succeeded());
        regions.insert((*name).to_owned(), region);
    }
    Regions {
        shared,
        regions,
        gate: Metric::default(),
        events: Arc::default(),
    }
}

/// One region's cloud, store and engine (identity `engine <name>`), nothing deployed.
pub fn region(name: &str, shared: &Arc<dyn StateStore>, settings: Settings) -> Region {
    let cloud = MockCloud::new();
    let v1 = cloud.add_image("web", "web-v1");
    let v2 = cloud.add_image("web", "web-v2");
    let store = InMemoryStore::new();
    let errors = Metric::default();
    let engine = Engine::builder()
        .backends(cloud.backends())
        .store(store.clone())
        .halts_from(Arc::clone(shared))
        .settings(settings)
        .check("errors", errors.clone())
        .identity(format!("engine {name}"))
        .build()
        .unwrap();
    Region {
        cloud,
        store,
        engine,
        errors,
        v1,
        v2,
    }
}

impl Regions {
    pub fn get(&self, name: &str) -> &Region {
        &self.regions[name]
    }

    /// A runner over every region's engine, the `gate` check, and the shared store.
    pub fn runner(&self) -> WaveRunner {
        self.runner_on(Arc::clone(&self.shared))
    }

    pub fn runner_on(&self, store: Arc<dyn StateStore>) -> WaveRunner {
        let mut builder = WaveRunner::builder()
            .store_shared(store)
            .poll_interval(POLL)
            .check("gate", self.gate.clone());
        for (name, region) in &self.regions {
            builder = builder.engine(name.clone(), region.engine.clone());
        }
        let runner = builder.build().unwrap();
        let events = Arc::clone(&self.events);
        runner.subscribe(move |e| events.lock().unwrap().push(e.clone()));
        runner
    }

    /// The image of the fleet that takes all of a region's traffic.
    pub fn serving(&self, name: &str) -> ImageId {
        let region = self.get(name);
        let web = immutable_core::ServiceName::new("web").unwrap();
        let snap = region.cloud.snapshot();
        let target = snap
            .routing_of(&web)
            .sole_target()
            .cloned()
            .unwrap_or_else(|| panic!("{name}: no sole target serves"));
        let fleet = &snap.target(&target).unwrap().fleet;
        let live = snap.live_fleets(&web);
        assert_eq!(live.len(), 1, "{name}: expected one live fleet: {live:#?}");
        snap.fleet(fleet).unwrap().image.clone()
    }

    /// The kinds of the wave events seen so far, in order.
    /// The gate rounds of the bake after `wave`, as reported: whether each passed, and the
    /// passes counted so far.
    pub fn gate_rounds(&self, wave: usize) -> Vec<(bool, u32)> {
        self.event_kinds()
            .into_iter()
            .filter_map(|k| match k {
                immutable_core::WaveEventKind::GateChecked {
                    wave: w,
                    passed,
                    passes,
                } if w == wave => Some((passed, passes)),
                _ => None,
            })
            .collect()
    }

    pub fn event_kinds(&self) -> Vec<immutable_core::WaveEventKind> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.kind.clone())
            .collect()
    }

    pub fn event_texts(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.kind.to_string())
            .collect()
    }
}

/// `run`, failing the test if it has not ended within a day of virtual time: a bake that never
/// counted its passes would otherwise bake on for ever.
pub async fn within_a_day<T>(run: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(24 * 3600), run)
        .await
        .expect("the plan did not end within a day")
}
