//! Measures how long a service stays down when HAProxy is killed (SIGKILL) and started again
//! with the same configuration, while a router's `keep_restored` guard runs (as it does in
//! every `immutable` command that changes the local backend), and prints a table: HAProxy's
//! own restart, then the time from its admin socket answering to the service answering again
//! from its fleet, for each guard interval.
//!
//! `cargo bench -p immutable-local --bench restart` (needs `haproxy` on `PATH`). The service
//! is probed every 5 ms on loopback.
#![allow(missing_docs, clippy::print_stdout)]

mod support;

use std::time::{Duration, Instant};

use immutable_core::{DeploymentRequest, Engine, ImageRef};
use immutable_local::{Haproxy, HaproxyOptions, ImportRequest, LocalImageStore, ProcessFleet};

const DEMO_APP: &str = env!("CARGO_BIN_EXE_immutable-demo-app");
const RESTARTS: usize = 10;

fn main() {
    support::block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let images = LocalImageStore::open(dir.path().join("root")).unwrap();
    let src = dir.path().join("v1");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("VERSION"), "v1").unwrap();
    let image = images
        .import(ImportRequest::new("web", "v1", &src, [DEMO_APP]))
        .await
        .unwrap();
    let fleet = ProcessFleet::open(&images).unwrap();
    let _cleanup = support::KillOnDrop(fleet.clone());
    let mut haproxy = Haproxy::start(HaproxyOptions::new(["web"]))
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
    let engine = Engine::builder()
        .images(images)
        .fleet(fleet)
        .router(router.clone())
        .store(immutable_core::InMemoryStore::new())
        .build()
        .unwrap();
    let request = DeploymentRequest::new("web", ImageRef::name("v1"))
        .capacity(2)
        .bake_time(Duration::ZERO);
    assert!(engine.deploy(request).await.unwrap().succeeded());
    let url = haproxy.url("web");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();

    println!("HAProxy killed and started again {RESTARTS} times per guard interval");
    println!(
        "{:>9} | {:>22} | {:>34}",
        "guard", "HAProxy restart (ms)", "answering again after it is up (ms)"
    );
    println!(
        "{:>9} | {:>22} | {:>34}",
        "", "min / median / max", "min / median / max"
    );
    for every in [Duration::from_millis(100), Duration::from_millis(250)] {
        let _guard = router.keep_restored(every);
        let (mut restarts, mut gaps) = (Vec::new(), Vec::new());
        for _ in 0..RESTARTS {
            let killed = Instant::now();
            haproxy.kill();
            haproxy.start_again().await.unwrap();
            let up = Instant::now();
            let deadline = up + Duration::from_secs(10);
            loop {
                let answered = client.get(&url).send().await.ok().and_then(|r| {
                    let ok = r.status().is_success();
                    let img = r.headers().get("x-image")?.to_str().ok()?.to_owned();
                    ok.then_some(img)
                });
                if answered.as_deref() == Some(image.id.as_str()) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the service never answered again"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            restarts.push(up - killed);
            gaps.push(up.elapsed());
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        println!(
            "{:>7}ms | {:>22} | {:>34}",
            every.as_millis(),
            spread(&mut restarts),
            spread(&mut gaps)
        );
    }
}

fn spread(v: &mut [Duration]) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{:.0} / {:.0} / {:.0}",
        ms(v[0]),
        ms(v[v.len() / 2]),
        ms(v[v.len() - 1])
    )
}
