//! What the load tests read: when each event came, a warm-up, and the zero-downtime
//! assertions (the same as the local backend's).
#![allow(dead_code, unreachable_pub, clippy::print_stdout)]

use std::time::{Duration, Instant};

use immutable_core::{Engine, Event, EventKind};
use immutable_local::RunningLoad;

/// Records when each event arrived, on the real clock.
#[derive(Debug, Clone, Default)]
pub struct Timeline(std::sync::Arc<std::sync::Mutex<Vec<(Instant, Event)>>>);

impl Timeline {
    pub fn attach(engine: &Engine) -> Timeline {
        let t = Timeline::default();
        let inner = t.clone();
        engine.subscribe(move |e| inner.0.lock().unwrap().push((Instant::now(), e.clone())));
        t
    }

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
pub fn assert_zero_downtime(
    name: &str,
    load: &immutable_local::LoadReport,
    image: &str,
    since: Instant,
) {
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
