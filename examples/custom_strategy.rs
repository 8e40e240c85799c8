//! A custom rollout strategy, written with the `Strategy` trait, on the mock cloud.
//!
//! `StepUpWhileHealthy` moves the new fleet's share through 10, 25, 50 and 100 %, running the
//! error-rate check after every shift and pausing two minutes before the next. It runs twice:
//! once against a healthy release, and once against a release whose error rate climbs at 50 %
//! of traffic, which the check catches: all traffic returns to the old fleet in one routing
//! call and the new fleet is removed.
//!
//! Run it with `cargo run --example custom_strategy`.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use immutable_core::{
    Check, CheckContext, CheckOutcome, DeploymentRequest, Engine, EventKind, ImageRef, Outcome,
    Progress, Step, Strategy, StrategySpec, TokioClock,
};
use immutable_mock::MockCloud;

/// 10 %, 25 %, 50 %, 100 %: each shift followed by the error-rate check and a pause.
#[derive(Debug)]
struct StepUpWhileHealthy;

impl StepUpWhileHealthy {
    fn next_weight(weight: u32) -> u32 {
        match weight {
            0..10 => 10,
            10..25 => 25,
            25..50 => 50,
            _ => 100,
        }
    }
}

#[async_trait]
impl Strategy for StepUpWhileHealthy {
    async fn next_step(&self, p: &Progress<'_>) -> immutable_core::Result<Option<Step>> {
        // The step list so far decides the next one, so a resumed deployment continues alike.
        let next = match p.taken.last().map(|s| &s.step) {
            None => Step::shift(Self::next_weight(0)),
            Some(Step::Shift { .. }) => Step::checks(["error-rate"]),
            Some(Step::Checks { .. }) if p.weight == 100 => return Ok(None),
            Some(Step::Checks { .. }) => Step::pause(Duration::from_secs(120)),
            Some(_) => Step::shift(Self::next_weight(p.weight)),
        };
        Ok(Some(next))
    }
}

/// A stand-in for a metrics query: the error rate of the new fleet at its current share.
#[derive(Debug)]
struct ErrorRate {
    regression: Arc<AtomicBool>,
}

#[async_trait]
impl Check for ErrorRate {
    async fn run(&self, ctx: &CheckContext<'_>) -> CheckOutcome {
        let rate = if self.regression.load(Ordering::SeqCst) && ctx.weight >= 50 {
            4.2
        } else {
            0.1
        };
        if rate < 1.0 {
            CheckOutcome::Pass
        } else {
            CheckOutcome::fail(format!("error rate {rate} % is above the 1 % budget"))
        }
    }
}

fn main() -> Result<(), immutable_examples::Failure> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?
        .block_on(run())?)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let cloud = MockCloud::new();
    for v in ["web-v1", "web-v2", "web-v3"] {
        cloud.add_image("web", v);
    }
    let regression = Arc::new(AtomicBool::new(false));
    let start = SystemTime::now();
    let engine = Engine::builder()
        .backends(cloud.backends())
        .clock(TokioClock::starting_at(start))
        .strategy("step-up-while-healthy", StepUpWhileHealthy)
        .check(
            "error-rate",
            ErrorRate {
                regression: Arc::clone(&regression),
            },
        )
        .store(immutable_core::InMemoryStore::new())
        .build()?;
    engine.subscribe(move |e| {
        let shown = matches!(
            e.kind,
            EventKind::StepStarted { .. }
                | EventKind::CheckResult { .. }
                | EventKind::WeightsSet { .. }
                | EventKind::RollbackStarted { .. }
                | EventKind::RolledBack { .. }
                | EventKind::Completed { .. }
        );
        if shown {
            let t = e.at.duration_since(start).unwrap_or_default().as_secs();
            println!("[{:02}:{:02}] {}", t / 60, t % 60, e.kind);
        }
    });

    let request = |image: &str| {
        DeploymentRequest::new("web", ImageRef::name(image))
            .capacity(4)
            .bake_time(Duration::from_secs(300))
            .strategy(StrategySpec::named("step-up-while-healthy"))
    };
    println!("=== web-v1 (first deployment) ===");
    show(engine.deploy(request("web-v1")).await?.outcome);
    println!("\n=== web-v2: a healthy release ===");
    show(engine.deploy(request("web-v2")).await?.outcome);
    println!("\n=== web-v3: errors climb once it takes 50 % ===");
    regression.store(true, Ordering::SeqCst);
    show(engine.deploy(request("web-v3")).await?.outcome);

    let snap = cloud.snapshot();
    let web = immutable_core::ServiceName::new("web")?;
    let serving = snap.live_fleets(&web);
    let image = snap
        .images
        .iter()
        .find(|i| i.id == serving[0].image)
        .map(|i| i.name.clone());
    println!(
        "\nserving now: {} ({})",
        serving[0].id,
        image.unwrap_or_default()
    );
    Ok(())
}

fn show(outcome: Outcome) {
    println!("=> {outcome}");
}
