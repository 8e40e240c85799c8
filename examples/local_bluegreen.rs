//! A real swap on your machine: two versions of the demo app imported as images, HAProxy on
//! loopback ports, v1 deployed, then v2 rolled out as a canary (10 %, 50 %, 100 %, each
//! cutover verified by real requests) while a bounded load generator runs. It prints the
//! timeline of events and the requests served and failed.
//!
//! Run it with `cargo run --example local_bluegreen` (needs `haproxy` on `PATH`:
//! `apt-get install haproxy`). The demo app is this very program, started as
//! `local_bluegreen demo-app` by each instance.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use immutable_core::{
    CutoverCheck, DeploymentRequest, Engine, EventKind, ImageRef, Settings, Steps,
};
use immutable_local::demo::{DemoConfig, serve};
use immutable_local::{
    Haproxy, HaproxyOptions, ImportRequest, LoadGen, LocalImageStore, ProcessFleet,
};

/// Kills every instance when the example ends, however it ends.
struct KillOnDrop(ProcessFleet);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill_all();
    }
}

#[tokio::main]
async fn main() -> Result<(), immutable_examples::Failure> {
    if std::env::args().nth(1).as_deref() == Some("demo-app") {
        return Ok(serve(DemoConfig::from_env()?).await?);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let dir = tempfile::tempdir()?;
    let images = LocalImageStore::open(dir.path().join("root"))?;
    import_versions(&images, dir.path()).await?;
    let fleet = ProcessFleet::open(&images)?.with_grace_period(Duration::from_secs(5));
    let _cleanup = KillOnDrop(fleet.clone());
    let haproxy = Haproxy::start(HaproxyOptions::new(["web"])).await?;
    let url = haproxy.url("web");
    println!(
        "HAProxy serves web on {url} (admin socket {})",
        haproxy.admin_socket().display()
    );
    let router = haproxy
        .router_builder()
        .state_dir(dir.path().join("router"))
        .instances(fleet.clone())
        .health_checks(Duration::from_millis(200), 2, 2)
        .build()
        .await?;
    let engine = Engine::builder()
        .images(images)
        .fleet(fleet)
        .router(router.clone())
        .check("cutover", cutover(&url)?)
        .settings(Settings::default().with_poll_interval(Duration::from_millis(100)))
        .store(immutable_core::InMemoryStore::new())
        .build()?;
    let start = Instant::now();
    engine.subscribe(move |e| {
        if !matches!(e.kind, EventKind::StepFinished { note: None, .. }) {
            println!("[{:>6.2}s] {}", start.elapsed().as_secs_f64(), e.kind);
        }
    });
    let canary = Steps::canary([10, 50, 100], Duration::from_secs(2))
        .with_checks(Vec::<String>::new(), ["cutover"]);
    let request = |image: &str| {
        DeploymentRequest::new("web", ImageRef::name(image))
            .capacity(3)
            .strategy(canary.clone())
            .bake_time(Duration::from_secs(2))
    };

    println!("\n=== deploying v1 ===");
    let first = engine.deploy(request("v1")).await?;
    if !first.succeeded() {
        return Err(format!("v1 did not deploy: {}", first.outcome).into());
    }
    println!("\n=== deploying v2 under load ===");
    let load = LoadGen::new(format!("{url}/?delay_ms=10"))
        .keep_alive_clients(4)
        .new_connection_clients(4)
        .max_requests(100_000)
        .max_duration(Duration::from_secs(60))
        .start()?;
    let calls = router.api_calls();
    let report = engine.deploy(request("v2")).await?;
    let load = load.stop().await;
    summarize(&load, &report.outcome, router.api_calls() - calls);
    Ok(())
}

/// Two versions of the demo app (this program, run as `local_bluegreen demo-app`).
async fn import_versions(
    images: &LocalImageStore,
    dir: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?.display().to_string();
    for version in ["v1", "v2"] {
        let src = dir.join(version);
        std::fs::create_dir_all(&src)?;
        std::fs::write(src.join("VERSION"), version)?;
        let request = ImportRequest::new("web", version, &src, [exe.as_str(), "demo-app"]);
        let image = images.import(request).await?;
        println!("imported {version} as {}", image.id);
    }
    Ok(())
}

/// After every shift: 200 requests, the new image's share within 12 points of the weight.
fn cutover(url: &str) -> immutable_core::Result<CutoverCheck> {
    Ok(CutoverCheck::new(url)?
        .samples(200)
        .tolerance_percent(12)
        .interval(Duration::from_millis(200)))
}

fn summarize(load: &immutable_local::LoadReport, outcome: &immutable_core::Outcome, calls: u64) {
    println!("\n=== result ===");
    println!("deployment: {outcome}");
    println!("load: {}", load.summary());
    let mut by_image: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &load.samples {
        if let Ok(image) = &s.result {
            *by_image.entry(image).or_default() += 1;
        }
    }
    let by_image: Vec<String> = by_image.iter().map(|(i, n)| format!("{i}: {n}")).collect();
    println!("answers by image: {}", by_image.join(", "));
    if let (Some(first), Some(last)) = (load.samples.first(), load.samples.last()) {
        let p = |q| load.latency_percentile(q, first.sent, last.sent + Duration::from_millis(1));
        let ms = |d: Option<Duration>| {
            d.map_or("-".into(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3))
        };
        println!("latency: p50 {}, p99 {}", ms(p(50.0)), ms(p(99.0)));
    }
    println!("HAProxy runtime-API requests during the v2 deployment: {calls}");
}
