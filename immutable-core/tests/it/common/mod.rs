//! A mock world for engine tests, and the invariant checks they share.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use immutable_core::{
    DeploymentRequest, Engine, EngineBuilder, Event, FleetId, ImageId, ImageRef, InMemoryStore,
    Phase, RetryPolicy, ServiceName, Settings, StateStore,
};
use immutable_mock::{MockCloud, Snapshot, Timings};

pub const CAPACITY: u32 = 3;
/// The phases a deployment that succeeds walks, in order.
pub const SUCCESS_PHASES: [Phase; 8] = [
    Phase::Plan,
    Phase::Provision,
    Phase::Attach,
    Phase::AwaitHealthy,
    Phase::Rollout,
    Phase::Bake,
    Phase::Retire,
    Phase::Done,
];
pub const MIN_HEALTHY: u32 = 2;

pub struct World {
    pub cloud: MockCloud,
    pub store: InMemoryStore,
    pub engine: Engine,
    /// Same cloud and store, but retention keeps every image: deploying v1 with it leaves
    /// web-v0 for the v2 deployment to retire.
    pub setup_engine: Engine,
    pub web: ServiceName,
    /// web-v0 .. web-v3, oldest first.
    pub images: Vec<ImageId>,
    pub foreign_image: ImageId,
    pub foreign_fleet: FleetId,
    pub events: Arc<Mutex<Vec<Event>>>,
    /// Invariant violations seen by the watcher after any event.
    pub violations: Arc<Mutex<Vec<String>>>,
}

/// Quick polls, two images kept, and seeded jitter, so that retry timings repeat.
pub fn settings() -> Settings {
    Settings::default()
        .with_poll_interval(Duration::from_secs(5))
        .with_keep_images(2)
        .with_retry(RetryPolicy::default().with_jitter_seed(1))
        .with_cleanup_retry(
            RetryPolicy::default()
                .with_max_attempts(10)
                .with_jitter_seed(2),
        )
}

pub fn world() -> World {
    world_with(settings(), Timings::default())
}

/// A cloud with images web-v0 .. web-v3 of "web", and another team's untagged image and
/// fleet (which the SDK must never touch).
pub struct Seeded {
    pub cloud: MockCloud,
    pub images: Vec<ImageId>,
    pub foreign_image: ImageId,
    pub foreign_fleet: FleetId,
}

pub fn seeded_cloud(timings: Timings) -> Seeded {
    let cloud = MockCloud::with_timings(timings);
    let images = (0..4)
        .map(|i| cloud.add_image("web", &format!("web-v{i}")))
        .collect();
    let foreign_image = cloud.add_foreign_image("team-b-base");
    let foreign_fleet = cloud.add_foreign_fleet(&foreign_image, 2);
    Seeded {
        cloud,
        images,
        foreign_image,
        foreign_fleet,
    }
}

pub fn world_with(settings: Settings, timings: Timings) -> World {
    let Seeded {
        cloud,
        images,
        foreign_image,
        foreign_fleet,
    } = seeded_cloud(timings);
    let store = InMemoryStore::new();
    let build = |settings: Settings| {
        builder_on(&cloud, store.clone())
            .settings(settings)
            .build()
            .unwrap()
    };
    let setup_engine = build(settings.clone().with_keep_images(100));
    let engine = build(settings);
    let events = Arc::new(Mutex::new(Vec::new()));
    let web = ServiceName::new("web").unwrap();
    {
        let events = Arc::clone(&events);
        engine.subscribe(move |e| events.lock().unwrap().push(e.clone()));
    }
    let violations = watch(&engine, &cloud, &web);
    World {
        cloud,
        store,
        engine,
        setup_engine,
        web,
        images,
        foreign_image,
        foreign_fleet,
        events,
        violations,
    }
}

/// An engine builder over the mock cloud and `store`, with the tests' settings: the one way
/// the engine tests build engines.
pub fn builder_on(cloud: &MockCloud, store: impl StateStore) -> EngineBuilder {
    Engine::builder()
        .backends(cloud.backends())
        .store(store)
        .settings(settings())
}

pub fn request(version: u32) -> DeploymentRequest {
    DeploymentRequest::new("web", ImageRef::name(format!("web-v{version}")))
        .capacity(CAPACITY)
        .min_healthy(MIN_HEALTHY)
        .bake_time(Duration::from_secs(60))
        .health_timeout(Duration::from_secs(300))
}

/// The one invariant watcher of the engine tests: after every event of `engine`,
///
/// - I1: every target whose share of traffic grew since the last event (in either direction,
///   forward or back) has `MIN_HEALTHY` healthy instances;
/// - I2: every target that takes traffic exists and its fleet has a live instance.
///
/// Violations are collected, with the event after which they were seen.
pub fn watch(engine: &Engine, cloud: &MockCloud, web: &ServiceName) -> Arc<Mutex<Vec<String>>> {
    let violations = Arc::new(Mutex::new(Vec::new()));
    let (cloud, web, found) = (cloud.clone(), web.clone(), Arc::clone(&violations));
    let last = Mutex::new(cloud.snapshot().routing_of(&web));
    engine.subscribe(move |e| {
        let snap = cloud.snapshot();
        let routing = snap.routing_of(&web);
        let mut last = last.lock().unwrap();
        let mut problems = Vec::new();
        for (target, weight) in routing.weights() {
            match snap.target(target) {
                None => problems.push(format!("I2: {target} takes {weight}% but was detached")),
                Some(t) if snap.fleet(&t.fleet).is_none_or(|f| !f.is_live()) => problems.push(
                    format!("I2: {target} takes {weight}% but its fleet is terminated"),
                ),
                Some(t) if *weight > last.weight(target) && t.healthy < MIN_HEALTHY as usize => {
                    problems.push(format!(
                        "I1: traffic moved to {target} ({}% -> {weight}%) with {} healthy",
                        last.weight(target),
                        t.healthy
                    ))
                }
                _ => {}
            }
        }
        *last = routing;
        let mut found = found.lock().unwrap();
        found.extend(
            problems
                .into_iter()
                .map(|p| format!("after {}: {p}", e.kind)),
        );
    });
    violations
}

/// I1 and I2 at one instant: every target that takes traffic exists, its fleet is live, and
/// it has `MIN_HEALTHY` healthy instances.
pub fn serving_invariants(snap: &Snapshot, web: &ServiceName) -> Result<(), String> {
    for (target, weight) in snap.routing_of(web).weights() {
        let Some(t) = snap.target(target) else {
            return Err(format!(
                "I2: target {target} takes {weight}% but was detached"
            ));
        };
        let live = snap.fleet(&t.fleet).map_or(0, |f| f.live_instances());
        if live == 0 {
            return Err(format!(
                "I2: target {target} takes {weight}% but its fleet is terminated"
            ));
        }
        if t.healthy < MIN_HEALTHY as usize {
            return Err(format!(
                "I1: target {target} takes {weight}% with {} healthy instances",
                t.healthy
            ));
        }
    }
    Ok(())
}

impl World {
    /// A builder for another engine on this world's cloud and store.
    pub fn builder(&self) -> EngineBuilder {
        builder_on(&self.cloud, self.store.clone())
    }

    /// The target that takes all of the service's traffic now.
    pub fn serving_target(&self) -> immutable_core::TargetId {
        self.cloud
            .snapshot()
            .routing_of(&self.web)
            .sole_target()
            .expect("one target serves")
            .clone()
    }

    pub fn take_events(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }

    /// I3 and I6 once a deployment has ended, plus I1/I2 as watched all along: exactly one
    /// fleet of the service is live, it alone takes all traffic, its target is the service's
    /// only target, and the foreign fleet and image are untouched.
    pub fn assert_settled(&self, image: &ImageId) {
        let snap = self.cloud.snapshot();
        let violations = self.violations.lock().unwrap().clone();
        assert!(
            violations.is_empty(),
            "invariants broken during the run: {violations:#?}"
        );
        serving_invariants(&snap, &self.web).unwrap();
        let live = snap.live_fleets(&self.web);
        assert_eq!(
            live.len(),
            1,
            "I3: expected one live fleet, found {live:#?}"
        );
        assert_eq!(&live[0].image, image, "the live fleet runs the wrong image");
        assert_eq!(live[0].live_instances(), CAPACITY as usize);
        let targets = snap.targets_of(&self.web);
        assert_eq!(
            targets.len(),
            1,
            "I3: expected one target, found {targets:#?}"
        );
        assert_eq!(targets[0].fleet, live[0].id);
        let routing = snap.routing_of(&self.web);
        assert_eq!(
            routing.sole_target(),
            Some(&targets[0].id),
            "I3: routing is {routing}"
        );
        self.assert_foreign_untouched(&snap);
    }

    pub fn assert_foreign_untouched(&self, snap: &Snapshot) {
        let foreign = snap.fleet(&self.foreign_fleet).unwrap();
        assert_eq!(
            foreign.live_instances(),
            2,
            "I6: the foreign fleet was touched"
        );
        assert!(
            snap.images.iter().any(|i| i.id == self.foreign_image),
            "I6: the foreign image was retired"
        );
    }
}
pub mod regions;
