//! A v1 -> v2 blue-green swap of bare EC2 instances behind an ALB on moto's server: the engine
//! against a straight-line baseline that makes the minimal calls with the same SDK clients,
//! at 3, 100 and 1,000 instances. Prints a table: wall time to the switch (100 % on the new
//! group), total wall time, and AWS requests (counted by an interceptor, as the tests do).
//!
//! `cargo bench -p immutable-aws --bench swap` (`-- 3 100` for chosen sizes; `SWAP_RUNS=n`
//! for the runs per size, which default to 11 up to 10 instances, 5 up to 100 and 3 above). Each run of
//! each contender is on its own fresh moto server, with v1 deployed by the engine first, so
//! both see the same tagged resources; baseline and engine alternate, and the table shows the
//! median of their runs.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub,
    dead_code
)]

mod baseline;
mod world;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use immutable_core::{DeploymentRequest, EventKind, ImageRef, Steps};

use world::Bench;

pub(crate) const POLL: Duration = Duration::from_millis(50);
pub(crate) const SERVICE: &str = "web";
/// moto answers describes of 1,000 tagged instances slowly: far above the default 30 s.
pub(crate) const OPERATION_TIMEOUT: Duration = Duration::from_secs(900);

/// One measured swap.
#[derive(Debug, Clone, Copy)]
struct Sample {
    to_switch: Duration,
    total: Duration,
    requests: usize,
    /// Of those, labelling the image and retention's listing (`CreateTags`, and every
    /// `DescribeImages` after the one that resolves the image).
    retention: usize,
}

/// The requests of `calls` that label the image or list images for retention.
fn retention_work(calls: &[String]) -> usize {
    let count = |op: &str| calls.iter().filter(|c| *c == op).count();
    count("CreateTags") + count("DescribeImages").saturating_sub(1)
}

pub(crate) fn request(image: &str, capacity: u32) -> DeploymentRequest {
    DeploymentRequest::new(SERVICE, ImageRef::name(image))
        .capacity(capacity)
        .bake_time(Duration::ZERO)
        .health_timeout(Duration::from_secs(1800))
        .strategy(Steps::blue_green())
}

/// The engine's v1 -> v2, after an unmeasured v1 deployment.
async fn engine_swap(bench: &Bench, capacity: u32) -> Sample {
    let engine = bench.engine();
    let first = engine.deploy(request("web-v1", capacity)).await.unwrap();
    assert!(first.succeeded(), "{:?}", first.outcome);
    let switched: Arc<Mutex<Option<Instant>>> = Arc::default();
    let sink = switched.clone();
    engine.subscribe(move |e| {
        if let EventKind::WeightsSet { routing } = &e.kind
            && routing.sole_target().is_some()
        {
            sink.lock().unwrap().get_or_insert_with(Instant::now);
        }
    });
    let phases: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let sink = phases.clone();
    engine.subscribe(move |e| {
        if let EventKind::PhaseEntered { phase } = &e.kind {
            sink.lock()
                .unwrap()
                .push((phase.to_string(), Instant::now()));
        }
    });
    bench.calls.take();
    let start = Instant::now();
    let second = engine.deploy(request("web-v2", capacity)).await.unwrap();
    let total = start.elapsed();
    if std::env::var_os("SWAP_PHASES").is_some() {
        let phases = phases.lock().unwrap();
        if let Some((_, first)) = phases.first() {
            eprintln!("{capacity:>5} {:>14}: {}", "until plan", ms(*first - start));
        }
        let ends = phases.iter().skip(1).map(|p| p.1).chain([start + total]);
        for ((name, at), end) in phases.iter().zip(ends) {
            eprintln!("{capacity:>5} {name:>14}: {}", ms(end - *at));
        }
    }
    assert!(second.succeeded(), "{:?}", second.outcome);
    let at = switched.lock().unwrap().expect("the engine switched");
    let calls = bench.calls.take();
    Sample {
        to_switch: at - start,
        total,
        requests: calls.len(),
        retention: retention_work(&calls),
    }
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64())
}

/// Runs per contender and size: `SWAP_RUNS`, or 11 up to 10 instances, 5 up to 100 and 3 above
/// (a run of 1,000 takes about a minute on moto).
fn runs_for(n: u32) -> usize {
    std::env::var("SWAP_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(match n {
            // A run of a few instances takes ~150 ms and varies most: more runs steady the median.
            0..=10 => 11,
            11..=100 => 5,
            _ => 3,
        })
}

/// The median of each measure over the runs (requests do not vary).
fn median(mut samples: Vec<Sample>) -> Sample {
    let mid = samples.len() / 2;
    samples.sort_by_key(|s| s.to_switch);
    let to_switch = samples[mid].to_switch;
    samples.sort_by_key(|s| s.total);
    Sample {
        to_switch,
        total: samples[mid].total,
        requests: samples[mid].requests,
        retention: samples[mid].retention,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![3, 100, 1000]
    } else {
        sizes
    };
    println!(
        "v1 -> v2 blue-green on moto, bare EC2 + ALB, bake 0, poll {}; median of the runs, \
         baseline and engine alternating, each run on a fresh moto server",
        ms(POLL)
    );
    println!(
        "| instances | runs | contender | to switch | total | requests | without retention work | switch vs baseline | total vs baseline |"
    );
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        let runs = runs_for(n);
        let (mut bases, mut engines) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            bases.push(baseline::baseline(n).await);
            let bench = Bench::new().await;
            engines.push(engine_swap(&bench, n).await);
        }
        let (base, eng) = (median(bases), median(engines));
        let row = |who: &str, s: Sample, vs: Option<Sample>| {
            let (a, b) = vs.map_or(("".into(), "".into()), |v| {
                (ratio(s.to_switch, v.to_switch), ratio(s.total, v.total))
            });
            println!(
                "| {n} | {runs} | {who} | {} | {} | {} | {} | {a} | {b} |",
                ms(s.to_switch),
                ms(s.total),
                s.requests,
                s.requests - s.retention
            );
        };
        row("baseline", base, None);
        row("engine", eng, Some(base));
    }
}
