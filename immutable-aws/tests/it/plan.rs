//! `Engine::plan` on moto: read calls only, and a call budget from the backend's declared
//! costs that holds the calls of the real deployment.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use immutable_core::{DeploymentRequest, Engine, EventKind, ImageRef, Phase};

/// No bake: a wait of fixed length polls once per interval plus the time each call takes,
/// so on a loaded machine it makes fewer calls than the budget counts (see `Calls`); waits
/// until a condition are bounded either way.
fn request(image: &str) -> DeploymentRequest {
    DeploymentRequest::new(SERVICE, ImageRef::name(image))
        .capacity(3)
        .bake_time(Duration::ZERO)
        .health_timeout(Duration::from_secs(3))
}

/// Calls of every AWS request the interceptor saw, per phase of the deployment.
fn count_per_phase(w: &World, engine: &Engine) -> Arc<Mutex<BTreeMap<Phase, u64>>> {
    let per_phase: Arc<Mutex<BTreeMap<Phase, u64>>> = Arc::default();
    let (sink, calls) = (per_phase.clone(), w.calls.clone());
    let current = Mutex::new(Phase::Plan);
    engine.subscribe(move |e| {
        if let EventKind::PhaseEntered { phase } = e.kind {
            let n = CallCounter::counts(&calls.take()).values().sum::<usize>() as u64;
            let done = std::mem::replace(&mut *current.lock().unwrap(), phase);
            *sink.lock().unwrap().entry(done).or_default() += n;
        }
    });
    per_phase
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_reads_only_and_its_budget_holds_the_real_calls() {
    let w = World::new().await;
    w.bake_image(SERVICE, "web-v1").await;
    w.bake_image(SERVICE, "web-v2").await;
    let engine = w.engine();
    plan_holds_the_real_calls(&w, &engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auto_scaling_groups_the_plan_reads_only_and_its_budget_holds_the_real_calls() {
    let w = World::new().await;
    w.bake_image(SERVICE, "web-v1").await;
    w.bake_image(SERVICE, "web-v2").await;
    let template = w.launch_template("web").await;
    let fleet = w.asg_fleet(&template);
    let engine = w.asg_engine(&fleet);
    plan_holds_the_real_calls(&w, &engine).await;
}

/// v1 serves; the plan of v2 makes reads only, and the real v2 deployment's calls per phase
/// lie within the plan's budget.
async fn plan_holds_the_real_calls(w: &World, engine: &Engine) {
    assert!(engine.deploy(request("web-v1")).await.unwrap().succeeded());
    w.calls.take();
    let plan = engine.plan(request("web-v2")).await.unwrap();
    let reads = CallCounter::counts(&w.calls.take());
    let writes: Vec<_> = reads
        .keys()
        .filter(|op| !op.starts_with("Describe"))
        .collect();
    assert!(writes.is_empty(), "the plan made writes: {writes:?}");
    assert!(plan.would_run(), "{:?}", plan.refusals);
    let budget = plan.budget.clone().unwrap();
    assert!(budget.unknown.is_empty(), "{:?}", budget.unknown);

    let per_phase = count_per_phase(w, engine);
    assert!(engine.deploy(request("web-v2")).await.unwrap().succeeded());
    let real = per_phase.lock().unwrap().clone();
    for (phase, calls) in &budget.phases {
        let got = real.get(phase).copied().unwrap_or(0);
        println!(
            "{phase:>14}: budget {} .. {:?}, real {got}",
            calls.least, calls.most
        );
        // The margin is polling: waits that last longer than one poll repeat their read.
        assert!(
            calls.least <= got,
            "{phase}: {got} calls, fewer than {}",
            calls.least
        );
        assert!(
            got <= calls.most.unwrap(),
            "{phase}: {got} calls, above {:?}",
            calls.most
        );
    }
    let total: u64 = real.values().sum();
    println!(
        "total: budget {} .. {:?}, real {total}",
        budget.total.least, budget.total.most
    );
}
