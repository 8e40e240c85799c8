//! Fleets that scale by themselves do not race a deployment: the old fleet is held at its size
//! before the new one is launched, the new one acts on its own only once it takes all traffic,
//! and a rollback lets the old one act again before anything else.

use std::time::Duration;

use crate::common::*;
use immutable_core::{EventKind, FleetId, Phase, RollbackMode, Scaling};
use immutable_mock::{Call, Op};

/// The fleet behind the serving target.
fn serving_fleet(w: &World) -> FleetId {
    let target = w.serving_target();
    w.cloud.snapshot().target(&target).unwrap().fleet.clone()
}

/// The position of the first call of `op` on `resource` (any resource when `None`).
fn first(calls: &[Call], op: Op, resource: Option<&str>) -> usize {
    calls
        .iter()
        .position(|c| c.op == op && resource.is_none_or(|r| c.resource.as_deref() == Some(r)))
        .unwrap_or_else(|| panic!("no {op} on {resource:?} in {calls:#?}"))
}

#[tokio::test(start_paused = true)]
async fn the_old_fleet_is_held_before_launch_and_the_new_one_acts_once_it_takes_all_traffic() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    let blue = serving_fleet(&w);
    assert_eq!(w.cloud.scaling(&blue), Some(Scaling::Active));
    w.cloud.clear_calls();
    let engine = w.engine.clone();
    let mut events = w.engine.events();
    let running = tokio::spawn(async move {
        engine
            .deploy(request(2).bake_time(Duration::from_secs(600)))
            .await
            .unwrap()
    });
    while events.recv().await.unwrap().kind != (EventKind::PhaseEntered { phase: Phase::Bake }) {}
    let green = serving_fleet(&w);
    assert_eq!(
        w.cloud.scaling(&blue),
        Some(Scaling::Held),
        "the fast-rollback fleet must keep its size during the bake"
    );
    assert_eq!(w.cloud.scaling(&green), Some(Scaling::Active));
    let calls = w.cloud.calls();
    let held = first(&calls, Op::SetScaling, Some(blue.as_str()));
    assert!(
        held < first(&calls, Op::Launch, None),
        "blue is held before green is launched"
    );
    let active = first(&calls, Op::SetScaling, Some(green.as_str()));
    let last_shift = calls.iter().rposition(|c| c.op == Op::SetWeights).unwrap();
    assert!(
        active > last_shift,
        "green acts on its own only after the shift to 100 %"
    );
    assert!(running.await.unwrap().succeeded());
}

#[tokio::test(start_paused = true)]
async fn a_rollback_lets_the_old_fleet_act_again_before_anything_else() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    let blue = serving_fleet(&w);
    w.cloud.boot_unhealthy(&w.images[2]);
    w.cloud.clear_calls();
    let report = w.engine.deploy(request(2)).await.unwrap();
    assert!(!report.succeeded());
    assert_eq!(w.cloud.scaling(&blue), Some(Scaling::Active));
    let calls = w.cloud.calls();
    let held = first(&calls, Op::SetScaling, Some(blue.as_str()));
    let released = calls
        .iter()
        .rposition(|c| c.op == Op::SetScaling && c.resource.as_deref() == Some(blue.as_str()))
        .unwrap();
    assert!(released > held);
    let rollback: Vec<_> = calls[released..].iter().map(|c| c.op).collect();
    assert!(
        !calls[held + 1..released]
            .iter()
            .any(|c| matches!(c.op, Op::Detach | Op::Terminate)),
        "the rollback detached or terminated something before blue could scale again"
    );
    assert!(
        rollback.contains(&Op::Detach) && rollback.contains(&Op::Terminate),
        "green is detached and terminated after blue is released: {rollback:?}"
    );
    w.assert_settled(&w.images[1]);
}

#[tokio::test(start_paused = true)]
async fn an_operator_rollback_in_the_bake_releases_the_old_fleet() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    let blue = serving_fleet(&w);
    let engine = w.engine.clone();
    let mut events = w.engine.events();
    let running = tokio::spawn(async move {
        engine
            .deploy(request(2).bake_time(Duration::from_secs(3600)))
            .await
            .unwrap()
    });
    while events.recv().await.unwrap().kind != (EventKind::PhaseEntered { phase: Phase::Bake }) {}
    assert_eq!(w.cloud.scaling(&blue), Some(Scaling::Held));
    w.engine
        .rollback_with("web", RollbackMode::Auto)
        .await
        .unwrap();
    assert!(!running.await.unwrap().succeeded());
    assert_eq!(w.cloud.scaling(&blue), Some(Scaling::Active));
    w.assert_settled(&w.images[1]);
}
