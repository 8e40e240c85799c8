//! The crash harness on PostgreSQL: a canary deployment journaled in the store is cut after
//! each of its store writes in turn (the write takes effect, then the process is gone: the
//! call never returns, and nothing it would do next reaches the store), and a fresh engine,
//! started later (its clock past the dead run's lease), resumes it. Every run ends as the
//! uninterrupted one does.
//!
//! Real time with instant mock backends, so each run takes milliseconds and writes the same
//! records: no lease is renewed while it runs.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use immutable_core::conformance::{Hooks, StoreCall, StoreHooks};
use immutable_core::{
    Check, CheckContext, CheckOutcome, Clock, DeploymentRequest, Engine, Error, EventKind, ImageId,
    ImageRef, Result, ServiceName, Settings, StateStore, Steps,
};
use immutable_mock::{MockCloud, Timings};
use immutable_postgres::PostgresStore;

use crate::common::store;

#[derive(Debug)]
struct Pass;

#[async_trait]
impl Check for Pass {
    async fn run(&self, _: &CheckContext<'_>) -> CheckOutcome {
        CheckOutcome::Pass
    }
}

/// Counts the writes that took effect; the chosen one never returns, and once it came every
/// call is refused, as by a process that is gone.
#[derive(Debug, Clone, Default)]
struct Crash {
    writes: Arc<Mutex<(usize, Option<usize>)>>,
    crashed: Arc<AtomicBool>,
    at: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl Hooks for Crash {
    async fn before(&self, _: StoreCall<'_>) -> Result<()> {
        if self.crashed.load(Ordering::SeqCst) {
            return Err(Error::store("the deploy tool crashed", None));
        }
        Ok(())
    }

    async fn after(&self, call: StoreCall<'_>) -> Result<()> {
        if !call.is_write() {
            return Ok(());
        }
        let hit = {
            let mut w = self.writes.lock().unwrap();
            w.0 += 1;
            w.1 == Some(w.0)
        };
        if hit {
            self.crashed.store(true, Ordering::SeqCst);
            self.at.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

/// Wall time moved ahead: a process started that much later.
#[derive(Debug, Clone, Copy)]
struct Later(Duration);

impl Clock for Later {
    fn now(&self) -> SystemTime {
        SystemTime::now() + self.0
    }
}

/// What the world looks like at the end; ids made along the way left out.
#[derive(Debug, PartialEq, Eq)]
struct EndState {
    serving_image: Option<ImageId>,
    live_fleets: usize,
    live_instances: usize,
    targets: usize,
    routing_to_the_live_fleet: bool,
    retired_images: BTreeSet<ImageId>,
    unfinished_records: usize,
    records: usize,
}

fn request(image: &str) -> DeploymentRequest {
    DeploymentRequest::new("web", ImageRef::name(image))
        .capacity(2)
        .bake_time(Duration::from_millis(20))
}

fn engine(cloud: &MockCloud, store: impl StateStore, ahead: Duration) -> Engine {
    Engine::builder()
        .backends(cloud.backends())
        .store(store)
        .clock(Later(ahead))
        .settings(
            Settings::default()
                .with_poll_interval(Duration::from_millis(5))
                .with_lease_ttl(Duration::from_secs(60))
                .with_keep_images(2),
        )
        .check("pre", Pass)
        .check("post", Pass)
        .build()
        .unwrap()
}

struct Run {
    end: EndState,
    writes: usize,
    took_over: bool,
}

/// v1 serves; a canary to v2 is cut after store write `cut` (none: uninterrupted), then
/// resumed, or deployed again when the cut came before its record.
async fn run(cut: Option<usize>) -> Run {
    let store: PostgresStore = store("crash").await;
    let cloud = MockCloud::with_timings(Timings::instant());
    for v in ["web-v1", "web-v2", "web-v3"] {
        cloud.add_image("web", v);
    }
    let web = ServiceName::new("web").unwrap();
    let first = engine(&cloud, store.clone(), Duration::ZERO);
    assert!(first.deploy(request("web-v1")).await.unwrap().succeeded());

    let crash = Crash::default();
    crash.writes.lock().unwrap().1 = cut;
    let canary = Steps::canary([10, 50], Duration::from_millis(10)).with_checks(["pre"], ["post"]);
    let doomed = engine(
        &cloud,
        StoreHooks::new(store.clone(), crash.clone()),
        Duration::ZERO,
    );
    let finished = tokio::select! {
        biased;
        _ = crash.at.notified() => None,
        // A call made beside the one that hangs (a command poll) is refused once it hangs.
        r = doomed.deploy(request("web-v2").strategy(canary.clone())) => {
            match r {
                Err(_) if crash.crashed.load(Ordering::SeqCst) => None,
                r => Some(r.unwrap()),
            }
        }
    };
    drop(doomed);
    let writes = crash.writes.lock().unwrap().0;

    let mut took_over = false;
    if finished.is_none() {
        let fresh = engine(&cloud, store.clone(), Duration::from_secs(600));
        let mut events = fresh.events();
        let resumed = fresh.resume_unfinished().await.unwrap();
        let written = store.list(Some(&web)).await.unwrap();
        let planned = written
            .iter()
            .any(|r| r.spec.image == request("web-v2").image);
        match resumed.as_slice() {
            // Cut after its last record (before the lease's release): nothing to do.
            [] if planned => {}
            [] => {
                // Cut before the record was written: the tool deploys again.
                let report = fresh
                    .deploy(request("web-v2").strategy(canary))
                    .await
                    .unwrap();
                assert!(report.succeeded(), "cut {cut:?}: {:?}", report.outcome);
            }
            [(_, report)] => {
                let report = report.as_ref().unwrap();
                assert!(report.succeeded(), "cut {cut:?}: {:?}", report.outcome);
            }
            more => panic!("cut {cut:?}: {} unfinished", more.len()),
        }
        while let Ok(e) = events.try_recv() {
            took_over |= matches!(e.kind, EventKind::LeaseTakenOver { .. });
        }
    }

    let snap = cloud.snapshot();
    let live = snap.live_fleets(&web);
    let serving = snap.routing_of(&web).sole_target().cloned();
    let serving_fleet = serving.and_then(|t| snap.target(&t).map(|t| t.fleet.clone()));
    let records = store.list(Some(&web)).await.unwrap();
    let end = EndState {
        serving_image: live.first().map(|f| f.image.clone()),
        live_fleets: live.len(),
        live_instances: live.iter().map(|f| f.live_instances()).sum(),
        targets: snap.targets_of(&web).len(),
        routing_to_the_live_fleet: live.len() == 1 && serving_fleet.as_ref() == Some(&live[0].id),
        retired_images: snap.retired_images.iter().cloned().collect(),
        unfinished_records: records.iter().filter(|r| !r.phase.is_terminal()).count(),
        records: records.len(),
    };
    Run {
        end,
        writes,
        took_over,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_cut_after_any_store_write_resumes_to_the_same_end_state() {
    let reference = run(None).await;
    assert_eq!(reference.end.live_fleets, 1);
    assert_eq!(reference.end.live_instances, 2);
    assert_eq!(reference.end.targets, 1);
    assert!(reference.end.routing_to_the_live_fleet);
    assert_eq!(reference.end.unfinished_records, 0);
    assert_eq!(reference.end.records, 2);
    assert!(reference.writes > 10, "{} writes", reference.writes);

    let mut takeovers = 0;
    for cut in 1..=reference.writes {
        let crashed = run(Some(cut)).await;
        assert_eq!(
            crashed.end, reference.end,
            "cut after write {cut}: another end state"
        );
        takeovers += usize::from(crashed.took_over);
    }
    assert!(takeovers > 0, "no resume took an expired lease over");
    println!(
        "crash harness on PostgreSQL: cut after each of {} store writes (records, leases, \
         commands) of a canary deployment; every run resumed to the same end state; {takeovers} \
         resumes took over the dead run's lease",
        reference.writes
    );
}
