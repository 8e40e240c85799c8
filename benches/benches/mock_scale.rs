//! How the mock's cost grows with services: N services on one `MockCloud`, an image each,
//! deployed all at once through one `Engine` (blue-green, capacity 2, no bake, instant
//! timings) on a current-thread runtime with a paused clock, for N = 100 to 10,000. Prints N,
//! the wall time of the N deployments and the time per service, which should stay flat.
//!
//! The target (DESIGN.md) is for a debug build, so run it in the dev profile:
//! `cargo bench -p immutable-benches --bench mock_scale --profile dev` (the header says which
//! profile was built). Numbers given as arguments replace the list of N, e.g.
//! `... --profile dev -- 1000 2000`.
#![allow(missing_docs, clippy::print_stdout)]

use std::time::{Duration, Instant};

use immutable_core::{DeploymentRequest, Engine, ImageRef};
use immutable_mock::{MockCloud, Timings};

const SIZES: [usize; 5] = [100, 1_000, 2_000, 5_000, 10_000];

struct Row {
    services: usize,
    setup: Duration,
    deploy: Duration,
}

/// Creates `n` services and deploys them all concurrently; returns the times of both.
async fn run(n: usize) -> Row {
    let started = Instant::now();
    let cloud = MockCloud::with_timings(Timings::instant());
    let engine = Engine::builder()
        .backends(cloud.backends())
        .store(immutable_core::InMemoryStore::new())
        .build()
        .unwrap();
    let requests: Vec<_> = (0..n)
        .map(|i| {
            let service = format!("svc-{i}");
            let image = format!("{service}-v1");
            cloud.add_image(&service, &image);
            DeploymentRequest::new(service, ImageRef::name(image))
                .capacity(2)
                .bake_time(Duration::ZERO)
        })
        .collect();
    let setup = started.elapsed();

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for request in requests {
        let engine = engine.clone();
        tasks.spawn(async move { engine.deploy(request).await });
    }
    let mut done = 0;
    while let Some(report) = tasks.join_next().await {
        let report = report.unwrap().unwrap();
        assert!(report.succeeded(), "{:?}", report.outcome);
        done += 1;
    }
    let deploy = started.elapsed();
    assert_eq!(done, n);
    assert_eq!(cloud.snapshot().fleets.len(), n, "one fleet per service");
    Row {
        services: n,
        setup,
        deploy,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; numbers are the sizes to run.
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace(['_', ','], "").parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        SIZES.to_vec()
    } else {
        sizes
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("concurrent first deployments on one MockCloud ({profile} build)");
    println!(
        "{:>8} {:>10} {:>11} {:>13}",
        "services", "setup ms", "deploy ms", "µs/service"
    );
    for n in sizes {
        let row = rt.block_on(run(n));
        println!(
            "{:>8} {:>10.1} {:>11.1} {:>13.1}",
            row.services,
            row.setup.as_secs_f64() * 1e3,
            row.deploy.as_secs_f64() * 1e3,
            row.deploy.as_secs_f64() * 1e6 / row.services as f64,
        );
    }
}
