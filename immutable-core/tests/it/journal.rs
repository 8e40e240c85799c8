//! The journal's cost does not grow with history: a deployment, a rollback, a gc and a resume
//! read the same files of a `FileStore` with 10 records behind them and with 5,000, and a
//! lost index is rebuilt without losing an unfinished deployment.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use crate::common::*;
use immutable_core::{
    DeploymentId, DeploymentRecord, DeploymentRequest, Engine, FileStore, FileStoreStats, ImageRef,
    Phase, Retention, RollbackMode, ServiceName, Settings, StateStore,
};
use immutable_mock::{MockCloud, Timings};

fn engine(cloud: &MockCloud, store: &FileStore) -> Engine {
    engine_with(cloud, store, settings())
}

fn engine_with(cloud: &MockCloud, store: &FileStore, settings: Settings) -> Engine {
    Engine::builder()
        .backends(cloud.backends())
        .store(store.clone())
        .settings(settings)
        .build()
        .unwrap()
}

/// A finished deployment like `template` (of its service), written straight through the
/// store.
async fn finished(store: &FileStore, template: &DeploymentRecord, phase: Phase) {
    let mut r = template.clone();
    r.id = DeploymentId::generate();
    r.version = 0;
    r.phase = phase;
    store.save(&mut r).await.unwrap();
}

/// A record of a finished deployment of `service`, to copy.
async fn template(service: &str) -> DeploymentRecord {
    let cloud = MockCloud::with_timings(Timings::instant());
    cloud.add_image(service, "v1");
    let engine = Engine::builder()
        .backends(cloud.backends())
        .settings(Settings::default().with_poll_interval(Duration::from_millis(1)))
        .store(immutable_core::InMemoryStore::new())
        .build()
        .unwrap();
    let request = DeploymentRequest::new(service, ImageRef::name("v1"))
        .capacity(1)
        .bake_time(Duration::ZERO);
    engine.deploy(request).await.unwrap().record
}

/// What each operation cost: (files read, directories listed, files written).
#[derive(Debug, PartialEq, Eq)]
struct Costs(Vec<(&'static str, u64, u64, u64)>);

fn delta(before: FileStoreStats, after: FileStoreStats) -> (u64, u64, u64) {
    (
        after.files_read - before.files_read,
        after.dirs_listed - before.dirs_listed,
        after.files_written - before.files_written,
    )
}

/// A directory for a store: in memory where the system has a tmpfs, since what is counted is
/// files, not time, and 5,000 records cost 20,000 fsyncs.
fn scratch() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

/// v1 serves; `history` finished records of web (a tenth of them rolled back) and a tenth as
/// many of another service lie behind; then v2 is deployed, rolled back, collected and resumed.
async fn costs_with(history: usize) -> Costs {
    let dir = scratch();
    let store = FileStore::open(dir.path())
        .unwrap()
        .with_retention(Retention::keep_all());
    let cloud = seeded_cloud(Timings::instant()).cloud;
    // In real time with instant backends, a deployment takes milliseconds and its lease (a
    // minute) is never renewed, so every count repeats exactly. (Under a paused clock, time
    // would jump to the next renewal while the store's blocking file work is under way.)
    let settings = settings().with_poll_interval(Duration::from_millis(1));
    let engine = engine_with(&cloud, &store, settings);
    let request = |v: u32| request(v).bake_time(Duration::ZERO);
    assert!(engine.deploy(request(1)).await.unwrap().succeeded());
    let (web, billing) = (template("web").await, template("billing").await);
    for i in 0..history {
        let phase = if i % 10 == 0 {
            Phase::RolledBack
        } else {
            Phase::Done
        };
        finished(&store, &web, phase).await;
        if i % 10 == 0 {
            finished(&store, &billing, Phase::Done).await;
        }
    }
    let mut costs = Vec::new();
    let mut measure = |what, before| costs.push((what, delta(before, store.stats())));
    let before = store.stats();
    assert!(engine.deploy(request(2)).await.unwrap().succeeded());
    measure("deploy", before);
    let before = store.stats();
    engine
        .rollback_with("web", RollbackMode::Redeploy)
        .await
        .unwrap();
    measure("rollback", before);
    let before = store.stats();
    engine.gc("web").await.unwrap();
    measure("gc", before);
    let before = store.stats();
    assert!(engine.resume_unfinished().await.unwrap().is_empty());
    measure("resume_unfinished", before);
    Costs(
        costs
            .into_iter()
            .map(|(w, (r, l, wr))| (w, r, l, wr))
            .collect(),
    )
}

#[tokio::test]
async fn a_deployment_reads_the_same_files_with_10_or_5000_records_behind_it() {
    let small = costs_with(10).await;
    let large = costs_with(5_000).await;
    println!("(operation, files read, directories listed, files written)");
    println!("10 records:    {small:?}");
    println!("5,000 records: {large:?}");
    assert_eq!(small, large);
}

#[tokio::test(start_paused = true)]
async fn with_its_index_lost_a_store_still_resumes_every_unfinished_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let cloud = seeded_cloud(Timings::default()).cloud;
    cloud.add_image("api", "api-v1");
    let engine = engine(&cloud, &store);
    let (web, api) = (template("web").await, template("api").await);
    for _ in 0..20 {
        finished(&store, &web, Phase::Done).await;
        finished(&store, &api, Phase::RolledBack).await;
    }
    let api = DeploymentRequest::new("api", ImageRef::name("api-v1"))
        .capacity(CAPACITY)
        .min_healthy(MIN_HEALTHY);
    for request in [request(1), api] {
        cloud.crash_after_call(6);
        tokio::select! {
            _ = engine.deploy(request) => panic!("not cut off"),
            _ = cloud.crashed() => {}
        }
    }
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    tokio::time::sleep(settings().lease_ttl).await;

    let fresh = engine_over(&cloud, dir.path());
    let results = fresh.resume_unfinished().await.unwrap();
    assert_eq!(results.len(), 2, "both unfinished deployments are found");
    for (id, result) in results {
        assert!(result.unwrap().succeeded(), "{id}");
    }
    assert!(fresh.resume_unfinished().await.unwrap().is_empty());
    for service in ["web", "api"] {
        let s = ServiceName::new(service).unwrap();
        assert_eq!(cloud.snapshot().live_fleets(&s).len(), 1, "{service}");
    }
}

fn engine_over(cloud: &MockCloud, dir: &std::path::Path) -> Engine {
    engine(cloud, &FileStore::open(dir).unwrap())
}
