//! Process fleets: graceful termination lets in-flight requests finish, and a fleet is found
//! by any `ProcessFleet` over the same root.
#![allow(clippy::print_stdout)]

mod common;

use std::time::{Duration, Instant};

use common::Lab;
use immutable_core::{DeploymentId, Fleet, FleetSpec, InstanceState, ServiceName};
use immutable_local::{LocalImageStore, ProcessFleet};

async fn running(fleet: &ProcessFleet, spec: &FleetSpec) -> immutable_core::FleetInfo {
    let launched = fleet.launch(spec).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = fleet.describe(&spec.service, &launched.id).await.unwrap();
        if info.count(InstanceState::Running) == spec.capacity as usize {
            return info;
        }
        assert!(Instant::now() < deadline, "never ran: {info:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    let lab = Lab::start(&["web"]).await;
    let v1 = lab.import_demo("web", "v1", false).await;
    let web = ServiceName::new("web").unwrap();
    let spec = FleetSpec::new(web.clone(), DeploymentId::generate(), v1.id.clone(), 1);
    let info = running(&lab.fleet, &spec).await;
    let (_, addr) = lab.fleet.addresses(&web, &info.id).await.unwrap()[0];
    let slow = tokio::spawn(async move {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let resp = client
            .get(format!("http://{addr}/?delay_ms=3000"))
            .send()
            .await?;
        Ok::<_, reqwest::Error>((resp.status(), resp.text().await?))
    });
    // A second for the request to reach the app, however slow the machine; it then has two
    // more to go, well within the 5 s grace period.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    lab.fleet.terminate(&web, &info.id).await.unwrap();
    let (status, body) = slow
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(status, 200);
    assert!(body.contains(v1.id.as_str()), "{body}");
    println!("terminated in {:?} (grace period 5 s)", started.elapsed());
    let after = lab.fleet.describe(&web, &info.id).await.unwrap();
    assert_eq!(after.count(InstanceState::Terminated), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_fleet_over_the_same_root_finds_the_fleet() {
    let lab = Lab::start(&["web"]).await;
    let v1 = lab.import_demo("web", "v1", false).await;
    let web = ServiceName::new("web").unwrap();
    let spec = FleetSpec::new(web.clone(), DeploymentId::generate(), v1.id.clone(), 2);
    let info = running(&lab.fleet, &spec).await;

    // As a deploy tool started later would: its own handles on the same root.
    let images = LocalImageStore::open(lab.images.root()).unwrap();
    let later = ProcessFleet::open(&images).unwrap();
    let listed = later.list(&web).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, info.id);
    assert_eq!(listed[0].count(InstanceState::Running), 2);
    assert_eq!(
        later.launch(&spec).await.unwrap().id,
        info.id,
        "launch is idempotent"
    );
    later.terminate(&web, &info.id).await.unwrap();
    assert!(lab.fleet.list(&web).await.unwrap().is_empty());
}
