//! The router against a real HAProxy: the preview entry point, restoring dynamic servers
//! (which do not survive a restart) from the router's state file, and health checks slower
//! than their interval.

mod common;

use std::time::{Duration, Instant};

use common::Lab;
use immutable_core::{
    DeploymentId, DeploymentRequest, Fleet, FleetSpec, HealthState, ImageRef, InstanceState,
    ServiceName, TrafficRouter,
};
use immutable_local::HaproxyOptions;

async fn answered_by(url: &str) -> Option<String> {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .ok()?;
    resp.headers()
        .get("x-image")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_haproxy_gets_its_routing_back() {
    let mut lab = Lab::start(&["web"]).await;
    let v1 = lab.import_demo("web", "v1", false).await;
    let engine = lab.engine().build().unwrap();
    let report = engine
        .deploy(DeploymentRequest::new("web", ImageRef::name("v1")).bake_time(Duration::ZERO))
        .await
        .unwrap();
    assert!(report.succeeded());
    let web = ServiceName::new("web").unwrap();
    let url = lab.haproxy.url("web");
    assert_eq!(answered_by(&url).await.as_deref(), Some(v1.id.as_str()));
    let routing = lab.router.routing(&web).await.unwrap();

    lab.haproxy.restart().await.unwrap();
    assert!(lab.router.servers(&web).await.unwrap().is_empty());
    assert_eq!(answered_by(&url).await, None, "no server after the restart");

    assert_eq!(lab.router.restore().await.unwrap(), 2);
    assert_eq!(
        lab.router.restore().await.unwrap(),
        0,
        "restore is idempotent"
    );
    assert_eq!(lab.router.routing(&web).await.unwrap(), routing);
    let target = report.record.green.target.clone().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab
        .router
        .health(&web, &target)
        .await
        .unwrap()
        .count(HealthState::Healthy)
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "restored servers never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answered_by(&url).await.as_deref(), Some(v1.id.as_str()));
}

/// Polls `url` until `image` answers (bounded: 10 s).
async fn until_answered_by(url: &str, image: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while answered_by(url).await.as_deref() != image {
        assert!(
            Instant::now() < deadline,
            "{url} never answered as {image:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_entry_point_serves_the_candidate_alone() {
    let lab = Lab::start(&["web"]).await;
    let v1 = lab.import_demo("web", "v1", false).await;
    let v2 = lab.import_demo("web", "v2", false).await;
    let engine = lab.engine().build().unwrap();
    let request = DeploymentRequest::new("web", ImageRef::name("v1")).bake_time(Duration::ZERO);
    assert!(engine.deploy(request).await.unwrap().succeeded());
    let web = ServiceName::new("web").unwrap();
    let spec = FleetSpec::new(web.clone(), DeploymentId::generate(), v2.id.clone(), 1);
    let candidate = lab.fleet.launch(&spec).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let candidate = loop {
        let info = lab.fleet.describe(&web, &candidate.id).await.unwrap();
        if info.count(InstanceState::Running) == 1 {
            break info;
        }
        assert!(Instant::now() < deadline, "the candidate never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let target = lab.router.attach(&candidate).await.unwrap();

    lab.router.preview(&web, Some(&target.id)).await.unwrap();
    let (live, preview) = (lab.haproxy.url("web"), lab.haproxy.preview_url("web"));
    until_answered_by(&preview, Some(v2.id.as_str())).await;
    for _ in 0..20 {
        assert_eq!(answered_by(&live).await.as_deref(), Some(v1.id.as_str()));
    }
    lab.router.preview(&web, None).await.unwrap();
    until_answered_by(&preview, None).await;
    lab.router.detach(&web, &target.id).await.unwrap();
    lab.fleet.terminate(&web, &candidate.id).await.unwrap();
}

/// A health check answering later than the check interval (300 ms, checks every 100 ms) still
/// passes: HAProxy's check timeout is its own 2 s, not the interval, so a slow moment on the
/// machine does not mark a healthy server down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_slower_than_its_interval_still_passes() {
    let mut options = HaproxyOptions::new(["web"]);
    options.health_path = "/?delay_ms=300".into();
    let lab = Lab::start_with(options).await;
    lab.import_demo("web", "v1", false).await;
    let engine = lab.engine().build().unwrap();
    let report = engine
        .deploy(
            DeploymentRequest::new("web", ImageRef::name("v1"))
                .bake_time(Duration::ZERO)
                .health_timeout(Duration::from_secs(15)),
        )
        .await
        .unwrap();
    assert!(report.succeeded(), "{:?}", report.outcome);
}
