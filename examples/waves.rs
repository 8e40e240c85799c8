//! Waves: web-v2 goes to three regions (four accounts) in waves of 1, 1 and 2, with a bake
//! between waves, on the in-memory mock cloud in virtual time.
//!
//! The error-rate metric goes bad while the second wave's deployment takes 10 % of traffic:
//! that deployment rolls back, the plan halts the service in the shared store (no engine
//! sharing it will advance `web` until an operator lifts the halt), the third wave never
//! starts, and the first wave is rolled back. Printed as one timeline.
//!
//! Run it with `cargo run --example waves`.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use immutable_core::{
    Check, CheckContext, CheckOutcome, DeploymentRequest, Engine, EventKind, ImageRef,
    InMemoryStore, OnWaveFailure, StateStore, Step, Steps, TokioClock, WaveBake, WaveEventKind,
    WavePlan, WaveRunner,
};
use immutable_mock::MockCloud;

/// The error rate of the new fleet, as a metrics system would report it; it goes bad when
/// the test flips it.
#[derive(Debug, Clone, Default)]
struct ErrorRate {
    bad: Arc<AtomicBool>,
}

#[async_trait]
impl Check for ErrorRate {
    async fn run(&self, _ctx: &CheckContext<'_>) -> CheckOutcome {
        if self.bad.load(Ordering::SeqCst) {
            CheckOutcome::fail("5xx rate 4.2 %, above the 1 % threshold")
        } else {
            CheckOutcome::Pass
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?
        .block_on(run())
}

const REGIONS: [&str; 4] = ["eu-west-1", "us-east-1", "ap-south-1/a", "ap-south-1/b"];

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let start = SystemTime::now();
    // One clock for every engine and the runner, so that the timeline interleaves rightly.
    let clock = TokioClock::starting_at(start);
    let stamp = move |at: SystemTime| {
        let s = at.duration_since(start).unwrap_or_default().as_secs();
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    };
    // Halts and wave records live in one store every region's engine reads halts from (a
    // DynamoDB table in production); each region keeps its deployment records in its own.
    let shared: Arc<dyn StateStore> = Arc::new(InMemoryStore::new());
    let errors = ErrorRate::default();
    let mut runner = WaveRunner::builder()
        .store_shared(Arc::clone(&shared))
        .poll_interval(Duration::from_secs(5))
        .clock(clock.clone());
    for region in REGIONS {
        let engine = region_engine(region, &shared, &errors, clock.clone())?;
        let v1 = DeploymentRequest::new("web", ImageRef::name("web-v1")).bake_time(Duration::ZERO);
        let _ = engine.deploy(v1).await?;
        engine.subscribe(move |e| {
            if matches!(
                e.kind,
                EventKind::PhaseEntered { .. } | EventKind::StepStarted { .. }
            ) {
                return;
            }
            println!("[{}] {region:>13} | {}", stamp(e.at), e.kind);
        });
        runner = runner.engine(region, engine);
    }
    let runner = runner.build()?;
    let metric = errors.clone();
    runner.subscribe(move |e| {
        if let WaveEventKind::DeploymentStarted { engine, .. } = &e.kind
            && engine == "us-east-1"
        {
            // A bug that shows only under us-east-1's traffic.
            metric.bad.store(true, Ordering::SeqCst);
        }
        println!("[{}] {:>13} | {}", stamp(e.at), "wave plan", e.kind);
    });

    println!("web-v1 serves in every region; deploying web-v2 in waves 1-1-2\n");
    let canary = Steps::from_steps(
        "canary-with-metrics",
        vec![
            Step::shift(10),
            Step::Checks {
                names: vec!["errors".into()],
            },
            Step::pause(Duration::from_secs(300)),
            Step::shift(100),
        ],
    )?;
    let request = DeploymentRequest::new("web", ImageRef::name("web-v2"))
        .strategy(canary)
        .bake_time(Duration::from_secs(600));
    let plan = WavePlan::new(request)
        .wave("canary region", ["eu-west-1"])
        .wave("americas", ["us-east-1"])
        .wave("asia", ["ap-south-1/a", "ap-south-1/b"])
        .bake(WaveBake::time(Duration::from_secs(1800)))
        .on_failure(OnWaveFailure::RollBackDone);
    let report = runner.run(plan).await?;

    println!("\nthe plan ended {}", report.state);
    if let Some(failure) = &report.record.failure {
        println!("why: {failure}");
    }
    for halt in shared.halts(None).await? {
        println!("still halted, until an operator lifts it: {halt}");
    }
    Ok(())
}

/// One region: its own cloud and store, halts read from the shared store, the `errors` check.
fn region_engine(
    region: &str,
    shared: &Arc<dyn StateStore>,
    errors: &ErrorRate,
    clock: TokioClock,
) -> Result<Engine, immutable_core::Error> {
    let cloud = MockCloud::new();
    cloud.add_image("web", "web-v1");
    cloud.add_image("web", "web-v2");
    Engine::builder()
        .images(cloud.clone())
        .fleet(cloud.clone())
        .router(cloud)
        .store(InMemoryStore::new())
        .halts_from(Arc::clone(shared))
        .check("errors", errors.clone())
        .identity(format!("deployer in {region}"))
        .clock(clock)
        .build()
}
