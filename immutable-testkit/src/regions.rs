//! Regions of a wave plan on the real clock: each an instant mock cloud with web-v1 serving,
//! its engine reading halts from one shared store. The metric-check tests (Prometheus,
//! CloudWatch) gate waves over them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use immutable_core::{
    Check, DeploymentRequest, Engine, ImageId, ImageRef, InMemoryStore, Outcome, Report,
    RollbackCause, ServiceName, Settings, StateStore, Steps, WaveEvent, WaveEventKind,
};
use immutable_mock::{MockCloud, Timings};

/// One region of a wave plan: an instant mock cloud with web-v1 serving, and its engine.
pub struct Region {
    /// The region's name, also its engine's name in the plan.
    pub name: &'static str,
    /// Its cloud.
    pub cloud: MockCloud,
    /// Its engine (identity `engine <name>`), polling every 50 ms.
    pub engine: Engine,
    /// web-v1, serving.
    pub v1: ImageId,
    /// web-v2, not deployed.
    pub v2: ImageId,
}

impl Region {
    /// The image of the one live fleet of `web`.
    pub fn serving(&self) -> ImageId {
        let web = ServiceName::new("web").unwrap();
        let snap = self.cloud.snapshot();
        let live = snap.live_fleets(&web);
        assert_eq!(live.len(), 1, "{}: one live fleet: {live:#?}", self.name);
        live[0].image.clone()
    }
}

/// Regions with web-v1 deployed, their engines reading halts from `shared`.
pub async fn regions(names: [&'static str; 2], shared: &Arc<dyn StateStore>) -> Vec<Region> {
    let mut regions = Vec::new();
    for name in names {
        let cloud = MockCloud::with_timings(Timings::instant());
        let v1 = cloud.add_image("web", "web-v1");
        let v2 = cloud.add_image("web", "web-v2");
        let engine = Engine::builder()
            .backends(cloud.backends())
            .store(InMemoryStore::new())
            .halts_from(Arc::clone(shared))
            .settings(Settings::default().with_poll_interval(Duration::from_millis(50)))
            .identity(format!("engine {name}"))
            .build()
            .unwrap();
        let first = engine.deploy(web("web-v1")).await.unwrap();
        assert!(first.succeeded(), "{name}: {:?}", first.outcome);
        regions.push(Region {
            name,
            cloud,
            engine,
            v1,
            v2,
        });
    }
    regions
}

/// One instant mock cloud with web-v1 and web-v2, and an engine whose canary (`first` %, then
/// 100 %, 100 ms pauses) runs one check after every shift: what a metric check gates.
pub struct GatedCanary {
    /// The cloud.
    pub cloud: MockCloud,
    /// The engine, polling every 100 ms.
    pub engine: Engine,
    canary: Steps,
}

impl GatedCanary {
    /// The cloud and its engine, with `check` registered as `name`.
    pub fn new(name: &str, check: impl Check, first: u32) -> GatedCanary {
        let cloud = MockCloud::with_timings(Timings::instant());
        cloud.add_image("web", "web-v1");
        cloud.add_image("web", "web-v2");
        let engine = Engine::builder()
            .backends(cloud.backends())
            .settings(Settings::default().with_poll_interval(Duration::from_millis(100)))
            .check(name, check)
            .store(InMemoryStore::new())
            .build()
            .unwrap();
        let canary = Steps::canary([first, 100], Duration::from_millis(100))
            .with_checks(Vec::<String>::new(), [name]);
        GatedCanary {
            cloud,
            engine,
            canary,
        }
    }

    /// Deploys `image` with the gated canary.
    pub async fn deploy(&self, image: &str) -> Report {
        let request = web(image).strategy(self.canary.clone());
        self.engine.deploy(request).await.unwrap()
    }
}

/// The reason `report` rolled back for: the check `check` failing at `weight` %; panics on any
/// other outcome.
pub fn failed_check(report: &Report, check: &str, weight: u32) -> String {
    match &report.outcome {
        Outcome::RolledBack {
            cause:
                RollbackCause::CheckFailed {
                    check: failed,
                    weight: at,
                    reason,
                },
        } => {
            assert_eq!((failed.as_str(), *at), (check, weight));
            reason.clone()
        }
        other => panic!("expected a rollback on check {check} at {weight} %: {other:?}"),
    }
}

/// `web` at `image`: capacity 2, no bake.
pub fn web(image: &str) -> DeploymentRequest {
    DeploymentRequest::new("web", ImageRef::name(image))
        .capacity(2)
        .bake_time(Duration::ZERO)
}

/// Whether each gate round of the first wave's bake passed, in order.
pub fn gate_rounds(events: &Mutex<Vec<WaveEvent>>) -> Vec<bool> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e.kind {
            WaveEventKind::GateChecked {
                wave: 0, passed, ..
            } => Some(passed),
            _ => None,
        })
        .collect()
}
