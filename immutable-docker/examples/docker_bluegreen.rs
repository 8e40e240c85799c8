//! A real swap of containers on your machine: two versions of the demo app built into
//! `FROM scratch` images, HAProxy on loopback ports, v1 deployed as 3 containers, then v2
//! rolled out as a canary (10 %, 50 %, 100 %, each cutover verified by real requests) while a
//! bounded load generator runs. It prints the timeline, the requests served and failed, and
//! removes its containers at the end.
//!
//! Run it with `cargo run -p immutable-docker --example docker_bluegreen`. It needs a Docker
//! daemon (`DOCKER_HOST`, or /var/run/docker.sock; Debian: `apt-get install docker.io` and
//! start `dockerd`) and `haproxy` on `PATH`. The demo app is this very program, run as
//! `docker_bluegreen demo-app` inside each container; the images hold it and the shared
//! libraries it needs, nothing else.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use immutable_core::{
    CutoverCheck, DeploymentRequest, Engine, EventKind, Fleet, ImageRef, ServiceName, Settings,
    Steps,
};
use immutable_docker::{
    DockerFleet, DockerHost, DockerHosts, DockerImageStore, ImageSource, ImportRequest,
    ScratchImage,
};
use immutable_local::{Haproxy, HaproxyOptions, LoadGen};

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("demo-app") {
        return immutable_local::demo::run("demo-app").await;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            let mut cause = e.source();
            while let Some(c) = cause {
                eprintln!("  caused by: {c}");
                cause = c.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Failure> {
    let url = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let host = DockerHost::connect("local", url).await?;
    let dir = tempfile::tempdir()?;
    let images =
        DockerImageStore::open(dir.path().join("root"), DockerHosts::new([host.clone()])?)?;
    build_versions(&host, &images).await?;
    let fleet = DockerFleet::open(&images)?.with_grace_period(Duration::from_secs(5));
    let haproxy = Haproxy::start(HaproxyOptions::new(["web"])).await?;
    let url = haproxy.url("web");
    println!("HAProxy serves web on {url}");
    let router = haproxy
        .router_builder()
        .state_dir(dir.path().join("router"))
        .instances(fleet.clone())
        .health_checks(Duration::from_millis(200), 2, 2)
        .build()
        .await?;
    let engine = Engine::builder()
        .images(images)
        .fleet(fleet.clone())
        .router(router.clone())
        .check(
            "cutover",
            CutoverCheck::new(&url)?
                .samples(200)
                .tolerance_percent(12)
                .interval(Duration::from_millis(200)),
        )
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
    let result = async {
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
        let report = engine.deploy(request("v2")).await?;
        let load = load.stop().await;
        println!("\n=== result ===");
        println!("deployment: {}", report.outcome);
        println!("load: {}", load.summary());
        Ok::<_, Failure>(())
    }
    .await;
    // The containers outlive this program unless removed: remove them, however it went.
    let web = ServiceName::new("web")?;
    for f in fleet.list(&web).await? {
        fleet.terminate(&web, &f.id).await?;
    }
    println!("removed the example's containers");
    result
}

/// Two versions of the demo app, built `FROM scratch` from this program and imported.
async fn build_versions(host: &DockerHost, images: &DockerImageStore) -> Result<(), Failure> {
    let exe = std::env::current_exe()?;
    for version in ["v1", "v2"] {
        let id = ScratchImage::new(&exe)
            .arg("demo-app")
            .label("org.example.version", version)
            .tag(format!("docker-bluegreen:{version}"))
            .build(host.client())
            .await?;
        let image = images
            .import(ImportRequest::new("web", version, ImageSource::Docker(id)))
            .await?;
        println!("built and imported {version} as {}", image.id);
    }
    Ok(())
}
