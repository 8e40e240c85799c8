//! Strategies, checks, approvals, promote, abort and rollback on the mock, in virtual time.
#![allow(clippy::print_stdout)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use async_trait::async_trait;
use immutable_core::{
    Check, CheckContext, CheckOutcome, DeploymentRequest, Engine, Error, Event, EventKind,
    HealthRatioCheck, ImageRef, InMemoryStore, OnTimeout, Outcome, Phase, Progress, RollbackCause,
    RollbackReport, Routing, Step, Steps, Strategy, StrategySpec,
};
use immutable_mock::{MockCloud, Op};

const PAUSE: Duration = Duration::from_secs(300);

/// Fails once the new fleet takes `at` percent of traffic.
#[derive(Debug)]
struct FailsAt {
    at: u32,
}

#[async_trait]
impl Check for FailsAt {
    async fn run(&self, ctx: &CheckContext<'_>) -> CheckOutcome {
        if ctx.weight >= self.at {
            CheckOutcome::fail(format!("error rate 7 % at {} %", ctx.weight))
        } else {
            CheckOutcome::Pass
        }
    }
}

/// Records the weight each check ran at.
#[derive(Debug, Default, Clone)]
struct Records(Arc<Mutex<Vec<u32>>>);

#[async_trait]
impl Check for Records {
    async fn run(&self, ctx: &CheckContext<'_>) -> CheckOutcome {
        self.0.lock().unwrap().push(ctx.weight);
        CheckOutcome::Pass
    }
}

fn engine_with(
    w: &World,
    f: impl FnOnce(immutable_core::EngineBuilder) -> immutable_core::EngineBuilder,
) -> Engine {
    let engine = f(w.builder()).build().unwrap();
    let events = w.events.clone();
    engine.subscribe(move |e| events.lock().unwrap().push(e.clone()));
    engine
}

fn weights_set(events: &[Event]) -> Vec<Routing> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WeightsSet { routing } => Some(routing.clone()),
            _ => None,
        })
        .collect()
}

fn canary() -> Steps {
    Steps::canary([10, 50, 100], PAUSE)
}

#[tokio::test(start_paused = true)]
async fn a_canary_with_five_minute_pauses_runs_in_virtual_time() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    let blue = w.serving_target();
    w.take_events();
    w.cloud.clear_calls();
    let real = std::time::Instant::now();
    let start = tokio::time::Instant::now();

    let report = w
        .engine
        .deploy(request(2).strategy(canary()))
        .await
        .unwrap();

    assert!(report.succeeded(), "{:?}", report.outcome);
    let green = report.record.green.target.clone().unwrap();
    let splits: Vec<(u32, u32)> = weights_set(&w.take_events())
        .iter()
        .map(|r| (r.weight(&blue), r.weight(&green)))
        .collect();
    assert_eq!(splits, [(90, 10), (50, 50), (0, 100)]);
    assert_eq!(
        w.cloud.call_count(Op::SetWeights),
        3,
        "one routing call per step"
    );
    assert!(
        start.elapsed() >= 2 * PAUSE,
        "the pauses were not waited out"
    );
    assert_eq!(report.record.steps_taken.len(), canary().steps().len());
    assert_eq!(report.record.step, canary().steps().len());
    w.assert_settled(&w.images[2]);
    println!(
        "canary 10/50/100 with 5-minute pauses: {:?} virtual, {:?} real",
        start.elapsed(),
        real.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_check_failing_at_50_percent_returns_all_traffic_in_one_call() {
    let w = world();
    let engine = engine_with(&w, |b| b.check("error-rate", FailsAt { at: 50 }));
    assert!(engine.deploy(request(1)).await.unwrap().succeeded());
    let blue = w.serving_target();
    w.take_events();
    w.cloud.clear_calls();

    let report = engine
        .deploy(request(2).strategy(canary().with_checks(Vec::<String>::new(), ["error-rate"])))
        .await
        .unwrap();

    match &report.outcome {
        Outcome::RolledBack {
            cause: RollbackCause::CheckFailed { check, weight, .. },
        } => assert_eq!((check.as_str(), *weight), ("error-rate", 50)),
        other => panic!("expected a rollback, got {other:?}"),
    }
    let events = w.take_events();
    let green = report.record.green.target.clone().unwrap();
    let splits: Vec<(u32, u32)> = weights_set(&events)
        .iter()
        .map(|r| (r.weight(&blue), r.weight(&green)))
        .collect();
    // 10 %, 50 %, then everything back to blue in a single call.
    assert_eq!(splits, [(90, 10), (50, 50), (100, 0)]);
    assert_eq!(w.cloud.call_count(Op::SetWeights), 3);
    let results: Vec<bool> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::CheckResult { outcome, .. } => Some(outcome.passed()),
            _ => None,
        })
        .collect();
    assert_eq!(results, [true, false]);
    w.assert_settled(&w.images[1]);
    let snap = w.cloud.snapshot();
    assert!(
        !snap
            .fleet(report.record.green.fleet.as_ref().unwrap())
            .unwrap()
            .is_live()
    );
    assert!(snap.target(&green).is_none());
}

#[tokio::test(start_paused = true)]
async fn checks_run_on_the_preview_before_promotion_and_after_each_step() {
    let w = world();
    let pre = Records::default();
    let post = Records::default();
    let engine = engine_with(&w, |b| {
        b.check("pre", pre.clone()).check("post", post.clone())
    });
    let cloud = w.cloud.clone();
    let web = w.web.clone();
    let preview_at_pre = Arc::new(Mutex::new(None));
    let seen = preview_at_pre.clone();
    engine.subscribe(move |e| {
        if let EventKind::CheckResult { name, .. } = &e.kind
            && name == "pre"
        {
            *seen.lock().unwrap() = cloud.snapshot().previews.get(&web).cloned();
        }
    });
    assert!(engine.deploy(request(1)).await.unwrap().succeeded());
    let report = engine
        .deploy(request(2).strategy(Steps::canary([25, 100], PAUSE).with_checks(["pre"], ["post"])))
        .await
        .unwrap();
    assert!(report.succeeded());
    assert_eq!(
        *pre.0.lock().unwrap(),
        [0],
        "pre-promotion checks see no live traffic"
    );
    assert_eq!(*post.0.lock().unwrap(), [25, 100]);
    let green = report.record.green.target.clone();
    assert_eq!(
        *preview_at_pre.lock().unwrap(),
        green,
        "the preview routed to the new fleet"
    );
    assert!(
        w.cloud.snapshot().previews.is_empty(),
        "the preview is cleared at the end"
    );
}

#[tokio::test(start_paused = true)]
async fn the_health_ratio_check_reads_the_new_fleets_health() {
    let w = world();
    let engine = engine_with(&w, |b| b.check("healthy", HealthRatioCheck::new(1.0)));
    let steps = Steps::blue_green().with_checks(["healthy"], ["healthy"]);
    assert!(
        engine
            .deploy(request(1).strategy(steps.clone()))
            .await
            .unwrap()
            .succeeded()
    );
    // One v2 instance dies once all three are healthy: 2 of 3 healthy is below the 100 % the
    // check asks, while min_healthy (1) still lets the rollout start.
    let (cloud, done) = (w.cloud.clone(), Arc::new(Mutex::new(false)));
    engine.subscribe(move |e| {
        if let EventKind::HealthProgress {
            target, healthy: 3, ..
        } = &e.kind
            && !std::mem::replace(&mut *done.lock().unwrap(), true)
        {
            let snap = cloud.snapshot();
            cloud.kill_instance(&snap.target(target).unwrap().registered[0]);
        }
    });
    let report = engine
        .deploy(request(2).min_healthy(1).strategy(steps))
        .await
        .unwrap();
    match report.outcome {
        Outcome::RolledBack {
            cause: RollbackCause::CheckFailed { check, reason, .. },
        } => assert_eq!(
            (check.as_str(), reason.contains("2 of 3")),
            ("healthy", true)
        ),
        other => panic!("{other:?}"),
    }
}

/// Approves, rejects or ignores every approval request.
fn answer_approvals(engine: &Engine, answer: &'static str) {
    let e2 = engine.clone();
    engine.subscribe(move |e| {
        if let EventKind::ApprovalRequested { .. } = e.kind {
            let h = e2.handle(&e.deployment).unwrap();
            // Commands are written to the store: give them from a task of their own.
            tokio::spawn(async move {
                match answer {
                    "approve" => h.approve().await.unwrap(),
                    "reject" => h.reject("the release manager said no").await.unwrap(),
                    _ => {}
                }
            });
        }
    });
}

fn gated(on_timeout: OnTimeout) -> Steps {
    Steps::canary([20, 100], PAUSE).with_approval(Duration::from_secs(3600), on_timeout)
}

#[tokio::test(start_paused = true)]
async fn approval_gates_approve_reject_and_time_out() {
    // Approved: the deployment goes on.
    let w = world();
    answer_approvals(&w.engine, "approve");
    let report = w
        .engine
        .deploy(request(1).strategy(gated(OnTimeout::RollBack)))
        .await
        .unwrap();
    assert!(report.succeeded());
    assert!(
        w.take_events()
            .iter()
            .any(|e| e.kind == EventKind::Approved)
    );

    // Rejected: it rolls back before any traffic moves.
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    answer_approvals(&w.engine, "reject");
    w.cloud.clear_calls();
    let report = w
        .engine
        .deploy(request(2).strategy(gated(OnTimeout::RollBack)))
        .await
        .unwrap();
    match report.outcome {
        Outcome::RolledBack {
            cause: RollbackCause::ApprovalRejected { reason },
        } => assert!(reason.contains("release manager"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.cloud.call_count(Op::SetWeights), 0);
    w.assert_settled(&w.images[1]);

    // Unanswered, with the roll-back policy: it rolls back after the timeout.
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    let start = tokio::time::Instant::now();
    let report = w
        .engine
        .deploy(request(2).strategy(gated(OnTimeout::RollBack)))
        .await
        .unwrap();
    match report.outcome {
        Outcome::RolledBack {
            cause: RollbackCause::ApprovalOverdue { waited },
        } => assert_eq!(waited, Duration::from_secs(3600)),
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() >= Duration::from_secs(3600));
    w.assert_settled(&w.images[1]);
}

#[tokio::test(start_paused = true)]
async fn an_overdue_approval_keeps_waiting_when_told_to() {
    let w = world();
    let engine = w.engine.clone();
    let approver = engine.clone();
    engine.subscribe(move |e| {
        if let EventKind::ApprovalOverdue { .. } = e.kind {
            // Someone finally answers, an hour after the timeout.
            let h = approver.handle(&e.deployment).unwrap();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                h.approve().await.unwrap();
            });
        }
    });
    let start = tokio::time::Instant::now();
    let report = engine
        .deploy(request(1).strategy(gated(OnTimeout::KeepWaiting)))
        .await
        .unwrap();
    assert!(report.succeeded(), "{:?}", report.outcome);
    assert!(start.elapsed() >= Duration::from_secs(7200));
    let events = w.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::ApprovalOverdue { .. }))
    );
    assert!(events.iter().any(|e| e.kind == EventKind::Approved));
}

#[tokio::test(start_paused = true)]
async fn promote_in_the_middle_of_a_canary_skips_the_remaining_waits() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    let e2 = w.engine.clone();
    w.engine.subscribe(move |e| {
        if let EventKind::StepStarted {
            step: Step::Pause { .. },
            ..
        } = e.kind
        {
            let h = e2.handle(&e.deployment).unwrap();
            tokio::spawn(async move { h.promote().await });
        }
    });
    let start = tokio::time::Instant::now();
    let report = w
        .engine
        .deploy(
            request(2)
                .strategy(canary())
                .bake_time(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    assert!(report.succeeded());
    // Neither the two 5-minute pauses nor the hour of bake were waited out.
    assert!(start.elapsed() < PAUSE, "took {:?}", start.elapsed());
    let notes: Vec<_> = report
        .record
        .steps_taken
        .iter()
        .filter_map(|s| s.note.clone())
        .collect();
    assert!(
        notes.iter().filter(|n| n.contains("promoted")).count() == 2,
        "{notes:?}"
    );
    w.assert_settled(&w.images[2]);
}

#[tokio::test(start_paused = true)]
async fn abort_in_the_middle_of_a_canary_rolls_back_in_one_call() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    let e2 = w.engine.clone();
    let kept = Arc::new(Mutex::new(None));
    let keep = kept.clone();
    w.engine.subscribe(move |e| {
        if let EventKind::WeightsSet { routing } = &e.kind
            && routing.weights().values().any(|w| *w == 50)
        {
            let handle = e2.handle(&e.deployment).unwrap();
            *keep.lock().unwrap() = Some(handle.clone());
            tokio::spawn(async move { handle.abort("latency regression").await.unwrap() });
        }
    });
    w.cloud.clear_calls();
    let report = w
        .engine
        .deploy(request(2).strategy(canary()))
        .await
        .unwrap();
    match report.outcome {
        Outcome::RolledBack {
            cause: RollbackCause::OperatorAbort { reason },
        } => assert_eq!(reason, "latency regression"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        w.cloud.call_count(Op::SetWeights),
        3,
        "10 %, 50 %, and one call back"
    );
    w.assert_settled(&w.images[1]);
    // A finished deployment has no handle, and one kept from before refuses commands.
    assert!(w.engine.handle(&report.record.id).is_err());
    let handle = kept.lock().unwrap().take().unwrap();
    match handle.approve().await {
        Err(Error::DeploymentFinished { phase, .. }) => assert_eq!(phase, Phase::RolledBack),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn rollback_while_baking_is_one_routing_call() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    let v1_target = w.serving_target();
    let engine = w.engine.clone();
    let mut events = w.engine.events();
    let running = tokio::spawn(async move {
        engine
            .deploy(request(2).bake_time(Duration::from_secs(3600)))
            .await
    });
    while events.recv().await.unwrap().kind
        != (EventKind::PhaseEntered {
            phase: immutable_core::Phase::Bake,
        })
    {}
    w.cloud.clear_calls();

    let rolled = w.engine.rollback("web").await.unwrap();

    let RollbackReport::RoutedBack(report) = rolled else {
        panic!("{rolled:?}")
    };
    assert!(matches!(report.outcome, Outcome::RolledBack { .. }));
    assert_eq!(
        w.cloud.call_count(Op::SetWeights),
        1,
        "traffic went back in one call"
    );
    assert_eq!(
        w.cloud.snapshot().routing_of(&w.web).sole_target(),
        Some(&v1_target)
    );
    let finished = running.await.unwrap().unwrap();
    assert_eq!(finished.record.id, report.record.id);
    w.assert_settled(&w.images[1]);
}

#[tokio::test(start_paused = true)]
async fn rollback_after_retirement_redeploys_the_previous_image() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    assert!(w.engine.deploy(request(2)).await.unwrap().succeeded());
    let rolled = w.engine.rollback("web").await.unwrap();
    let RollbackReport::Redeployed(report) = rolled else {
        panic!("{rolled:?}")
    };
    assert!(report.succeeded());
    assert_eq!(report.record.image.id, w.images[1]);
    w.assert_settled(&w.images[1]);
    // A first deployment has nothing before it.
    let fresh = world();
    assert!(fresh.engine.deploy(request(1)).await.unwrap().succeeded());
    assert!(matches!(
        fresh.engine.rollback("web").await,
        Err(Error::NothingToRollBack {
            reason: immutable_core::NoRollback::FirstDeployment { .. },
            ..
        })
    ));
}

/// An error-budget strategy: grows the new fleet's share while the budget holds, and rolls
/// back by stopping short of 100 % when the budget is spent.
#[derive(Debug)]
struct ErrorBudget {
    errors_per_step: Arc<Mutex<Vec<u32>>>,
    budget: u32,
}

#[async_trait]
impl Strategy for ErrorBudget {
    async fn next_step(&self, p: &Progress<'_>) -> immutable_core::Result<Option<Step>> {
        if p.weight == 100 {
            return Ok(None);
        }
        if p.index % 2 == 1 {
            return Ok(Some(Step::pause(Duration::from_secs(60))));
        }
        let spent: u32 = self
            .errors_per_step
            .lock()
            .unwrap()
            .iter()
            .take(p.index / 2)
            .sum();
        if spent > self.budget {
            return Ok(None); // ends below 100 %: the engine rolls back
        }
        Ok(Some(Step::shift((p.weight + 40).min(100))))
    }
}

#[tokio::test(start_paused = true)]
async fn a_custom_strategy_decides_from_progress() {
    for (errors, succeeds) in [(vec![0, 1, 0], true), (vec![0, 9, 9], false)] {
        let w = world();
        let engine = engine_with(&w, |b| {
            b.strategy(
                "error-budget",
                ErrorBudget {
                    errors_per_step: Arc::new(Mutex::new(errors.clone())),
                    budget: 5,
                },
            )
        });
        assert!(engine.deploy(request(1)).await.unwrap().succeeded());
        let report = engine
            .deploy(request(2).strategy(StrategySpec::named("error-budget")))
            .await
            .unwrap();
        assert_eq!(
            report.succeeded(),
            succeeds,
            "{errors:?}: {:?}",
            report.outcome
        );
        let shifts: Vec<_> = report
            .record
            .steps_taken
            .iter()
            .filter_map(|s| match s.step {
                Step::Shift { percent } => Some(percent),
                _ => None,
            })
            .collect();
        if succeeds {
            assert_eq!(shifts, [40, 80, 100]);
            w.assert_settled(&w.images[2]);
        } else {
            assert_eq!(shifts, [40, 80]);
            w.assert_settled(&w.images[1]);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn unregistered_checks_and_strategies_are_refused_up_front() {
    let w = world();
    for strategy in [
        StrategySpec::from(Steps::blue_green().with_checks(["nope"], Vec::<String>::new())),
        StrategySpec::named("nope"),
    ] {
        match w.engine.deploy(request(1).strategy(strategy)).await {
            Err(Error::InvalidInput { field, reason, .. }) => {
                assert_eq!(field, "strategy");
                assert!(reason.contains("nope"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(w.cloud.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_router_without_preview_skips_the_preview_step() {
    let cloud = MockCloud::new();
    cloud.set_preview_supported(false);
    cloud.add_image("web", "web-v1");
    let events = Arc::new(Mutex::new(Vec::new()));
    let engine = builder_on(&cloud, InMemoryStore::new()).build().unwrap();
    let ev = events.clone();
    engine.subscribe(move |e| ev.lock().unwrap().push(e.kind.clone()));
    let report = engine
        .deploy(DeploymentRequest::new("web", ImageRef::name("web-v1")).capacity(2))
        .await
        .unwrap();
    assert!(report.succeeded());
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, EventKind::PreviewSkipped { .. }))
    );
}

#[tokio::test(start_paused = true)]
async fn a_first_deployment_with_a_canary_moves_all_traffic_at_once() {
    let w = world();
    let report = w
        .engine
        .deploy(request(1).strategy(canary()))
        .await
        .unwrap();
    assert!(report.succeeded(), "{:?}", report.outcome);
    let green = report.record.green.target.clone().unwrap();
    assert_eq!(weights_set(&w.take_events())[0], Routing::all_to(&green));
    w.assert_settled(&w.images[1]);
}
