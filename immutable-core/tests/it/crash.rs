//! Crash safety: a canary deployment cut off after every backend call and after every record
//! write, then resumed by a fresh engine, ends exactly like an uninterrupted one (I4), leaks
//! nothing (I3), and never breaks I1, I2 or I6 on the way.
#![allow(clippy::print_stdout)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use async_trait::async_trait;
use immutable_core::conformance::{Hooks, StoreCall, StoreHooks};
use immutable_core::{
    Check, CheckContext, CheckOutcome, Engine, Error, EventKind, ImageId, InMemoryStore, Result,
    ServiceName, StateStore, Steps,
};
use immutable_mock::{MockCloud, Timings};

#[derive(Debug)]
struct Pass;

#[async_trait]
impl Check for Pass {
    async fn run(&self, _: &CheckContext<'_>) -> CheckOutcome {
        CheckOutcome::Pass
    }
}

/// A store whose n-th write (record save, lease acquire, renew or release, command) takes
/// effect and then never returns.
pub(crate) type CrashingStore = StoreHooks<InMemoryStore, Crash>;

/// The hooks of a [`CrashingStore`]: they count writes and hang after the chosen one.
#[derive(Debug, Clone)]
pub(crate) struct Crash {
    saves: Arc<Mutex<(usize, Option<usize>)>>,
    crashed: Arc<tokio::sync::watch::Sender<bool>>,
}

pub(crate) fn crashing_store() -> CrashingStore {
    StoreHooks::new(
        InMemoryStore::new(),
        Crash {
            saves: Arc::default(),
            crashed: Arc::new(tokio::sync::watch::Sender::new(false)),
        },
    )
}

impl Crash {
    pub(crate) fn crash_after_write(&self, n: usize) {
        let mut s = self.saves.lock().unwrap();
        s.1 = Some(s.0 + n);
    }

    pub(crate) fn writes(&self) -> usize {
        self.saves.lock().unwrap().0
    }

    pub(crate) async fn crashed(&self) {
        let _ = self.crashed.subscribe().wait_for(|c| *c).await;
    }
}

#[async_trait]
impl Hooks for Crash {
    /// Counts a write that took effect, and hangs if it is the chosen one.
    async fn after(&self, call: StoreCall<'_>) -> Result<()> {
        if !call.is_write() {
            return Ok(());
        }
        let crash = {
            let mut s = self.saves.lock().unwrap();
            s.0 += 1;
            let hit = s.1 == Some(s.0);
            if hit {
                s.1 = None;
            }
            hit
        };
        if crash {
            self.crashed.send_replace(true);
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum CrashPoint {
    AfterCall(usize),
    AfterWrite(usize),
}

/// What the world looks like at the end; ids of things created along the way are left out.
#[derive(Debug, PartialEq, Eq)]
struct EndState {
    serving_image: ImageId,
    live_fleets: usize,
    live_instances: usize,
    targets: usize,
    routing_to_serving_fleet: bool,
    images: BTreeSet<ImageId>,
    retired_images: BTreeSet<ImageId>,
    previews: usize,
    unfinished_records: usize,
}

fn engine(cloud: &MockCloud, store: &CrashingStore, keep: usize) -> Engine {
    builder_on(cloud, store.clone())
        .settings(settings().with_keep_images(keep))
        .check("pre", Pass)
        .check("post", Pass)
        .build()
        .unwrap()
}

fn watch(
    engine: &Engine,
    cloud: &MockCloud,
    web: &ServiceName,
    violations: &Arc<Mutex<Vec<String>>>,
) {
    let (cloud, web, violations) = (cloud.clone(), web.clone(), violations.clone());
    engine.subscribe(move |e| {
        if let Err(v) = serving_invariants(&cloud.snapshot(), &web) {
            violations
                .lock()
                .unwrap()
                .push(format!("after {}: {v}", e.kind));
        }
    });
}

struct Run {
    end: EndState,
    calls: usize,
    writes: usize,
    took_over: bool,
}

async fn run(crash: Option<CrashPoint>) -> Run {
    let Seeded {
        cloud,
        images,
        foreign_image,
        foreign_fleet,
    } = seeded_cloud(Timings::default());
    let store = crashing_store();
    let web = ServiceName::new("web").unwrap();
    let violations = Arc::new(Mutex::new(Vec::new()));

    assert!(
        engine(&cloud, &store, 100)
            .deploy(request(1))
            .await
            .unwrap()
            .succeeded()
    );
    cloud.clear_calls();
    let writes_before = store.hooks().writes();

    let canary =
        Steps::canary([10, 50, 100], Duration::from_secs(300)).with_checks(["pre"], ["post"]);
    let first = engine(&cloud, &store, 2);
    watch(&first, &cloud, &web, &violations);
    match crash {
        Some(CrashPoint::AfterCall(n)) => cloud.crash_after_call(n),
        Some(CrashPoint::AfterWrite(n)) => store.hooks().crash_after_write(n),
        None => {}
    }
    let finished = tokio::select! {
        r = first.deploy(request(2).strategy(canary.clone())) => Some(r.unwrap()),
        _ = cloud.crashed() => None,
        _ = store.hooks().crashed() => None,
    };
    drop(first);

    let mut took_over = false;
    if finished.is_none() {
        // A fresh engine, as after a restart, picks the work up.
        let second = engine(&cloud, &store, 2);
        watch(&second, &cloud, &web, &violations);
        let events = second.events();
        loop {
            let unfinished = store.inner().list(Some(&web)).await.unwrap();
            let resumed = if unfinished.iter().any(|r| !r.phase.is_terminal()) {
                second
                    .resume_unfinished()
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(_, r)| r.map(|_| ()))
                    .collect()
            } else if unfinished
                .iter()
                .filter(|r| r.spec.image == request(2).image)
                .count()
                == 0
            {
                // The crash came before the record was written: the tool deploys again.
                vec![
                    second
                        .deploy(request(2).strategy(canary.clone()))
                        .await
                        .map(|_| ()),
                ]
            } else {
                vec![]
            };
            match resumed.iter().find(|r| r.is_err()) {
                Some(Err(Error::Locked { .. })) => {
                    // The dead run's lease: wait it out.
                    tokio::time::sleep(settings().lease_ttl).await;
                }
                Some(Err(e)) => panic!("{crash:?}: resume failed: {e}"),
                _ => break,
            }
        }
        let mut events = events;
        while let Ok(e) = events.try_recv() {
            took_over |= matches!(e.kind, EventKind::LeaseTakenOver { .. });
        }
    }

    let snap = cloud.snapshot();
    let violations = violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "{crash:?}: {violations:#?}");
    let live = snap.live_fleets(&web);
    let serving = snap.routing_of(&web).sole_target().cloned();
    let serving_fleet = serving
        .as_ref()
        .and_then(|t| snap.target(t))
        .map(|t| t.fleet.clone());
    let foreign = snap.fleet(&foreign_fleet).unwrap();
    assert_eq!(
        foreign.live_instances(),
        2,
        "{crash:?}: I6: the foreign fleet was touched"
    );
    assert!(
        snap.images.iter().any(|i| i.id == foreign_image),
        "{crash:?}: I6"
    );
    let end = EndState {
        serving_image: live
            .first()
            .map(|f| f.image.clone())
            .unwrap_or_else(|| images[0].clone()),
        live_fleets: live.len(),
        live_instances: live.iter().map(|f| f.live_instances()).sum(),
        targets: snap.targets_of(&web).len(),
        routing_to_serving_fleet: live.len() == 1 && serving_fleet.as_ref() == Some(&live[0].id),
        images: snap
            .images
            .iter()
            .filter(|i| i.service.is_some())
            .map(|i| i.id.clone())
            .collect(),
        retired_images: snap.retired_images.iter().cloned().collect(),
        previews: snap.previews.len(),
        unfinished_records: store
            .inner()
            .list(None)
            .await
            .unwrap()
            .iter()
            .filter(|r| !r.phase.is_terminal())
            .count(),
    };
    Run {
        end,
        calls: cloud.calls().len(),
        writes: store.hooks().writes() - writes_before,
        took_over,
    }
}

#[tokio::test(start_paused = true)]
async fn a_crash_at_any_call_or_write_resumes_to_the_same_end_state() {
    let reference = run(None).await;
    assert_eq!(reference.end.live_fleets, 1);
    assert_eq!(reference.end.live_instances, CAPACITY as usize);
    assert_eq!(reference.end.targets, 1);
    assert!(reference.end.routing_to_serving_fleet);
    assert_eq!(reference.end.unfinished_records, 0);
    assert!(
        reference.calls > 30 && reference.writes > 10,
        "{} calls, {} saves",
        reference.calls,
        reference.writes
    );

    let mut points = Vec::new();
    points.extend((1..=reference.calls).map(CrashPoint::AfterCall));
    points.extend((1..=reference.writes).map(CrashPoint::AfterWrite));
    let mut takeovers = 0;
    for point in &points {
        let crashed = run(Some(*point)).await;
        assert_eq!(
            crashed.end, reference.end,
            "{point:?}: I4: a different end state"
        );
        takeovers += usize::from(crashed.took_over);
    }
    assert!(takeovers > 0, "no resume ever took an expired lease over");
    println!(
        "crash points covered: {} ({} backend calls, {} store writes: records and leases); {takeovers} resumes took over an expired lease",
        points.len(),
        reference.calls,
        reference.writes
    );
}
