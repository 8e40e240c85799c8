//! The negative control: the same blue-green swap under the same load, but the old fleet is
//! killed right after the shift instead of being drained and kept for the bake. The load test
//! must see failed requests, or it could not prove anything.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{Lab, Timeline, warm_up};
use immutable_core::{DeploymentRequest, Fleet, ImageRef, ServiceName};
use immutable_testkit::load::KillOnShift;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_old_fleet_right_after_the_shift_fails_requests() {
    let _one_at_a_time = immutable_testkit::serial::exclusive().await;
    let lab = Lab::start(&["web"]).await;
    lab.import_demo("web", "v1", "v1", false).await;
    lab.import_demo("web", "v2", "v2", false).await;
    let request = |image: &str| {
        DeploymentRequest::new(lab.svc("web"), ImageRef::name(image))
            .capacity(2)
            .health_timeout(Duration::from_secs(20))
            .bake_time(Duration::from_secs(1))
    };
    let engine = lab.engine().build().unwrap();
    assert!(engine.deploy(request("v1")).await.unwrap().succeeded());

    let careless = lab
        .engine()
        .router(KillOnShift {
            router: lab.router.clone(),
            fleet: Arc::new(lab.fleet.clone().with_grace_period(Duration::ZERO)),
        })
        .build()
        .unwrap();
    let start = Instant::now();
    let timeline = Timeline::attach(&careless);
    // Each request held a second: whatever the machine's pace between the shift and the kill
    // (the router's and the fleet's state files are fsynced in between), all eight clients
    // have a request on the old fleet when it dies.
    let load = lab.load_held("web", 1000, 100_000, Duration::from_secs(60));
    warm_up(&load, 8).await;
    let report = careless.deploy(request("v2")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let load = load.stop().await;

    timeline.print(start);
    println!("negative control (no drain): {}", load.summary());
    assert!(report.succeeded(), "{:?}", report.outcome);
    assert!(
        load.failed() > 0,
        "killing the old fleet with requests in flight must fail some: {}",
        load.summary()
    );
    let web = ServiceName::new(lab.svc("web")).unwrap();
    assert_eq!(lab.fleet.list(&web).await.unwrap().len(), 1);
}
