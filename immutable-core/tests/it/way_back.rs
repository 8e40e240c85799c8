//! Safety on the way back: I1 when traffic returns to the old fleet, the fast-rollback window
//! watched during the bake, and operator rollbacks that refuse to route to a lost fleet.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use crate::common::*;
use immutable_core::{
    Error, Event, EventKind, OnBlueLost, Outcome, Phase, Report, RollbackCause, RollbackMode,
    RollbackReport, Routing, StateStore, Steps, TargetId,
};
use immutable_mock::Op;
use tokio::task::JoinHandle;

const BAKE: Duration = Duration::from_secs(3600);

/// Deploys v1, then starts v2 with a long bake and returns once v2 bakes: the task running it,
/// and the old fleet's target.
async fn v2_baking(w: &World, on_lost: OnBlueLost) -> (JoinHandle<Report>, TargetId) {
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    let blue = w.serving_target();
    let engine = w.engine.clone();
    let mut events = w.engine.events();
    let running = tokio::spawn(async move {
        engine
            .deploy(request(2).bake_time(BAKE).on_blue_lost(on_lost))
            .await
            .unwrap()
    });
    while events.recv().await.unwrap().kind != (EventKind::PhaseEntered { phase: Phase::Bake }) {}
    (running, blue)
}

/// Kills all but `keep` instances behind `target`.
fn kill_behind(w: &World, target: &TargetId, keep: usize) {
    let snap = w.cloud.snapshot();
    for id in snap.target(target).unwrap().registered.iter().skip(keep) {
        w.cloud.kill_instance(id);
    }
}

/// Lets the bake notice what changed: a little more than one poll.
async fn one_poll() {
    tokio::time::sleep(settings().poll_interval + Duration::from_secs(1)).await;
}

fn window_lost(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::RollbackWindowLost { .. }))
        .count()
}

fn green_of(w: &World) -> TargetId {
    let routing = w.cloud.snapshot().routing_of(&w.web);
    routing.sole_target().unwrap().clone()
}

#[tokio::test(start_paused = true)]
async fn blue_lost_in_the_bake_refuses_an_operator_rollback_and_touches_nothing() {
    let w = world();
    let (running, blue) = v2_baking(&w, OnBlueLost::KeepBaking).await;
    let green = green_of(&w);
    kill_behind(&w, &blue, 1); // 1 healthy of 3, 2 needed
    one_poll().await;
    one_poll().await;
    assert_eq!(window_lost(&w.take_events()), 1, "one event, once");
    w.cloud.clear_calls();

    match w.engine.rollback("web").await {
        Err(Error::BlueUnhealthy {
            healthy, needed, ..
        }) => assert_eq!((healthy, needed), (1, MIN_HEALTHY as usize)),
        other => panic!("expected the rollback to be refused, got {other:?}"),
    }
    // Nothing changed: traffic stays on the healthy new fleet, which keeps running.
    assert!(
        w.cloud.calls().iter().all(|c| !c.op.is_mutation()),
        "{:?}",
        w.cloud.calls()
    );
    assert_eq!(
        w.cloud.snapshot().routing_of(&w.web),
        Routing::all_to(&green)
    );
    assert_eq!(w.cloud.snapshot().target(&green).unwrap().healthy, 3);

    // The deployment bakes on to the end and retires what is left of the old fleet.
    let report = running.await.unwrap();
    assert!(report.succeeded(), "{}", report.outcome);
    assert!(report.record.blue_lost_at.is_some(), "the record notes it");
    assert_eq!(window_lost(&w.take_events()), 0, "emitted once only");
    w.assert_settled(&w.images[2]);
}

#[tokio::test(start_paused = true)]
async fn blue_lost_then_green_unhealthy_stops_with_traffic_on_green() {
    let w = world();
    let (running, blue) = v2_baking(&w, OnBlueLost::KeepBaking).await;
    let green = green_of(&w);
    kill_behind(&w, &blue, 1);
    one_poll().await;
    w.cloud.clear_calls();
    kill_behind(&w, &green, 1); // the new fleet drops to 1 healthy too
    let report = running.await.unwrap();

    let Outcome::Stopped { cause, stranded } = &report.outcome else {
        panic!("expected a stop, got {}", report.outcome)
    };
    assert!(matches!(
        cause,
        RollbackCause::NewFleetUnhealthy {
            healthy: 1,
            phase: Phase::Bake,
            ..
        }
    ));
    assert_eq!(
        (
            stranded.blue_healthy,
            stranded.green_healthy,
            stranded.weight
        ),
        (1, 1, 100)
    );
    // Traffic stayed on the new fleet (1 healthy beats sending it to a lost fleet); nothing
    // was routed, detached or terminated.
    assert_eq!(w.cloud.call_count(Op::SetWeights), 0);
    assert_eq!(w.cloud.call_count(Op::Detach), 0);
    assert_eq!(w.cloud.call_count(Op::Terminate), 0);
    let snap = w.cloud.snapshot();
    assert_eq!(snap.routing_of(&w.web), Routing::all_to(&green));
    assert!(snap.target(&blue).is_some() && snap.target(&green).is_some());
    let events = w.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Stopped { .. }))
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.kind, EventKind::RolledBack { .. }))
    );
    let stored = w.store.load(&report.record.id).await.unwrap();
    assert_eq!(stored.phase, Phase::Stopped);
    assert!(w.violations.lock().unwrap().is_empty());

    // The way back from here is a redeployment of the previous image; gc removes the rest.
    assert!(matches!(
        w.engine.rollback("web").await,
        Err(Error::NothingToRollBack {
            reason: immutable_core::NoRollback::OldFleetLost { .. },
            ..
        })
    ));
    let again = w
        .engine
        .rollback_with("web", RollbackMode::Redeploy)
        .await
        .unwrap();
    let RollbackReport::Redeployed(again) = again else {
        panic!("{again:?}")
    };
    assert!(again.succeeded(), "{}", again.outcome);
    let gc = w
        .engine
        .gc_with("web", immutable_core::GcMode::Remove)
        .await
        .unwrap();
    assert_eq!(gc.targets, [blue]);
    w.assert_settled(&w.images[1]);
}

#[tokio::test(start_paused = true)]
async fn blue_lost_with_retire_policy_ends_the_bake_at_once() {
    let w = world();
    let started = tokio::time::Instant::now();
    let (running, blue) = v2_baking(&w, OnBlueLost::RetireBlue).await;
    kill_behind(&w, &blue, 1);
    let report = running.await.unwrap();
    assert!(report.succeeded(), "{}", report.outcome);
    assert!(
        started.elapsed() < BAKE,
        "the bake ran its full {BAKE:?} though the old fleet could not serve a rollback"
    );
    let retire = report
        .record
        .history
        .iter()
        .find(|h| h.phase == Phase::Retire)
        .unwrap();
    assert!(retire.note.as_deref().unwrap().contains("window lost"));
    assert_eq!(window_lost(&w.take_events()), 1);
    w.assert_settled(&w.images[2]);
}

#[tokio::test(start_paused = true)]
async fn redeploy_is_the_way_back_when_blue_is_lost() {
    let w = world();
    let (running, blue) = v2_baking(&w, OnBlueLost::KeepBaking).await;
    kill_behind(&w, &blue, 1);
    one_poll().await;
    let rolled = w
        .engine
        .rollback_with("web", RollbackMode::Redeploy)
        .await
        .unwrap();
    let RollbackReport::Redeployed(again) = rolled else {
        panic!("{rolled:?}")
    };
    assert!(again.succeeded(), "{}", again.outcome);
    assert_eq!(again.record.image.id, w.images[1]);
    // The v2 deployment was promoted to its end first.
    let v2 = running.await.unwrap();
    assert!(v2.succeeded());
    assert!(
        v2.record
            .history
            .iter()
            .any(|h| h.note.as_deref().is_some_and(|n| n.contains("promoted")))
    );
    w.assert_settled(&w.images[1]);
}

#[tokio::test(start_paused = true)]
async fn an_abort_with_blue_lost_stops_rather_than_routing_back() {
    let w = world();
    let (running, blue) = v2_baking(&w, OnBlueLost::KeepBaking).await;
    let green = green_of(&w);
    kill_behind(&w, &blue, 1);
    let id = w.store.unfinished(None).await.unwrap()[0].id.clone();
    w.engine
        .handle(&id)
        .unwrap()
        .abort("pager went off")
        .await
        .unwrap();
    let report = running.await.unwrap();
    match &report.outcome {
        Outcome::Stopped {
            cause: RollbackCause::OperatorAbort { reason },
            stranded,
        } => assert_eq!(
            (reason.as_str(), stranded.green_healthy),
            ("pager went off", 3)
        ),
        other => panic!("{other}"),
    }
    assert_eq!(
        w.cloud.snapshot().routing_of(&w.web),
        Routing::all_to(&green)
    );
}

#[tokio::test(start_paused = true)]
async fn a_check_failing_with_blue_lost_mid_canary_sends_traffic_to_the_healthier_fleet() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    let blue = w.serving_target();
    let engine = w
        .builder()
        .check("error-rate", FailsFrom(50))
        .build()
        .unwrap();
    // The old fleet dies right after the 50 % shift; then the error-rate check fails.
    let (cloud, blue2) = (w.cloud.clone(), blue.clone());
    engine.subscribe(move |e| {
        if let EventKind::WeightsSet { routing } = &e.kind
            && routing.weight(&blue2) == 50
        {
            let snap = cloud.snapshot();
            for id in snap.target(&blue2).unwrap().registered.iter().skip(1) {
                cloud.kill_instance(id);
            }
        }
    });
    let violations = watch(&engine, &w.cloud, &w.web);
    let steps = Steps::canary([10, 50, 100], Duration::from_secs(60))
        .with_checks(Vec::<String>::new(), ["error-rate"]);
    w.take_events();
    let report = engine.deploy(request(2).strategy(steps)).await.unwrap();
    let green = report.record.green.target.clone().unwrap();
    let Outcome::Stopped { cause, stranded } = &report.outcome else {
        panic!("{}", report.outcome)
    };
    assert!(matches!(
        cause,
        RollbackCause::CheckFailed { weight: 50, .. }
    ));
    assert_eq!(stranded.weight, 100);
    assert_eq!(
        w.cloud.snapshot().routing_of(&w.web),
        Routing::all_to(&green)
    );
    assert!(violations.lock().unwrap().is_empty());
}

/// Fails from `0` percent of traffic on.
#[derive(Debug)]
struct FailsFrom(u32);

#[async_trait::async_trait]
impl immutable_core::Check for FailsFrom {
    async fn run(&self, ctx: &immutable_core::CheckContext<'_>) -> immutable_core::CheckOutcome {
        if ctx.weight >= self.0 {
            immutable_core::CheckOutcome::fail("error rate 9 %")
        } else {
            immutable_core::CheckOutcome::Pass
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_healthy_blue_still_takes_traffic_back_in_one_call() {
    let w = world();
    let (running, blue) = v2_baking(&w, OnBlueLost::KeepBaking).await;
    kill_behind(&w, &blue, MIN_HEALTHY as usize); // exactly min_healthy left: still enough
    one_poll().await;
    w.cloud.clear_calls();
    let rolled = w.engine.rollback("web").await.unwrap();
    assert!(
        matches!(rolled, RollbackReport::RoutedBack(_)),
        "{rolled:?}"
    );
    assert_eq!(w.cloud.call_count(Op::SetWeights), 1);
    assert_eq!(
        w.cloud.snapshot().routing_of(&w.web),
        Routing::all_to(&blue)
    );
    assert_eq!(window_lost(&w.take_events()), 0);
    let report = running.await.unwrap();
    assert!(matches!(
        report.outcome,
        Outcome::RolledBack {
            cause: RollbackCause::OperatorAbort { .. }
        }
    ));
}
