//! Measures the Docker backend and prints a table: the time of a v1 -> v2 blue-green swap of 4
//! containers (launch, health, shift, retire; no bake), and the time from a container's
//! create-and-start to running in Docker and to healthy in HAProxy.
//!
//! `cargo bench -p immutable-docker --bench swap` (needs a Docker daemon at `DOCKER_HOST` or
//! /var/run/docker.sock, and `haproxy` on `PATH`). HAProxy checks every 100 ms and needs 2
//! passes, so "healthy" includes up to about 200 ms of checking.
#![allow(missing_docs, clippy::print_stdout)]

use std::time::{Duration, Instant};

use immutable_core::{
    DeploymentId, DeploymentRequest, Engine, Fleet, FleetSpec, HealthState, ImageRef, ImageStore,
    InstanceState, ServiceName, Settings, TrafficRouter,
};
use immutable_docker::{
    DockerFleet, DockerHost, DockerHosts, DockerImageStore, ImageSource, ImportRequest,
    ScratchImage,
};
use immutable_local::{Haproxy, HaproxyOptions};

const DEMO_APP: &str = env!("CARGO_BIN_EXE_immutable-docker-demo-app");
const RUNS: usize = 5;

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench());
}

fn spread(mut xs: Vec<Duration>) -> String {
    xs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{:>8.0} {:>8.0} {:>8.0}",
        ms(xs[0]),
        ms(xs[xs.len() / 2]),
        ms(xs[xs.len() - 1])
    )
}

async fn bench() {
    let url = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let host = DockerHost::connect("local", url)
        .await
        .expect("a Docker daemon answers");
    let dir = tempfile::tempdir().unwrap();
    let images = DockerImageStore::open(
        dir.path().join("root"),
        DockerHosts::new([host.clone()]).unwrap(),
    )
    .unwrap();
    let service = format!("bench-{:06x}", fastrand::u32(..0x100_0000));
    for version in ["v1", "v2"] {
        let id = ScratchImage::new(DEMO_APP)
            .label("org.example.version", version)
            .tag(format!("immutable-docker-bench:{version}"))
            .build(host.client())
            .await
            .unwrap();
        images
            .import(ImportRequest::new(
                &service,
                version,
                ImageSource::Docker(id),
            ))
            .await
            .unwrap();
    }
    let fleet = DockerFleet::open(&images)
        .unwrap()
        .with_grace_period(Duration::from_secs(5));
    let haproxy = Haproxy::start(HaproxyOptions::new([service.as_str()]))
        .await
        .expect("HAProxy");
    let router = haproxy
        .router_builder()
        .state_dir(dir.path().join("router"))
        .instances(fleet.clone())
        .health_checks(Duration::from_millis(100), 2, 2)
        .build()
        .await
        .unwrap();
    let engine = Engine::builder()
        .images(images.clone())
        .fleet(fleet.clone())
        .router(router.clone())
        .settings(Settings::default().with_poll_interval(Duration::from_millis(50)))
        .store(immutable_core::InMemoryStore::new())
        .build()
        .unwrap();
    let request = |image: &str| {
        DeploymentRequest::new(service.as_str(), ImageRef::name(image))
            .capacity(4)
            .bake_time(Duration::ZERO)
    };
    assert!(engine.deploy(request("v1")).await.unwrap().succeeded());
    let mut swaps = Vec::new();
    for run in 0..RUNS {
        let image = if run % 2 == 0 { "v2" } else { "v1" };
        let started = Instant::now();
        assert!(engine.deploy(request(image)).await.unwrap().succeeded());
        swaps.push(started.elapsed());
    }

    // One container at a time: create and start, then running in Docker, then healthy.
    let svc = ServiceName::new(&service).unwrap();
    let v1 = images.resolve(&svc, &ImageRef::name("v1")).await.unwrap();
    let (mut running, mut healthy) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let spec = FleetSpec::new(svc.clone(), DeploymentId::generate(), v1.id.clone(), 1);
        let started = Instant::now();
        let launched = fleet.launch(&spec).await.unwrap();
        loop {
            let info = fleet.describe(&svc, &launched.id).await.unwrap();
            if info.count(InstanceState::Running) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        running.push(started.elapsed());
        let target = router.attach(&launched).await.unwrap();
        loop {
            let report = router.health(&svc, &target.id).await.unwrap();
            if report
                .instances
                .iter()
                .all(|i| i.state == HealthState::Healthy)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        healthy.push(started.elapsed());
        router.detach(&svc, &target.id).await.unwrap();
        fleet.terminate(&svc, &launched.id).await.unwrap();
    }
    for f in fleet.list(&svc).await.unwrap() {
        fleet.terminate(&svc, &f.id).await.unwrap();
    }
    println!("\nDocker backend, {RUNS} runs each (ms)        min   median      max");
    println!("v1 -> v2 blue-green swap, 4 containers {}", spread(swaps));
    println!("create+start -> running (Docker)       {}", spread(running));
    println!("create+start -> healthy (HAProxy)      {}", spread(healthy));
}
