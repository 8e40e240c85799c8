//! Wave plans on the mock, in virtual time: waves in order with bakes, bake gates that count
//! their passes (enough of them start the next wave; a bake short of them bakes on), a failure that
//! halts the rest and rolls back what was done (newest first), bad plans refused before any call.

use std::sync::Arc;
use std::time::Duration;

use crate::common::regions::{BAKE, Regions, regions, v2_request, within_a_day};
use immutable_core::{
    Error, HaltScope, InMemoryStore, OnWaveFailure, Origin, StateStore, TargetOutcome, WaveBake,
    WaveEventKind, WavePlan, WaveState, WaveTarget,
};

const NAMES: [&str; 4] = ["eu-west-1", "us-east-1", "ap-south-1/a", "ap-south-1/b"];

fn plan() -> WavePlan {
    WavePlan::new(v2_request())
        .wave("canary", ["eu-west-1"])
        .wave("americas", ["us-east-1"])
        .wave("asia", ["ap-south-1/a", "ap-south-1/b"])
        .bake(WaveBake::time(BAKE))
}

/// Two waves of one region each, baked by the `gate` check once a minute.
fn gated_plan(bake: Duration, min_passes: u32) -> WavePlan {
    WavePlan::new(v2_request())
        .wave("one", ["eu-west-1"])
        .wave("two", ["us-east-1"])
        .bake(
            WaveBake::time(bake)
                .checks(["gate"])
                .interval(Duration::from_secs(60))
                .min_passes(min_passes),
        )
}

fn shared() -> Arc<dyn StateStore> {
    Arc::new(InMemoryStore::new())
}

/// `(1, 1) .. (n, n)` as gate rounds: `n` rounds, each passed and counted.
fn counted(n: u32) -> Vec<(bool, u32)> {
    (1..=n).map(|i| (true, i)).collect()
}

/// When each wave's first deployment started and its last ended, on the runner's clock.
fn wave_times(world: &Regions) -> Vec<(std::time::SystemTime, std::time::SystemTime)> {
    let events = world.events.lock().unwrap();
    let mut times: Vec<(Option<_>, Option<_>)> = vec![(None, None); 3];
    for e in events.iter() {
        match &e.kind {
            WaveEventKind::DeploymentStarted { wave, .. } => {
                times[*wave].0.get_or_insert(e.at);
            }
            WaveEventKind::DeploymentEnded { wave, .. } => times[*wave].1 = Some(e.at),
            _ => {}
        }
    }
    times
        .into_iter()
        .map(|(s, e)| (s.expect("wave started"), e.expect("wave ended")))
        .collect()
}

/// Waves run in order, each starting a full bake after the last ended, the deployments of a
/// wave at once; every region ends on v2 and the record is saved as it ended.
#[tokio::test(start_paused = true)]
async fn waves_complete_in_order_with_bakes_between_them() {
    let world = regions(&NAMES, shared()).await;
    let report = world.runner().run(plan()).await.unwrap();
    assert_eq!(
        report.state,
        WaveState::Done,
        "{:#?}",
        report.record.history
    );
    for name in NAMES {
        assert_eq!(world.serving(name), world.get(name).v2, "{name} serves v2");
    }
    let times = wave_times(&world);
    for w in 1..times.len() {
        let gap = times[w].0.duration_since(times[w - 1].1).unwrap();
        assert!(
            gap >= BAKE,
            "wave {w} started {gap:?} after wave {} ended; the bake is {BAKE:?}",
            w - 1
        );
    }
    // The last wave's two deployments ran at once.
    let asia: Vec<_> = world
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| match &e.kind {
            WaveEventKind::DeploymentStarted { wave, .. }
            | WaveEventKind::DeploymentEnded { wave, .. } => *wave == 2,
            _ => false,
        })
        .map(|e| matches!(e.kind, WaveEventKind::DeploymentStarted { .. }))
        .collect();
    assert_eq!(
        asia,
        [true, true, false, false],
        "both started before either ended"
    );
    let stored = world
        .shared
        .wave_store()
        .unwrap()
        .load_wave(&report.record.id)
        .await
        .unwrap();
    assert_eq!(stored, report.record, "the record is saved as it ended");
    assert!(
        world
            .shared
            .wave_store()
            .unwrap()
            .unfinished_waves()
            .await
            .unwrap()
            .is_empty()
    );
}

/// A deployment failing in wave 2 halts the service everywhere (wave 3 never starts, new
/// deployments are refused until an operator lifts it) and wave 1 is rolled back by a
/// redeployment marked as a rollback.
#[tokio::test(start_paused = true)]
async fn a_failure_in_wave_2_halts_wave_3_and_rolls_back_wave_1() {
    let world = regions(&NAMES, shared()).await;
    world.get("us-east-1").errors.go_bad();
    let plan = plan().on_failure(OnWaveFailure::RollBackDone);
    let report = world.runner().run(plan).await.unwrap();
    assert_eq!(report.state, WaveState::RolledBack);
    let rec = &report.record;
    assert!(
        matches!(
            &rec.targets[1][0].outcome,
            Some(TargetOutcome::RolledBack { .. })
        ),
        "us-east-1 rolled itself back: {:?}",
        rec.targets[1][0].outcome
    );
    assert!(
        rec.targets[2].iter().all(|t| t.deployment.is_none()),
        "wave 3 never started"
    );
    assert_eq!(
        rec.targets[0][0].rollback_outcome,
        Some(TargetOutcome::Succeeded)
    );
    for name in NAMES {
        assert_eq!(world.serving(name), world.get(name).v1, "{name} serves v1");
    }
    // Wave 1 went back by a redeployment marked as a rollback.
    let eu = world.get("eu-west-1");
    let web = immutable_core::ServiceName::new("web").unwrap();
    let latest = eu.store.latest(&web).await.unwrap().unwrap();
    assert_eq!(latest.origin, Origin::Rollback);
    // The service stays halted everywhere until an operator lifts it.
    let halts = world
        .shared
        .halt_store()
        .unwrap()
        .halts(Some(&web))
        .await
        .unwrap();
    assert_eq!(halts.len(), 1, "{halts:#?}");
    assert!(halts[0].by.starts_with("wave plan "), "{}", halts[0].by);
    assert!(halts[0].reason.contains("us-east-1"), "{}", halts[0].reason);
    let refused = world.get("ap-south-1/a").engine.deploy(v2_request()).await;
    assert!(matches!(refused, Err(Error::Halted { .. })), "{refused:?}");
    let asia_calls = world.get("ap-south-1/a").cloud.calls().len();
    world
        .get("eu-west-1")
        .engine
        .lift_halt(&HaltScope::service("web").unwrap())
        .await
        .unwrap();
    let report = world.get("ap-south-1/a").engine.deploy(v2_request()).await;
    assert!(report.unwrap().succeeded(), "deploys again once lifted");
    assert!(world.get("ap-south-1/a").cloud.calls().len() > asia_calls);
}

/// With `RollBackDone`, what was done is rolled back newest first: later waves first, and
/// later targets of a wave first.
#[tokio::test(start_paused = true)]
async fn a_rollback_goes_newest_first() {
    let world = regions(&NAMES, shared()).await;
    world.get("ap-south-1/b").errors.go_bad();
    let plan = plan()
        .concurrency(1)
        .on_failure(OnWaveFailure::RollBackDone);
    let report = world.runner().run(plan).await.unwrap();
    assert_eq!(report.state, WaveState::RolledBack);
    let order: Vec<String> = world
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match &e.kind {
            WaveEventKind::RollbackStarted { engine, .. } => Some(engine.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["ap-south-1/a", "us-east-1", "eu-west-1"]);
    for name in NAMES {
        assert_eq!(world.serving(name), world.get(name).v1, "{name} serves v1");
    }
}

/// With `HaltRest`, a failure stops the rest and keeps what earlier waves deployed.
#[tokio::test(start_paused = true)]
async fn halt_rest_keeps_what_was_done() {
    let world = regions(&NAMES, shared()).await;
    world.get("us-east-1").errors.go_bad();
    let report = world.runner().run(plan()).await.unwrap();
    assert_eq!(report.state, WaveState::Failed);
    assert_eq!(world.serving("eu-west-1"), world.get("eu-west-1").v2);
    assert_eq!(world.serving("us-east-1"), world.get("us-east-1").v1);
    assert_eq!(world.serving("ap-south-1/a"), world.get("ap-south-1/a").v1);
    let failure = report.record.failure.unwrap().to_string();
    assert!(
        // Texts number waves from 1: the second wave is wave 2.
        failure.starts_with("wave 2:") && failure.contains("us-east-1"),
        "{failure}"
    );
}

/// A gate check failing during a bake fails the plan, naming the wave and check; the next
/// wave never starts and what was done is rolled back.
#[tokio::test(start_paused = true)]
async fn a_gate_check_failing_in_the_bake_fails_the_plan() {
    let world = regions(&NAMES, shared()).await;
    let plan = plan()
        .bake(
            WaveBake::time(BAKE)
                .checks(["gate"])
                .interval(Duration::from_secs(60)),
        )
        .on_failure(OnWaveFailure::RollBackDone);
    let runner = world.runner();
    let gate = world.gate.clone();
    let run = tokio::spawn(async move { runner.run(plan).await });
    // The metric goes bad while the second wave bakes.
    let events = Arc::clone(&world.events);
    loop {
        tokio::time::sleep(Duration::from_secs(30)).await;
        let baking_wave_1 = events.lock().unwrap().iter().any(|e| {
            matches!(
                e.kind,
                WaveEventKind::StateEntered {
                    state: WaveState::Baking,
                    wave: 1
                }
            )
        });
        if baking_wave_1 {
            gate.go_bad();
            break;
        }
    }
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.state, WaveState::RolledBack);
    let failure = report.record.failure.clone().unwrap();
    assert!(
        matches!(&failure, immutable_core::WaveFailure::Check { wave: 1, check, .. } if check == "gate"),
        "{failure:?}"
    );
    assert!(
        report.record.targets[2]
            .iter()
            .all(|t| t.deployment.is_none())
    );
    for name in NAMES {
        assert_eq!(world.serving(name), world.get(name).v1, "{name} serves v1");
    }
}

/// A bake whose gate rounds pass `min_passes` times starts the next wave: every round that
/// passes is counted (and saved as it is counted), exactly `min_passes` passes are enough
/// (here all ten rounds of a 600 s bake, one a minute), and the plan ends Done.
#[tokio::test(start_paused = true)]
async fn a_bake_that_meets_min_passes_starts_the_next_wave() {
    let world = regions(&NAMES[..2], shared()).await;
    let runner = world.runner();
    let run = tokio::spawn(async move { within_a_day(runner.run(gated_plan(BAKE, 10))).await });
    // Mid-bake, after three rounds: the record in the shared store holds the three passes.
    let plan_id = loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let events = world.events.lock().unwrap();
        let rounds: Vec<_> = events
            .iter()
            .filter(|e| matches!(e.kind, WaveEventKind::GateChecked { .. }))
            .collect();
        if rounds.len() == 3 {
            break rounds[0].plan.clone();
        }
    };
    assert_eq!(world.gate_rounds(0), counted(3));
    let stored = world
        .shared
        .wave_store()
        .unwrap()
        .load_wave(&plan_id)
        .await
        .unwrap();
    assert_eq!(
        (stored.state, stored.bake_passes),
        (WaveState::Baking, 3),
        "the passes are saved as they are counted"
    );
    let report = run.await.unwrap().unwrap();
    assert_eq!(
        report.state,
        WaveState::Done,
        "{:#?}",
        report.record.history
    );
    assert_eq!(report.record.failure, None);
    assert_eq!(
        world.gate_rounds(0),
        counted(10),
        "one round a minute through the 600 s bake, each counted"
    );
    assert_eq!(
        report.record.targets[1][0].outcome,
        Some(TargetOutcome::Succeeded)
    );
    for name in &NAMES[..2] {
        assert_eq!(world.serving(name), world.get(name).v2, "{name} serves v2");
    }
}

/// A bake whose time ends with fewer passed gate rounds than `min_passes` bakes on, a round
/// a minute, until they have passed: it says so once, then starts the next wave. Here rounds
/// at 0 s and 60 s fit the 120 s bake, and the rounds at 120, 180 and 240 s bring the five.
#[tokio::test(start_paused = true)]
async fn a_bake_short_of_min_passes_bakes_on_until_they_pass() {
    let world = regions(&NAMES[..2], shared()).await;
    let plan = gated_plan(Duration::from_secs(120), 5);
    let report = within_a_day(world.runner().run(plan)).await.unwrap();
    assert_eq!(
        report.state,
        WaveState::Done,
        "{:#?}",
        report.record.history
    );
    assert_eq!(world.gate_rounds(0), counted(5));
    let events = world.events.lock().unwrap();
    let extended: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.kind, WaveEventKind::BakeExtended { .. }))
        .collect();
    assert_eq!(extended.len(), 1, "said once");
    assert_eq!(
        extended[0].kind,
        WaveEventKind::BakeExtended {
            wave: 0,
            passes: 2,
            needed: 5
        }
    );
    let baked_at = |kind: &WaveEventKind| {
        events
            .iter()
            .find(|e| &e.kind == kind)
            .map(|e| e.at)
            .unwrap()
    };
    let bake_start = baked_at(&WaveEventKind::StateEntered {
        state: WaveState::Baking,
        wave: 0,
    });
    let next_wave = baked_at(&WaveEventKind::StateEntered {
        state: WaveState::Running,
        wave: 1,
    });
    assert_eq!(
        next_wave.duration_since(bake_start).unwrap(),
        Duration::from_secs(240),
        "the fifth round, at 240 s, ends the bake"
    );
    assert_eq!(
        extended[0].at.duration_since(bake_start).unwrap(),
        Duration::from_secs(120)
    );
    drop(events);
    assert_eq!(world.serving("us-east-1"), world.get("us-east-1").v2);
}

/// A round that fails while a bake goes on past its time for want of passes fails the plan
/// like any failed gate: the next wave never starts.
#[tokio::test(start_paused = true)]
async fn a_gate_failing_after_the_bake_time_still_fails_the_plan() {
    let world = regions(&NAMES[..2], shared()).await;
    let plan = gated_plan(Duration::from_secs(120), 5);
    let runner = world.runner();
    let run = tokio::spawn(async move { runner.run(plan).await });
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if world
            .event_kinds()
            .iter()
            .any(|k| matches!(k, WaveEventKind::BakeExtended { .. }))
        {
            break;
        }
    }
    world.gate.go_bad();
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.state, WaveState::Failed);
    assert!(
        matches!(
            report.record.failure,
            Some(immutable_core::WaveFailure::Check { wave: 0, .. })
        ),
        "{:?}",
        report.record.failure
    );
    let rounds = world.gate_rounds(0);
    assert_eq!(rounds.last(), Some(&(false, 3)), "{rounds:?}");
    assert!(report.record.targets[1][0].deployment.is_none());
    assert_eq!(world.serving("us-east-1"), world.get("us-east-1").v1);
}

/// Each bad plan is refused with `InvalidInput` naming its field, before any cloud call,
/// record or event.
#[tokio::test(start_paused = true)]
async fn bad_wave_plans_are_refused_before_any_call() {
    let world = regions(&NAMES[..2], shared()).await;
    let calls: Vec<usize> = NAMES[..2]
        .iter()
        .map(|n| world.get(n).cloud.calls().len())
        .collect();
    let runner = world.runner();
    let v2 = v2_request;
    let cases: Vec<(WavePlan, &str)> = vec![
        (WavePlan::new(v2()), "waves"),
        (
            WavePlan::new(v2()).wave_of("empty", vec![]),
            "waves[0].targets",
        ),
        (
            WavePlan::new(v2())
                .wave("w", ["eu-west-1"])
                .wave("x", ["mars-1"]),
            "waves[1].targets[0].engine",
        ),
        (
            WavePlan::new(v2())
                .wave("w", ["eu-west-1"])
                .wave("x", ["eu-west-1"]),
            "waves[1].targets[0].engine",
        ),
        (
            WavePlan::new(v2()).wave_of("w", vec![WaveTarget::new("eu-west-1", v2().capacity(0))]),
            "waves[0].targets[0].capacity",
        ),
        (
            WavePlan::new(v2()).wave_of(
                "w",
                vec![WaveTarget::new(
                    "eu-west-1",
                    immutable_core::DeploymentRequest::new(
                        "api",
                        immutable_core::ImageRef::name("api-v2"),
                    ),
                )],
            ),
            "waves[0].targets[0].service",
        ),
        (
            WavePlan::new(v2())
                .wave("w", ["eu-west-1"])
                .bake(WaveBake::time(BAKE).checks(["nope"])),
            "bake.checks",
        ),
        (
            WavePlan::new(v2())
                .wave("w", ["eu-west-1"])
                .bake(WaveBake::time(BAKE).min_passes(2)),
            "bake.min_passes",
        ),
        (
            WavePlan::new(v2()).wave("w", ["eu-west-1"]).concurrency(0),
            "concurrency",
        ),
    ];
    for (plan, field) in cases {
        match runner.run(plan).await {
            Err(Error::InvalidInput { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected InvalidInput on `{field}`, got {other:?}"),
        }
    }
    for (n, before) in NAMES[..2].iter().zip(calls) {
        assert_eq!(world.get(n).cloud.calls().len(), before, "{n} was called");
    }
    assert!(
        world
            .shared
            .wave_store()
            .unwrap()
            .unfinished_waves()
            .await
            .unwrap()
            .is_empty()
    );
    assert!(world.events.lock().unwrap().is_empty());
}
