//! Halts set by any process sharing a store: new deployments refused, running ones hold or roll
//! back at their next poll, wave plans stop (mid-wave with traffic frozen, or mid-bake before
//! the next wave) and go on once lifted, for one service or every service; rollbacks still
//! run; all in virtual time.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::regions::{POLL, Regions, regions, regions_with, v2_request};
use immutable_core::{
    DeploymentRequest, Error, EventKind, FileStore, HaltScope, ImageRef, OnHalt, RollbackCause,
    ServiceName, StateStore, WaveBake, WaveEventKind, WavePlan, WaveReport, WaveRunner, WaveState,
};
use immutable_mock::Op;

/// An operator's engine in another "process": its own cloud, its store the shared FileStore
/// directory opened again.
fn operator(dir: &std::path::Path) -> immutable_core::Engine {
    let cloud = immutable_mock::MockCloud::new();
    immutable_core::Engine::builder()
        .backends(cloud.backends())
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

/// A halt refuses new deployments (and plans show the refusal) without a cloud call, until
/// it is lifted.
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

/// Under `OnHalt::Hold`, a running deployment sees the halt within a poll, makes no weight
/// change while it stands, and finishes once it is lifted.
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

/// Under `OnHalt::RollBack`, a running deployment starts rolling back within a poll of the
/// halt, for the halt as its cause.
#[tokio::test(start_paused = true)]
async fn with_on_halt_roll_back_a_running_deployment_rolls_back_within_a_poll() {
    let (dir, shared) = shared_dir();
    let settings = crate::common::settings().with_on_halt(OnHalt::RollBack);
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

/// Going back is never halted: an operator's rollback runs under a global halt.
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

/// Deploys `request` on `engine`, which a halt must refuse at once (not hold); returns the
/// service refused and the halt that refused it.
async fn refused(
    engine: &immutable_core::Engine,
    request: DeploymentRequest,
) -> (ServiceName, immutable_core::Halt) {
    match tokio::time::timeout(POLL, engine.deploy(request)).await {
        Ok(Err(Error::Halted { service, halt })) => (service, *halt),
        Ok(other) => panic!("expected Halted, got {other:?}"),
        Err(_) => panic!("the deployment was not refused at once"),
    }
}

/// A two-wave plan running (wave 1 in its canary) when an operator's engine in another process
/// halts it, with what the test needs to check it and lift the halt.
struct HaltedWave {
    _dir: tempfile::TempDir,
    world: Regions,
    runner: WaveRunner,
    op: immutable_core::Engine,
    scope: HaltScope,
    report: WaveReport,
}

/// Runs a two-wave plan, halts `scope` while wave 1's deployment holds 10 % of eu-west-1's
/// traffic, and checks what any halt covering the service must do: the runner stops within
/// two polls, wave 2 never starts, eu-west-1's traffic stays at the canary split well past the
/// canary's pause (no weight change, reported or called, after the halt), and new
/// deployments and plans of the service are refused.
async fn halt_a_wave_mid_canary(scope: HaltScope, reason: &str) -> HaltedWave {
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
    let eu = world.get("eu-west-1");
    let weights_set = Arc::new(AtomicUsize::new(0));
    eu.engine.subscribe({
        let weights_set = Arc::clone(&weights_set);
        move |e| {
            if matches!(e.kind, EventKind::WeightsSet { .. }) {
                weights_set.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    until_canary(&world, "eu-west-1").await;
    let op = operator(dir.path());
    op.halt(scope.clone(), reason).await.unwrap();
    // The canary's 60 s pause has just begun: no weight change is due within the next polls.
    let frozen = (
        eu.cloud.snapshot().routing_of(&web()),
        eu.cloud.call_count(Op::SetWeights),
        weights_set.load(Ordering::SeqCst),
    );
    let report = tokio::time::timeout(POLL * 2, run)
        .await
        .expect("the runner stops within two polls of the halt")
        .unwrap()
        .unwrap();
    assert_eq!(report.state, WaveState::Halted);
    let halt = report.record.halt.as_ref().unwrap();
    assert_eq!((&halt.scope, halt.by.as_str()), (&scope, "operator alice"));
    assert!(
        report.record.targets[1][0].deployment.is_none(),
        "wave 2 did not start"
    );
    assert!(
        world
            .events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(&e.kind, WaveEventKind::Halted { halt } if halt.reason == reason))
    );
    // Far past the canary's pause, the halted region's traffic has not moved.
    tokio::time::sleep(Duration::from_secs(180)).await;
    let now = (
        eu.cloud.snapshot().routing_of(&web()),
        eu.cloud.call_count(Op::SetWeights),
        weights_set.load(Ordering::SeqCst),
    );
    assert_eq!(
        now, frozen,
        "(routing, set_weights calls, WeightsSet events) changed after the halt"
    );
    assert!(now.0.weights().values().any(|w| *w == 10), "{}", now.0);
    // New deployments (and new plans) are refused until the halt is lifted.
    let (service, _) = refused(&world.get("us-east-1").engine, v2_request()).await;
    assert_eq!(service, web());
    let again = WavePlan::new(v2_request()).wave("one", ["us-east-1"]);
    assert!(matches!(runner.run(again).await, Err(Error::Halted { .. })));
    let still = runner.resume(&report.record.id).await.unwrap();
    assert_eq!(
        still.state,
        WaveState::Halted,
        "resuming under the halt stays halted"
    );
    HaltedWave {
        _dir: dir,
        world,
        runner,
        op,
        scope,
        report,
    }
}

impl HaltedWave {
    /// Lifts the halt and resumes the plan: it goes on from where it stood to Done.
    async fn lift_and_finish(self) {
        self.op.lift_halt(&self.scope).await.unwrap();
        let done = self.runner.resume(&self.report.record.id).await.unwrap();
        assert_eq!(done.state, WaveState::Done, "{:#?}", done.record.history);
        for name in ["eu-west-1", "us-east-1"] {
            let region = self.world.get(name);
            assert_eq!(self.world.serving(name), region.v2, "{name} serves v2");
        }
    }
}

/// A halt of the service, set from a second engine while a wave deploys, stops the plan at
/// the runner's next poll and freezes the halted region's traffic; lifted, the plan goes on.
#[tokio::test(start_paused = true)]
async fn a_halt_from_a_second_engine_stops_a_running_wave_at_the_next_poll() {
    let scope = HaltScope::service("web").unwrap();
    halt_a_wave_mid_canary(scope, "pager went off")
        .await
        .lift_and_finish()
        .await;
}

/// The halt of every service does all a service's halt does to a running wave, and refuses
/// deployments of any other service too; lifted, the plan goes on.
#[tokio::test(start_paused = true)]
async fn a_global_halt_stops_a_running_wave_and_every_service() {
    let halted = halt_a_wave_mid_canary(HaltScope::All, "region-wide incident").await;
    let api = DeploymentRequest::new("api", ImageRef::name("api-v2"));
    let (service, halt) = refused(&halted.world.get("us-east-1").engine, api).await;
    assert_eq!((service.as_str(), halt.scope), ("api", HaltScope::All));
    halted.lift_and_finish().await;
}

/// An operator's halt set while the plan bakes between wave 1 and wave 2 stops the bake within
/// a poll: no further gate round, wave 2 gets no deployment id and no `WaveStarted`. Lifted,
/// the plan resumes its bake and deploys wave 2.
#[tokio::test(start_paused = true)]
async fn a_halt_during_a_bake_stops_the_plan_before_the_next_wave() {
    let (dir, shared) = shared_dir();
    let world = regions(&["eu-west-1", "us-east-1"], Arc::clone(&shared)).await;
    let runner = world.runner();
    let plan = WavePlan::new(v2_request())
        .wave("one", ["eu-west-1"])
        .wave("two", ["us-east-1"])
        .bake(
            WaveBake::time(Duration::from_secs(600))
                .checks(["gate"])
                .interval(Duration::from_secs(60))
                .min_passes(1),
        );
    let run = tokio::spawn({
        let runner = runner.clone();
        async move { runner.run(plan).await }
    });
    // Two gate rounds into the bake.
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rounds = world
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e.kind, WaveEventKind::GateChecked { .. }))
            .count();
        if rounds == 2 {
            break;
        }
    }
    let us_calls = world.get("us-east-1").cloud.calls().len();
    let op = operator(dir.path());
    let scope = HaltScope::service("web").unwrap();
    op.halt(scope.clone(), "latency regression").await.unwrap();
    let report = tokio::time::timeout(POLL * 2, run)
        .await
        .expect("the bake stops within two polls of the halt")
        .unwrap()
        .unwrap();
    assert_eq!(
        report.state,
        WaveState::Halted,
        "{:#?}",
        report.record.history
    );
    assert_eq!(report.record.wave, 0, "still at wave 1's bake");
    assert!(report.record.bake_until.is_some());
    assert!(
        report.record.targets[1][0].deployment.is_none(),
        "wave 2 got no deployment id"
    );
    let kinds = world.event_kinds();
    assert!(
        !kinds
            .iter()
            .any(|k| matches!(k, WaveEventKind::WaveStarted { wave: 1, .. })),
        "wave 2 did not start: {kinds:#?}"
    );
    let halted = kinds
        .iter()
        .position(|k| matches!(k, WaveEventKind::Halted { .. }))
        .expect("the runner reported the halt");
    assert!(
        !kinds[halted..]
            .iter()
            .any(|k| matches!(k, WaveEventKind::GateChecked { .. })),
        "no gate round after the halt"
    );
    assert_eq!(
        world.get("us-east-1").cloud.calls().len(),
        us_calls,
        "us-east-1 untouched"
    );
    op.lift_halt(&scope).await.unwrap();
    let done = runner.resume(&report.record.id).await.unwrap();
    assert_eq!(done.state, WaveState::Done, "{:#?}", done.record.history);
    assert!(done.record.targets[1][0].deployment.is_some());
    assert!(
        world
            .events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e.kind, WaveEventKind::WaveStarted { wave: 1, .. }))
    );
    assert_eq!(world.serving("us-east-1"), world.get("us-east-1").v2);
}
