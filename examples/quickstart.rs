//! Quickstart: two blue-green deployments of a service on the in-memory mock cloud.
//!
//! Instances take 30 s to boot and 20 s to pass health checks, the old fleet bakes for
//! 10 minutes and drains for 10 s: all in virtual time, so the run takes milliseconds.
//!
//! Run it with `cargo run --example quickstart`.
#![allow(clippy::print_stdout)]

use std::time::{Duration, SystemTime};

use immutable_core::{DeploymentRequest, Engine, EventKind, ImageRef, Report, TokioClock};
use immutable_mock::MockCloud;

fn main() -> Result<(), immutable_examples::Failure> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    // A paused clock: every wait of the mock and the engine advances virtual time instantly.
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?
        .block_on(run())?)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let cloud = MockCloud::new();
    cloud.add_image("web", "web-v1");
    cloud.add_image("web", "web-v2");

    // The engine stamps events with wall time that follows tokio's (here virtual) clock.
    let start = SystemTime::now();
    let engine = Engine::builder()
        .backends(cloud.backends())
        .clock(TokioClock::starting_at(start))
        .store(immutable_core::InMemoryStore::new())
        .build()?;
    let clock_start = tokio::time::Instant::now();
    let since_start = move |at: SystemTime| at.duration_since(start).unwrap_or_default();
    engine.subscribe(move |event| {
        // A step's end says nothing new unless it carries a note.
        if matches!(event.kind, EventKind::StepFinished { note: None, .. }) {
            return;
        }
        println!("[{}] {}", clock(since_start(event.at)), event.kind);
    });

    let mut reports = Vec::new();
    for version in ["web-v1", "web-v2"] {
        println!("\n=== deploying {version} ===");
        let request = DeploymentRequest::new("web", ImageRef::name(version))
            .capacity(3)
            .bake_time(Duration::from_secs(600));
        reports.push(engine.deploy(request).await?);
    }

    summary(&cloud, &reports, clock_start.elapsed());
    Ok(())
}

fn summary(cloud: &MockCloud, reports: &[Report], took: Duration) {
    println!("\n=== summary ===");
    for r in reports {
        let outcome = &r.outcome;
        println!(
            "deployment {} of {}: {outcome} in {} (virtual)",
            r.record.id,
            r.record.image.name,
            clock(r.record.duration())
        );
    }
    let snap = cloud.snapshot();
    let web = reports[0].record.service();
    for fleet in snap.live_fleets(web) {
        let image = snap.images.iter().find(|i| i.id == fleet.image);
        println!(
            "serving now: fleet {} of {} ({} instances), routing {}",
            fleet.id,
            image.map_or("?", |i| i.name.as_str()),
            fleet.live_instances(),
            snap.routing_of(web)
        );
    }
    let last = &reports[reports.len() - 1].record.retired;
    let list = |items: Vec<String>| match items.is_empty() {
        true => "none".to_owned(),
        false => items.join(", "),
    };
    println!(
        "retired: fleets {}, targets {}, images {}",
        list(last.fleets.iter().map(ToString::to_string).collect()),
        list(last.targets.iter().map(ToString::to_string).collect()),
        list(last.images.iter().map(ToString::to_string).collect()),
    );
    println!(
        "images kept: {}",
        list(snap.images.iter().map(|i| i.name.clone()).collect())
    );
    println!("total: {} of virtual time", clock(took));
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
