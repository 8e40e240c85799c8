//! What the load tests of every backend read: when each event came, a warm-up, the
//! zero-downtime assertions, and the negative control's careless router.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use immutable_core::{
    Engine, Event, EventKind, Fleet, FleetInfo, HealthReport, Result, Routing, ServiceName, Target,
    TargetId, TrafficRouter,
};
use immutable_local::{LoadReport, RunningLoad};

/// Records when each event arrived, on the real clock.
#[derive(Debug, Clone, Default)]
pub struct Timeline(Arc<std::sync::Mutex<Vec<(Instant, Event)>>>);

impl Timeline {
    /// Records `engine`'s events from now on.
    pub fn attach(engine: &Engine) -> Timeline {
        let t = Timeline::default();
        let inner = t.clone();
        engine.subscribe(move |e| inner.0.lock().unwrap().push((Instant::now(), e.clone())));
        t
    }

    /// The events so far, with when each came.
    pub fn events(&self) -> Vec<(Instant, Event)> {
        self.0.lock().unwrap().clone()
    }

    /// When the last weight change was made (its call had returned).
    pub fn last_shift(&self) -> Option<Instant> {
        self.events()
            .into_iter()
            .filter(|(_, e)| matches!(e.kind, EventKind::WeightsSet { .. }))
            .map(|(at, _)| at)
            .last()
    }

    /// Prints the events, timed from `since`.
    pub fn print(&self, since: Instant) {
        for (at, e) in self.events() {
            if matches!(e.kind, EventKind::StepFinished { note: None, .. }) {
                continue;
            }
            println!(
                "  [{:>7.3}s] {}",
                at.duration_since(since).as_secs_f64(),
                e.kind
            );
        }
    }
}

/// Waits until the load has served `n` requests (bounded: 10 s).
pub async fn warm_up(load: &RunningLoad, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while load.served() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        load.served() >= n,
        "the load served only {} requests",
        load.served()
    );
}

/// The acceptance assertions: no failed request, and every request sent after `since` was
/// answered by `image`.
pub fn assert_zero_downtime(name: &str, load: &LoadReport, image: &str, since: Instant) {
    let after = load.images_since(since);
    println!("{name}: {}", load.summary());
    println!("{name}: answers to requests sent after the final shift, by image: {after:?}");
    assert_eq!(load.failed(), 0, "{name}: {}", load.summary());
    let (keep_alive, fresh) = load.by_connection_kind();
    assert!(
        keep_alive > 0 && fresh > 0,
        "{name}: both client kinds must have run"
    );
    assert!(
        after.get(image).copied().unwrap_or(0) > 0,
        "{name}: nothing answered after the final shift"
    );
    assert_eq!(
        after.len(),
        1,
        "{name}: after the final shift, answers came from {after:?}, not only {image}"
    );
}

/// Waits (at most 60 s) for an event matching `want`.
pub async fn until_event(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<immutable_core::Event>,
    want: impl Fn(&EventKind) -> bool,
) {
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(e) = events.recv().await {
            if want(&e.kind) {
                return;
            }
        }
    });
    found.await.expect("the event came");
}

/// A router that, once a weight change takes all traffic off a target, terminates that target's
/// fleet at once: what a deploy tool that skips draining does.
#[derive(Debug)]
pub struct KillOnShift<R> {
    /// The router that does the work.
    pub router: R,
    /// The fleets, with a zero grace period: terminate kills the instances at once.
    pub fleet: Arc<dyn Fleet>,
}

#[async_trait]
impl<R: TrafficRouter> TrafficRouter for KillOnShift<R> {
    async fn attach(&self, fleet: &FleetInfo) -> Result<Target> {
        self.router.attach(fleet).await
    }
    async fn targets(&self, service: &ServiceName) -> Result<Vec<Target>> {
        self.router.targets(service).await
    }
    async fn health(&self, service: &ServiceName, target: &TargetId) -> Result<HealthReport> {
        self.router.health(service, target).await
    }
    async fn routing(&self, service: &ServiceName) -> Result<Routing> {
        self.router.routing(service).await
    }
    async fn set_weights(&self, service: &ServiceName, routing: &Routing) -> Result<()> {
        let before = self.router.routing(service).await?;
        let targets = self.router.targets(service).await?;
        self.router.set_weights(service, routing).await?;
        for target in targets {
            if before.weight(&target.id) > 0 && routing.weight(&target.id) == 0 {
                self.fleet.terminate(service, &target.fleet).await?;
            }
        }
        Ok(())
    }
    async fn detach(&self, service: &ServiceName, target: &TargetId) -> Result<()> {
        self.router.detach(service, target).await
    }
}
