//! Measures real swaps on the local backend and prints a table: time from the weight change
//! to the first answer from the new image, request latency (p50 / p99) in steady state and
//! during the swap, and the HAProxy runtime-API requests a swap costs.
//!
//! `cargo bench -p immutable-local --bench swap` (needs `haproxy` on `PATH`). Load: 4
//! keep-alive and 4 new-connection clients on loopback, no server-side delay.
#![allow(missing_docs, clippy::print_stdout)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use immutable_core::{
    DeploymentRequest, Engine, FleetInfo, HealthReport, ImageRef, Result, Routing, ServiceName,
    Settings, Target, TargetId, TrafficRouter,
};
use immutable_local::{
    Haproxy, HaproxyOptions, HaproxyRouter, ImportRequest, LoadGen, LoadReport, LocalImageStore,
    ProcessFleet,
};

const DEMO_APP: &str = env!("CARGO_BIN_EXE_immutable-demo-app");
const SWAPS: usize = 5;

/// Notes when each weight change was sent, before HAProxy was asked.
#[derive(Debug, Clone)]
struct TimedRouter {
    inner: HaproxyRouter,
    shifts: Arc<Mutex<Vec<Instant>>>,
}

#[async_trait]
impl TrafficRouter for TimedRouter {
    async fn attach(&self, fleet: &FleetInfo) -> Result<Target> {
        self.inner.attach(fleet).await
    }
    async fn targets(&self, service: &ServiceName) -> Result<Vec<Target>> {
        self.inner.targets(service).await
    }
    async fn health(&self, service: &ServiceName, target: &TargetId) -> Result<HealthReport> {
        self.inner.health(service, target).await
    }
    async fn routing(&self, service: &ServiceName) -> Result<Routing> {
        self.inner.routing(service).await
    }
    async fn set_weights(&self, service: &ServiceName, routing: &Routing) -> Result<()> {
        self.shifts.lock().unwrap().push(Instant::now());
        self.inner.set_weights(service, routing).await
    }
    async fn detach(&self, service: &ServiceName, target: &TargetId) -> Result<()> {
        self.inner.detach(service, target).await
    }
}

struct Row {
    first_new: Duration,
    steady: (Duration, Duration),
    swap: (Duration, Duration),
    calls: u64,
    writes: u64,
    served: usize,
    failed: usize,
}

fn percentiles(load: &LoadReport, from: Instant, to: Instant) -> (Duration, Duration) {
    let p = |q| load.latency_percentile(q, from, to).unwrap_or_default();
    (p(50.0), p(99.0))
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    support::block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let images = LocalImageStore::open(dir.path().join("root")).unwrap();
    for v in 0..=SWAPS {
        let src = dir.path().join(format!("v{v}"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("VERSION"), v.to_string()).unwrap();
        let req = ImportRequest::new("web", format!("v{v}"), &src, [DEMO_APP]);
        images.import(req).await.unwrap();
    }
    let fleet = ProcessFleet::open(&images).unwrap();
    let _cleanup = support::KillOnDrop(fleet.clone());
    let haproxy = Haproxy::start(HaproxyOptions::new(["web"]))
        .await
        .expect("haproxy must be installed: apt-get install haproxy");
    let router = haproxy
        .router_builder()
        .state_dir(dir.path().join("router"))
        .instances(fleet.clone())
        .health_checks(Duration::from_millis(100), 2, 2)
        .build()
        .await
        .unwrap();
    let timed = TimedRouter {
        inner: router.clone(),
        shifts: Arc::default(),
    };
    let engine = Engine::builder()
        .images(images.clone())
        .fleet(fleet.clone())
        .router(timed.clone())
        // Every version is imported up front: retention must not retire the ones to come.
        .settings(
            Settings::default()
                .with_poll_interval(Duration::from_millis(100))
                .with_keep_images(SWAPS + 1),
        )
        .store(immutable_core::InMemoryStore::new())
        .build()
        .unwrap();
    let request = |v: usize| {
        DeploymentRequest::new("web", ImageRef::name(format!("v{v}")))
            .capacity(2)
            .bake_time(Duration::from_millis(500))
    };
    assert!(engine.deploy(request(0)).await.unwrap().succeeded());
    let mut rows = Vec::new();
    for v in 1..=SWAPS {
        rows.push(swap(&engine, &router, &timed, &haproxy, request(v)).await);
    }
    print_table(&rows);
}

async fn swap(
    engine: &Engine,
    router: &HaproxyRouter,
    timed: &TimedRouter,
    haproxy: &Haproxy,
    request: DeploymentRequest,
) -> Row {
    let load = LoadGen::new(haproxy.url("web"))
        .max_requests(500_000)
        .max_duration(Duration::from_secs(60))
        .start()
        .unwrap();
    let steady_from = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (calls, writes) = (router.api_calls(), router.api_writes());
    let deploy_from = Instant::now();
    let report = engine.deploy(request).await.unwrap();
    let deploy_to = Instant::now();
    let (calls, writes) = (router.api_calls() - calls, router.api_writes() - writes);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let load = load.stop().await;
    assert!(report.succeeded());
    let new_image = report.record.image.id.to_string();
    let shift = *timed.shifts.lock().unwrap().last().expect("a shift");
    let first_new = load
        .samples
        .iter()
        .filter(|s| s.result.as_deref() == Ok(new_image.as_str()) && s.sent >= shift)
        .map(|s| s.sent + s.latency)
        .min()
        .expect("an answer from the new image");
    Row {
        first_new: first_new.duration_since(shift),
        steady: percentiles(&load, steady_from, deploy_from),
        swap: percentiles(&load, deploy_from, deploy_to),
        calls,
        writes,
        served: load.served(),
        failed: load.failed(),
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "\nswap | shift->first new answer (ms) | steady p50/p99 (ms) | swap p50/p99 (ms) | \
         API requests (writes) | served | failed"
    );
    for (i, r) in rows.iter().enumerate() {
        println!(
            "{:>4} | {:>28} | {:>19} | {:>17} | {:>21} | {:>6} | {:>6}",
            i + 1,
            ms(r.first_new),
            format!("{}/{}", ms(r.steady.0), ms(r.steady.1)),
            format!("{}/{}", ms(r.swap.0), ms(r.swap.1)),
            format!("{} ({})", r.calls, r.writes),
            r.served,
            r.failed
        );
    }
    let mut first: Vec<Duration> = rows.iter().map(|r| r.first_new).collect();
    first.sort();
    println!(
        "median shift->first new answer: {} ms over {} swaps",
        ms(first[first.len() / 2]),
        rows.len()
    );
}
