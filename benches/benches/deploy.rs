//! One full v1 -> v2 deployment on the mock with 10, 100 and 1,000 instances: through the
//! engine, and as the same backend calls made straight-line by hand (the engine's overhead
//! target is 1.5x the latter).
//!
//! Instant timings and a paused tokio clock: what is measured is CPU, not waits.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use immutable_core::{
    DeploymentId, DeploymentRequest, Engine, Fleet, FleetSpec, ImageRef, ImageStore, Labels,
    PreviewRouter, Routing, ServiceName, Settings, TrafficRouter, tags,
};
use immutable_mock::{MockCloud, Timings};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

fn request(version: &str, capacity: u32) -> DeploymentRequest {
    DeploymentRequest::new("web", ImageRef::name(version))
        .capacity(capacity)
        .bake_time(Duration::ZERO)
}

/// A cloud where v1 serves, and an engine over it.
async fn setup(capacity: u32) -> (MockCloud, Engine) {
    let cloud = MockCloud::with_timings(Timings::instant());
    cloud.add_image("web", "web-v1");
    cloud.add_image("web", "web-v2");
    let engine = Engine::builder()
        .backends(cloud.backends())
        .settings(Settings::default())
        .store(immutable_core::InMemoryStore::new())
        .build()
        .unwrap();
    assert!(
        engine
            .deploy(request("web-v1", capacity))
            .await
            .unwrap()
            .succeeded()
    );
    cloud.clear_calls();
    (cloud, engine)
}

/// The backend calls of a v1 -> v2 deployment, in the engine's order, with no engine.
async fn by_hand(cloud: &MockCloud, capacity: u32) {
    let web = ServiceName::new("web").unwrap();
    let image = cloud
        .resolve(&web, &ImageRef::name("web-v2"))
        .await
        .unwrap();
    let routing = cloud.routing(&web).await.unwrap();
    let blue_target = routing.sole_target().unwrap().clone();
    let targets = cloud.targets(&web).await.unwrap();
    let blue = targets.into_iter().find(|t| t.id == blue_target).unwrap();
    let blue_fleet = Fleet::describe(cloud, &web, &blue.fleet).await.unwrap();
    let spec = FleetSpec::new(
        web.clone(),
        DeploymentId::generate(),
        image.id.clone(),
        capacity,
    );
    let green = cloud.launch(&spec).await.unwrap();
    let green = Fleet::describe(cloud, &web, &green.id).await.unwrap();
    let target = cloud.attach(&green).await.unwrap();
    assert!(cloud.health(&web, &target.id).await.unwrap().healthy() >= capacity as usize);
    cloud.preview(&web, Some(&target.id)).await.unwrap();
    assert!(cloud.health(&web, &target.id).await.unwrap().healthy() >= capacity as usize);
    cloud
        .set_weights(
            &web,
            &Routing::split(Some(&blue_target), &target.id, 100).unwrap(),
        )
        .await
        .unwrap();
    assert!(cloud.health(&web, &target.id).await.unwrap().healthy() >= capacity as usize);
    cloud.preview(&web, None).await.unwrap();
    cloud.detach(&web, &blue_target).await.unwrap();
    cloud.terminate(&web, &blue_fleet.id).await.unwrap();
    let labels = Labels::from([(tags::PROMOTED.to_owned(), "x".to_owned())]);
    cloud.label(&web, &image.id, &labels).await.unwrap();
    let _ = ImageStore::list(cloud, &web).await.unwrap();
    let _ = Fleet::list(cloud, &web).await.unwrap();
}

fn deploy(c: &mut Criterion) {
    let rt = runtime();
    // The straight-line version must make exactly the engine's calls, or the comparison lies.
    rt.block_on(async {
        let (cloud, engine) = setup(10).await;
        assert!(
            engine
                .deploy(request("web-v2", 10))
                .await
                .unwrap()
                .succeeded()
        );
        let engine_calls: Vec<_> = cloud.calls().into_iter().map(|c| c.op).collect();
        let (cloud, _) = setup(10).await;
        by_hand(&cloud, 10).await;
        let hand_calls: Vec<_> = cloud.calls().into_iter().map(|c| c.op).collect();
        assert_eq!(
            engine_calls, hand_calls,
            "the by-hand bench drifted from the engine"
        );
    });

    let mut group = c.benchmark_group("v1_to_v2");
    for capacity in [10u32, 100, 1000] {
        group.bench_with_input(BenchmarkId::new("engine", capacity), &capacity, |b, &n| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (_, engine) = setup(n).await;
                    let t = Instant::now();
                    let report = engine.deploy(request("web-v2", n)).await.unwrap();
                    total += t.elapsed();
                    assert!(report.succeeded());
                }
                total
            });
        });
        group.bench_with_input(BenchmarkId::new("by_hand", capacity), &capacity, |b, &n| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (cloud, _) = setup(n).await;
                    let t = Instant::now();
                    by_hand(&cloud, n).await;
                    total += t.elapsed();
                }
                total
            });
        });
    }
    group.finish();
}

fn concurrent(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("concurrent_services");
    group.sample_size(10);
    group.bench_function("1000_services_first_deployment", |b| {
        b.to_async(&rt).iter(|| async {
            let cloud = MockCloud::with_timings(Timings::instant());
            let engine = Engine::builder()
                .backends(cloud.backends())
                .store(immutable_core::InMemoryStore::new())
                .build()
                .unwrap();
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..1000 {
                let service = format!("svc-{i}");
                let image = format!("{service}-v1");
                cloud.add_image(&service, &image);
                let engine = engine.clone();
                tasks.spawn(async move {
                    engine
                        .deploy(
                            DeploymentRequest::new(service, ImageRef::name(image))
                                .capacity(2)
                                .bake_time(Duration::ZERO),
                        )
                        .await
                });
            }
            while let Some(r) = tasks.join_next().await {
                assert!(r.unwrap().unwrap().succeeded());
            }
        });
    });
    group.finish();
}

criterion_group!(benches, deploy, concurrent);
criterion_main!(benches);
