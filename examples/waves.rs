//! Waves: web-v2 goes to three regions (four accounts) in waves of 1, 1 and 2, with a bake
//! between waves, on the in-memory mock cloud in virtual time.
//!
//! The error-rate metric goes bad while the second wave's deployment takes 10 % of traffic:
//! that deployment rolls back, the plan halts the service in the shared store (no engine
//! sharing it will advance `web` until an operator lifts the halt), the third wave never
//! starts, and the first wave is rolled back. Printed as one timeline of the plan's events and
//! each region's routing and checks, waves numbered from 1 as the SDK's texts number them.
//!
//! Run it with `cargo run -p immutable-examples --example waves`.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use immutable_core::{
    Check, CheckContext, CheckOutcome, DeploymentRequest, Engine, EventKind, ImageRef,
    InMemoryStore, OnWaveFailure, Operator, StateStore, Step, Steps, TargetOutcome, TokioClock,
    WaveBake, WaveEventKind, WaveFailure, WavePlan, WaveRecord, WaveRunner, WaveState,
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

fn main() -> Result<(), immutable_examples::Failure> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?
        .block_on(run())?)
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
            if let Some(line) = region_line(&e.kind) {
                println!("[{}] {region:>13} | {line}", stamp(e.at));
            }
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
        if let Some(line) = plan_line(&e.kind) {
            println!("[{}] {:>13} | {line}", stamp(e.at), "wave plan");
        }
    });

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
    println!("web-v1 serves in every region; web-v2 goes out in waves of 1, 1 and 2:");
    for (w, (name, targets)) in plan.waves().iter().enumerate() {
        let engines: Vec<&str> = targets.iter().map(|t| t.engine.as_str()).collect();
        println!("  wave {}: {} ({name})", w + 1, engines.join(" + "));
    }
    println!("with a 30-minute bake after each wave but the last\n");
    let report = runner.run(plan).await?;

    println!("\nthe plan ended {}:", report.state);
    print_waves(&report.record);
    for halt in Operator::new(shared).halts(None).await? {
        println!("{} stays halted until an operator lifts it", halt.scope);
    }
    Ok(())
}

/// A region's event worth a line: routing, checks and how the deployment ends.
fn region_line(kind: &EventKind) -> Option<String> {
    match kind {
        EventKind::WeightsSet { .. } | EventKind::CheckResult { .. } => Some(kind.to_string()),
        EventKind::Completed { .. } => Some(kind.to_string()),
        EventKind::RollbackStarted { .. } => Some("rolling back".into()),
        EventKind::RolledBack { .. } => Some("rolled back".into()),
        _ => None,
    }
}

/// The plan's event as a line, waves numbered from 1.
fn plan_line(kind: &WaveEventKind) -> Option<String> {
    let line = match kind {
        WaveEventKind::WaveStarted {
            wave,
            name,
            engines,
        } => format!(
            "wave {} `{name}` starts on {}",
            wave + 1,
            engines.join(" + ")
        ),
        WaveEventKind::DeploymentEnded {
            wave,
            engine,
            outcome,
        } => format!("wave {}: {engine} {}", wave + 1, short(outcome)),
        WaveEventKind::StateEntered {
            state: WaveState::Baking,
            wave,
        } => format!("baking before wave {}", wave + 2),
        WaveEventKind::StateEntered {
            state: WaveState::RollingBack,
            ..
        } => "rolling back the waves done, newest first".into(),
        WaveEventKind::StateEntered { .. } | WaveEventKind::DeploymentStarted { .. } => {
            return None;
        }
        WaveEventKind::Failed { failure } => format!("failed: {}", failure_line(failure)),
        WaveEventKind::Halted { halt } => format!("{} halted by {}", halt.scope, halt.by),
        WaveEventKind::RollbackStarted { wave, engine, .. } => {
            format!("wave {}: rolling back {engine}", wave + 1)
        }
        WaveEventKind::RollbackEnded {
            wave,
            engine,
            outcome,
        } => format!("wave {}: rollback on {engine} {}", wave + 1, short(outcome)),
        other => other.to_string(),
    };
    Some(line)
}

fn failure_line(failure: &WaveFailure) -> String {
    match failure {
        WaveFailure::Deployment {
            wave,
            engine,
            outcome,
        } => format!(
            "wave {}: the deployment on {engine} {}",
            wave + 1,
            short(outcome)
        ),
        WaveFailure::Check {
            wave,
            engine,
            check,
            reason,
        } => format!(
            "wave {}: gate `{check}` failed on {engine}: {reason}",
            wave + 1
        ),
        other => other.to_string(),
    }
}

/// An outcome without its cause, which the region's lines show.
fn short(outcome: &TargetOutcome) -> String {
    match outcome {
        TargetOutcome::RolledBack { .. } => "rolled back".into(),
        other => other.to_string(),
    }
}

/// Where each deployment of the plan ended.
fn print_waves(record: &WaveRecord) {
    for (w, runs) in record.targets.iter().enumerate() {
        for run in runs {
            let how = match (&run.outcome, &run.rollback_outcome) {
                _ if run.deployment.is_none() => "never started".to_owned(),
                (Some(done), Some(back)) => format!("{}, then its rollback {back}", short(done)),
                (Some(done), None) => short(done),
                (None, _) => "did not end".to_owned(),
            };
            println!("  wave {} {:>13}: {how}", w + 1, run.engine);
        }
    }
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
        .backends(cloud.backends())
        .store(InMemoryStore::new())
        .halts_from(Arc::clone(shared))
        .check("errors", errors.clone())
        .identity(format!("deployer in {region}"))
        .clock(clock)
        .build()
}
