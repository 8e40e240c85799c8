//! Dynamic servers do not survive an HAProxy restart; the router's state file puts them back.

mod common;

use std::time::{Duration, Instant};

use common::Lab;
use immutable_core::{DeploymentRequest, HealthState, ImageRef, ServiceName, TrafficRouter};

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
