//! Halts set by any process sharing a store: new deployments refused, running ones hold or roll
//! back at their next poll, wave plans stop, rollbacks still run; all in virtual time.

#![allow(clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::regions::{POLL, Regions, regions, regions_with, v2_request};
use immutable_core::{
    Error, EventKind, FileStore, HaltScope, OnHalt, RollbackCause, ServiceName, StateStore,
    WaveBake, WaveEventKind, WavePlan, WaveState,
};

/// An operator's engine in another "process": its own cloud, its store the shared FileStore
/// directory opened again.
fn operator(dir: &std::path::Path) -> immutable_core::Engine {
    let cloud = immutable_mock::MockCloud::new();
    immutable_core::Engine::builder()
        .images(cloud.clone())
        .fleet(cloud.clone())
        .router(cloud)
        .store(FileStore::open(dir).unwrap())
        .identity("operator alice")
        .build()
        .unwrap()
}

fn shared_dir() -> (tempfile::TempDir, Arc<dyn StateStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn StateStore> = Arc::new(FileStore::open(dir.path()).unwrap());
    (dir, store)
}

fn web() -> ServiceName {
    ServiceName::new("web").unwrap()
}

/// Waits (in virtual time) until `region`'s deployment has reached 10 % of traffic.
async fn until_canary(world: &Regions, region: &str) {
    for _ in 0..1000 {
        let weights = world.get(region).cloud.snapshot().routing_of(&web());
        if weights.weights().values().any(|w| *w == 10) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("{region} never reached 10 %");
}

#[tokio::test(start_paused = true)]
async fn a_halted_service_refuses_new_deployments_until_lifted() {
    let (dir, shared) = shared_dir();
    let world = regions(&["eu-west-1"], shared).await;
    let eu = world.get("eu-west-1");
    let halt = operator(dir.path())
        .halt(HaltScope::All, "incident 4711")
        .await
        .unwrap();
    assert_eq!(halt.by, "operator alice");
    let before = eu.cloud.calls().len();
    match eu.engine.deploy(v2_request()).await {
        Err(Error::Halted { service, halt }) => {
            assert_eq!(service, web());
            assert_eq!(halt.reason, "incident 4711");
            assert_eq!(halt.scope, HaltScope::All);
        }
        other => panic!("expected Halted, got {other:?}"),
    }
    assert_eq!(eu.cloud.calls().len(), before, "nothing was called");
    let plan = eu.engine.plan(v2_request()).await.unwrap();
    assert!(!plan.would_run());
    assert!(
        plan.refusals.iter().any(
            |r| matches!(r, immutable_core::Refusal::Halted { halt } if halt.by == "operator alice")
        ),
        "{:?}",
        plan.refusals
    );
    let lifted = operator(dir.path())
        .lift_halt(&HaltScope::All)
        .await
        .unwrap();
    assert_eq!(lifted.map(|h| h.reason).as_deref(), Some("incident 4711"));
    assert!(eu.engine.deploy(v2_request()).await.unwrap().succeeded());
}

#[tokio::test(start_paused = true)]
async fn a_running_deployment_holds_at_the_next_poll_and_goes_on_once_lifted() {
    let (dir, shared) = shared_dir();
    let world = regions(&["eu-west-1"], shared).await;
    let engine = world.get("eu-west-1").engine.clone();
    let mut events = engine.events();
    let run = tokio::spawn(async move { engine.deploy(v2_request()).await });
    until_canary(&world, "eu-west-1").await;
    let op = operator(dir.path());
    op.halt(HaltScope::service("web").unwrap(), "error budget burnt")
        .await
        .unwrap();
    let mut seen = Vec::new();
    // Within one poll (and a second for the mock's calls) the deployment has seen it.
    tokio::time::sleep(POLL + Duration::from_secs(1)).await;
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    let halted = seen
        .iter()
        .position(|e| matches!(e.kind, EventKind::Halted { .. }))
        .expect("the deployment saw the halt within a poll");
    // Far past the 60 s pause: a held deployment makes no weight change.
    tokio::time::sleep(Duration::from_secs(600)).await;
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    assert!(
        !seen[halted..]
            .iter()
            .any(|e| matches!(e.kind, EventKind::WeightsSet { .. })),
        "no weight change after the halt"
    );
    let now = world.get("eu-west-1").cloud.snapshot();
    assert!(now.routing_of(&web()).weights().values().any(|w| *w == 10));
    match &seen[halted].kind {
        EventKind::Halted {
            by, reason, policy, ..
        } => {
            assert_eq!(by, "operator alice");
            assert_eq!(reason, "error budget burnt");
            assert_eq!(*policy, OnHalt::Hold);
        }
        _ => unreachable!(),
    }
    op.lift_halt(&HaltScope::service("web").unwrap())
        .await
        .unwrap();
    let report = run.await.unwrap().unwrap();
    assert!(report.succeeded());
    assert_eq!(world.serving("eu-west-1"), world.get("eu-west-1").v2);
}

#[tokio::test(start_paused = true)]
async fn with_on_halt_roll_back_a_running_deployment_rolls_back_within_a_poll() {
    let (dir, shared) = shared_dir();
    let settings = common::settings().with_on_halt(OnHalt::RollBack);
    let world = regions_with(&["eu-west-1"], shared, settings).await;
    let engine = world.get("eu-west-1").engine.clone();
    let mut events = engine.events();
    let run = tokio::spawn(async move { engine.deploy(v2_request()).await });
    until_canary(&world, "eu-west-1").await;
    let start = tokio::time::Instant::now();
    operator(dir.path())
        .halt(
            HaltScope::service("web").unwrap(),
            "bad metrics in us-east-1",
        )
        .await
        .unwrap();
    tokio::time::sleep(POLL + Duration::from_secs(1)).await;
    let mut started = false;
    while let Ok(e) = events.try_recv() {
        started |= matches!(e.kind, EventKind::RollbackStarted { .. });
    }
    assert!(started, "the rollback began within a poll of the halt");
    let report = run.await.unwrap().unwrap();
    let waited = start.elapsed();
    match report.outcome {
        immutable_core::Outcome::RolledBack {
            cause: RollbackCause::Halted { by, reason },
        } => {
            assert_eq!(by, "operator alice");
            assert_eq!(reason, "bad metrics in us-east-1");
        }
        other => panic!("expected a rollback for the halt, got {other:?}"),
    }
    // The halt is read every poll; the rollback itself takes the mock's drain time.
    println!("rolled back {waited:?} after the halt (poll {POLL:?})");
    assert_eq!(world.serving("eu-west-1"), world.get("eu-west-1").v1);
}

#[tokio::test(start_paused = true)]
async fn an_operator_rollback_runs_under_a_halt() {
    let (dir, shared) = shared_dir();
    let world = regions(&["eu-west-1"], shared).await;
    let eu = world.get("eu-west-1");
    assert!(eu.engine.deploy(v2_request()).await.unwrap().succeeded());
    operator(dir.path())
        .halt(HaltScope::All, "freeze")
        .await
        .unwrap();
    let back = eu.engine.rollback("web").await.unwrap();
    assert!(matches!(back, immutable_core::RollbackReport::Redeployed(r) if r.succeeded()));
    assert_eq!(world.serving("eu-west-1"), eu.v1);
}

#[tokio::test(start_paused = true)]
async fn a_halt_from_a_second_engine_stops_a_running_wave_at_the_next_poll() {
    let (dir, shared) = shared_dir();
    let world = regions(&["eu-west-1", "us-east-1"], Arc::clone(&shared)).await;
    let runner = world.runner();
    let plan = WavePlan::new(v2_request())
        .wave("one", ["eu-west-1"])
        .wave("two", ["us-east-1"])
        .bake(WaveBake::time(Duration::from_secs(300)));
    let run = tokio::spawn({
        let runner = runner.clone();
        async move { runner.run(plan).await }
    });
    until_canary(&world, "eu-west-1").await;
    let op = operator(dir.path());
    op.halt(HaltScope::service("web").unwrap(), "pager went off")
        .await
        .unwrap();
    let halted_at = tokio::time::Instant::now();
    let report = run.await.unwrap().unwrap();
    assert!(
        halted_at.elapsed() <= POLL * 2,
        "the runner stopped {:?} after the halt",
        halted_at.elapsed()
    );
    assert_eq!(report.state, WaveState::Halted);
    assert_eq!(report.record.halt.as_ref().unwrap().by, "operator alice");
    assert!(
        report.record.targets[1][0].deployment.is_none(),
        "wave 2 did not start"
    );
    assert!(world.events.lock().unwrap().iter().any(
        |e| matches!(&e.kind, WaveEventKind::Halted { halt } if halt.reason == "pager went off")
    ));
    // New deployments (and new plans) are refused until the halt is lifted.
    let us = world.get("us-east-1");
    assert!(matches!(
        us.engine.deploy(v2_request()).await,
        Err(Error::Halted { .. })
    ));
    let again = WavePlan::new(v2_request()).wave("one", ["us-east-1"]);
    assert!(matches!(runner.run(again).await, Err(Error::Halted { .. })));
    let still = runner.resume(&report.record.id).await.unwrap();
    assert_eq!(
        still.state,
        WaveState::Halted,
        "resuming under the halt stays halted"
    );
    op.lift_halt(&HaltScope::service("web").unwrap())
        .await
        .unwrap();
    let done = runner.resume(&report.record.id).await.unwrap();
    assert_eq!(done.state, WaveState::Done, "{:#?}", done.record.history);
    assert_eq!(world.serving("eu-west-1"), world.get("eu-west-1").v2);
    assert_eq!(world.serving("us-east-1"), us.v2);
}
