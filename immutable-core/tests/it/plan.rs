//! `Engine::plan`: a dry run with read calls only, refusals, an ETA range and a call budget
//! computed from what the backends declare, checked against real runs on the mock.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use immutable_core::{
    DeploymentRequest, EventKind, Phase, PlannedDeployment, Refusal, Routing, Steps, TargetId,
};
use immutable_mock::{Call, Op, Timings};

/// Every call of a deployment with the phase it was made in, from the mock's call log at each
/// phase change.
type Log = Arc<Mutex<Vec<(Phase, Op)>>>;

fn log_per_phase(w: &World) -> Log {
    let log: Log = Arc::default();
    let (sink, cloud) = (log.clone(), w.cloud.clone());
    let current = Mutex::new(Phase::Plan);
    w.engine.subscribe(move |e| {
        if let EventKind::PhaseEntered { phase } = e.kind {
            let calls: Vec<Call> = cloud.calls();
            cloud.clear_calls();
            let done = std::mem::replace(&mut *current.lock().unwrap(), phase);
            sink.lock()
                .unwrap()
                .extend(calls.iter().map(|c| (done, c.op)));
        }
    });
    log
}

/// The calls per phase, of the ops `op` keeps.
fn per_phase(log: &[(Phase, Op)], op: impl Fn(Op) -> bool) -> BTreeMap<Phase, u64> {
    let mut counts = BTreeMap::new();
    for (phase, _) in log.iter().filter(|(_, o)| op(*o)) {
        *counts.entry(*phase).or_default() += 1;
    }
    counts
}

async fn plan_then_run(
    w: &World,
    log: &Mutex<Vec<(Phase, Op)>>,
    request: DeploymentRequest,
) -> (PlannedDeployment, BTreeMap<Phase, u64>) {
    w.cloud.clear_calls();
    let plan = w.engine.plan(request.clone()).await.unwrap();
    assert!(
        w.cloud.calls().iter().all(|c| !c.op.is_mutation()),
        "the plan changed something: {:?}",
        w.cloud.calls()
    );
    assert!(plan.would_run(), "{:?}", plan.refusals);
    w.cloud.clear_calls();
    log.lock().unwrap().clear();
    let report = w.engine.deploy(request).await.unwrap();
    assert!(report.succeeded(), "{}", report.outcome);
    let real = per_phase(&log.lock().unwrap(), |_| true);
    (plan, real)
}

fn budget_of(plan: &PlannedDeployment) -> BTreeMap<Phase, u64> {
    let budget = plan.budget.as_ref().unwrap();
    assert!(budget.unknown.is_empty(), "{:?}", budget.unknown);
    budget
        .phases
        .iter()
        .map(|(p, c)| (*p, c.least))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_budget_equals_the_calls_of_a_real_blue_green_and_canary_run() {
    let w = world_with(settings(), Timings::instant());
    assert!(w.setup_engine.deploy(request(1)).await.unwrap().succeeded());
    let log = log_per_phase(&w);
    for (name, request) in [
        ("blue-green", request(2)),
        (
            "canary",
            request(3).strategy(Steps::canary([10, 50, 100], Duration::from_secs(120))),
        ),
    ] {
        let (plan, real) = plan_then_run(&w, &log, request).await;
        let budget = budget_of(&plan);
        println!("{name}: budget {budget:?}\n{name}: real   {real:?}");
        assert_eq!(budget, real, "{name}: the budget differs from the real run");
        let total = plan.budget.as_ref().unwrap().total;
        assert_eq!(total.least, real.values().sum::<u64>());
        assert!(total.most.unwrap() >= total.least);
    }
}

#[tokio::test(start_paused = true)]
async fn the_eta_range_contains_the_real_duration() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    for request in [
        request(2),
        request(1).strategy(Steps::canary([10, 50, 100], Duration::from_secs(300))),
    ] {
        let plan = w.engine.plan(request.clone()).await.unwrap();
        let eta = plan.eta.unwrap();
        let started = tokio::time::Instant::now();
        assert!(w.engine.deploy(request).await.unwrap().succeeded());
        let took = started.elapsed();
        println!("eta {:?} .. {:?}, took {took:?}", eta.least, eta.most);
        assert!(eta.least <= took, "{eta:?} vs {took:?}");
        assert!(took <= eta.most.unwrap(), "{eta:?} vs {took:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn refusals_are_reported_not_raised() {
    let w = world();
    // Bad input and an unknown image.
    let bad = w.engine.plan(request(1).capacity(0)).await.unwrap();
    assert!(
        matches!(&bad.refusals[..], [Refusal::InvalidInput { field, .. }] if field == "capacity")
    );
    let unknown = w
        .engine
        .plan(DeploymentRequest::new(
            "web",
            immutable_core::ImageRef::name("nope"),
        ))
        .await
        .unwrap();
    assert!(
        matches!(&unknown.refusals[..], [Refusal::InvalidInput { field, .. }] if field == "image")
    );
    // A first deployment plans to replace nothing.
    let first = w.engine.plan(request(1)).await.unwrap();
    assert!(first.would_run() && first.blue.is_none());
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());

    // While a deployment runs: locked, and unfinished.
    let engine = w.engine.clone();
    let mut events = w.engine.events();
    let running = tokio::spawn(async move {
        engine
            .deploy(request(2).bake_time(Duration::from_secs(600)))
            .await
    });
    while events.recv().await.unwrap().kind != (EventKind::PhaseEntered { phase: Phase::Bake }) {}
    w.cloud.clear_calls();
    let busy = w.engine.plan(request(3)).await.unwrap();
    assert!(w.cloud.calls().iter().all(|c| !c.op.is_mutation()));
    assert!(
        busy.refusals
            .iter()
            .any(|r| matches!(r, Refusal::Locked { .. }))
    );
    assert!(
        busy.refusals
            .iter()
            .any(|r| matches!(r, Refusal::Unfinished { .. }))
    );
    assert!(running.await.unwrap().unwrap().succeeded());

    // Split traffic.
    let serving = w.serving_target();
    let other = first_other_target(&w, &serving).await;
    let split = Routing::new([(serving.clone(), 50), (other, 50)]).unwrap();
    immutable_core::TrafficRouter::set_weights(&w.cloud, &w.web, &split)
        .await
        .unwrap();
    let plan = w.engine.plan(request(3)).await.unwrap();
    assert!(
        matches!(&plan.refusals[..], [Refusal::TrafficSplit { .. }]),
        "{:?}",
        plan.refusals
    );
}

/// Attaches a second fleet of the service, to split traffic with.
async fn first_other_target(w: &World, serving: &TargetId) -> TargetId {
    use immutable_core::{Fleet, FleetSpec, TrafficRouter};
    let spec = FleetSpec::new(
        w.web.clone(),
        immutable_core::DeploymentId::generate(),
        w.images[1].clone(),
        1,
    );
    let fleet = w.cloud.launch(&spec).await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let target = w.cloud.attach(&fleet).await.unwrap();
    assert_ne!(&target.id, serving);
    target.id
}

/// I1 with no read twice: the first weight change takes AwaitHealthy's last read (nothing
/// waited between them), every later one reads green again after the previous change, and a
/// deployment without a bake reads nothing in Bake. Fails if the shift read again, if a later
/// shift went without a read, or if a zero bake still polled.
#[tokio::test(start_paused = true)]
async fn each_weight_change_follows_a_fresh_health_read_and_none_is_made_twice() {
    let w = world_with(settings(), Timings::instant());
    assert!(w.setup_engine.deploy(request(1)).await.unwrap().succeeded());
    let log = log_per_phase(&w);
    for (name, request, rollout_reads) in [
        (
            "blue-green, no bake",
            request(2).bake_time(Duration::ZERO),
            Some(0),
        ),
        (
            "canary, no bake",
            request(3)
                .bake_time(Duration::ZERO)
                .strategy(Steps::canary([10, 50, 100], Duration::from_secs(1))),
            None,
        ),
    ] {
        log.lock().unwrap().clear();
        w.cloud.clear_calls();
        assert!(
            w.engine.deploy(request).await.unwrap().succeeded(),
            "{name}"
        );
        let calls = std::mem::take(&mut *log.lock().unwrap());
        let reads = per_phase(&calls, |op| op == Op::Health);
        assert_eq!(reads.get(&Phase::AwaitHealthy), Some(&1), "{name}");
        if let Some(want) = rollout_reads {
            let rollout = reads.get(&Phase::Rollout).copied().unwrap_or(0);
            assert_eq!(rollout, want, "{name}: {reads:?}");
        }
        assert_eq!(
            reads.get(&Phase::Bake).copied().unwrap_or(0),
            0,
            "{name}: {reads:?}"
        );
        // Between any two weight changes (and before the first) green's health was read.
        let mut read_since_change = false;
        for (_, op) in &calls {
            match op {
                Op::Health => read_since_change = true,
                Op::SetWeights => {
                    assert!(read_since_change, "{name}: a weight change without a read");
                    read_since_change = false;
                }
                _ => {}
            }
        }
    }
}
