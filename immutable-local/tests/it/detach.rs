//! Detaching a target against a real HAProxy: all its servers are deleted in one request,
//! and again those still finishing a request once the drain gave up, until none is left.

use std::time::{Duration, Instant};

use immutable_core::{
    DeploymentId, Fleet, FleetInfo, FleetSpec, Image, InstanceState, Routing, ServiceName, Target,
    TrafficRouter,
};
use immutable_local::HaproxyRouter;

use crate::common::{Lab, answer};

fn web() -> ServiceName {
    ServiceName::new("web").unwrap()
}

/// A fleet of `image` attached to `router`, running and healthy, taking no traffic yet.
async fn attached(lab: &Lab, router: &HaproxyRouter, image: &Image) -> Target {
    let spec = FleetSpec::new(web(), DeploymentId::generate(), image.id.clone(), 3);
    let launched = lab.fleet.launch(&spec).await.unwrap();
    let fleet = until(|| async {
        let f = lab.fleet.describe(&web(), &launched.id).await.unwrap();
        (f.count(InstanceState::Running) == 3).then_some(f)
    })
    .await;
    let target = router.attach(&fleet).await.unwrap();
    until(|| async {
        let health = router.health(&web(), &target.id).await.unwrap();
        (health.healthy() == 3).then_some(())
    })
    .await;
    target
}

async fn all_to(router: &HaproxyRouter, target: &Target) {
    router
        .set_weights(&web(), &Routing::all_to(&target.id))
        .await
        .unwrap();
}

/// Polls `f` every 50 ms, at most 10 s.
async fn until<T, F: Future<Output = Option<T>>>(mut f: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = f().await {
            return found;
        }
        assert!(Instant::now() < deadline, "not within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detach_deletes_every_server_also_one_still_finishing_a_request() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start(&["web"]).await;
    // Gives up draining after 100 ms, while a request of 1.5 s still runs on an old server.
    let router = lab
        .haproxy
        .router_builder()
        .state_dir(lab.dir.path().join("router-short-drain"))
        .instances(lab.fleet.clone())
        .health_checks(Duration::from_millis(100), 2, 2)
        .drain_timeout(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let v1 = lab.import_demo("web", "v1", false).await;
    let v2 = lab.import_demo("web", "v2", false).await;
    let old = attached(&lab, &router, &v1).await;
    all_to(&router, &old).await;
    let new = attached(&lab, &router, &v2).await;
    let url = format!("{}/?delay_ms=1500", lab.haproxy.url("web"));
    let slow = tokio::spawn(async move { answer(&url).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    all_to(&router, &new).await;
    let writes = router.api_writes();

    router.detach(&web(), &old.id).await.unwrap();

    let mut left = router.servers(&web()).await.unwrap();
    let fleet: FleetInfo = lab.fleet.describe(&web(), &new.fleet).await.unwrap();
    let mut expected: Vec<String> = fleet.instances.iter().map(|i| i.id.to_string()).collect();
    left.sort();
    expected.sort();
    assert_eq!(left, expected, "only the new fleet's servers are left");
    assert_eq!(
        slow.await.unwrap().as_deref(),
        Some(v1.id.as_str()),
        "the request on the old fleet finished before its server went"
    );
    // One write drains, then each round of deletes is one write however many servers it has:
    // the one still serving the request was deleted in a later round than the others.
    let rounds = router.api_writes() - writes - 1;
    assert!(rounds >= 2, "{rounds} rounds of deletes");
    for target in [&old, &new] {
        lab.fleet.terminate(&web(), &target.fleet).await.unwrap();
    }
}
