//! One fleet over two Docker daemons on this machine (the system's and a private one with its
//! own socket and data root), behind one HAProxy: one switch for both hosts, and one rollback
//! for both when one daemon refuses to start the new containers.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use crate::common::{Lab, Timeline, assert_zero_downtime, system_host, warm_up};
use immutable_core::{
    DeploymentRequest, Fleet, ImageRef, InstanceState, Outcome, RollbackCause, ServiceName,
};
use immutable_docker::{DockerHost, DockerHosts};
use immutable_testkit::docker::{PrivateDaemon, RefusingPlugin};

fn request(lab: &Lab, image: &str) -> DeploymentRequest {
    DeploymentRequest::new(lab.svc("web"), ImageRef::name(image))
        .capacity(4)
        .health_timeout(Duration::from_secs(30))
        .bake_time(Duration::from_secs(1))
}

/// The system daemon as host `a` and `daemon` as host `b`.
async fn two_hosts(daemon: &PrivateDaemon) -> DockerHosts {
    let b = DockerHost::connect("b", daemon.host_url())
        .await
        .unwrap_or_else(|e| panic!("the private daemon answers: {e}"));
    DockerHosts::new([system_host("a").await, b]).unwrap()
}

/// How many of the service's containers each daemon runs, by fleet.
async fn containers_per_host(lab: &Lab, fleet: &immutable_core::FleetId) -> Vec<(String, usize)> {
    let web = ServiceName::new(lab.svc("web")).unwrap();
    let info = lab.fleet.describe(&web, fleet).await.unwrap();
    let mut counts = Vec::new();
    for host in lab.hosts.iter() {
        let n = info
            .instances
            .iter()
            .filter(|i| i.state == InstanceState::Running)
            .filter(|i| {
                let name = i.id.as_str();
                let index: usize = name.rsplit('-').next().unwrap().parse().unwrap();
                lab.hosts
                    .iter()
                    .nth(index % lab.hosts.len())
                    .unwrap()
                    .name()
                    == host.name()
            })
            .count();
        counts.push((host.name().to_owned(), n));
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_over_two_daemons_swaps_with_no_failed_request() {
    let _one_at_a_time = immutable_testkit::serial::exclusive().await;
    let daemon = PrivateDaemon::start().await;
    let lab = Lab::on(two_hosts(&daemon).await, &["web"]).await;
    lab.import_demo("web", "v1", "v1", false).await;
    let v2 = lab.import_demo("web", "v2", "v2", false).await;
    let engine = lab.engine().build().unwrap();
    let first = engine.deploy(request(&lab, "v1")).await.unwrap();
    assert!(first.succeeded(), "{:?}", first.outcome);

    let start = Instant::now();
    let timeline = Timeline::attach(&engine);
    let load = lab.load("web", 100_000, Duration::from_secs(60));
    warm_up(&load, 100).await;
    let report = engine.deploy(request(&lab, "v2")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let load = load.stop().await;

    timeline.print(start);
    assert_eq!(report.outcome, Outcome::Succeeded);
    let since = timeline.last_shift().expect("a shift");
    assert_zero_downtime("two hosts, v1 -> v2", &load, v2.id.as_str(), since);
    let green = report.record.green.fleet.clone().unwrap();
    let spread = containers_per_host(&lab, &green).await;
    println!("two hosts: the v2 fleet's running containers per host: {spread:?}");
    assert_eq!(spread, [("a".to_owned(), 2), ("b".to_owned(), 2)]);
    let web = ServiceName::new(lab.svc("web")).unwrap();
    let fleets = lab.fleet.list(&web).await.unwrap();
    assert_eq!(
        fleets.len(),
        1,
        "the v1 fleet is gone from both hosts: {fleets:?}"
    );
    // Host b has v2's image: the import copied it there through the Engine API.
    let on_b = daemon.client().inspect_image(v2.id.as_str()).await.unwrap();
    assert_eq!(on_b.id.as_deref(), Some(v2.id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_refuses_the_new_containers_rolls_back_on_both_hosts() {
    let _one_at_a_time = immutable_testkit::serial::exclusive().await;
    let plugin = RefusingPlugin::start();
    let daemon = PrivateDaemon::builder()
        .authorization_plugin(&plugin)
        .start()
        .await;
    let lab = Lab::on(two_hosts(&daemon).await, &["web"]).await;
    let v1 = lab.import_demo("web", "v1", "v1", false).await;
    lab.import_demo("web", "v2", "v2", false).await;
    let engine = lab.engine().build().unwrap();
    let first = engine.deploy(request(&lab, "v1")).await.unwrap();
    assert!(first.succeeded(), "{:?}", first.outcome);
    let blue = first.record.green.fleet.clone().unwrap();

    plugin.refuse_container_starts(true);
    let start = Instant::now();
    let timeline = Timeline::attach(&engine);
    let load = lab.load("web", 100_000, Duration::from_secs(60));
    warm_up(&load, 100).await;
    let report = engine.deploy(request(&lab, "v2")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let load = load.stop().await;

    timeline.print(start);
    println!("host b refused {} container start(s)", plugin.refusals());
    assert!(
        plugin.refusals() > 0,
        "host b's daemon was never asked to start"
    );
    assert!(
        matches!(
            &report.outcome,
            Outcome::RolledBack {
                cause: RollbackCause::ProviderError { .. }
            }
        ),
        "{:?}",
        report.outcome
    );
    // Traffic never moved: everything came from v1.
    assert_zero_downtime("host b refuses v2", &load, v1.id.as_str(), start);
    let web = ServiceName::new(lab.svc("web")).unwrap();
    let fleets = lab.fleet.list(&web).await.unwrap();
    assert_eq!(fleets.len(), 1, "only v1's fleet is left: {fleets:?}");
    assert_eq!(fleets[0].id, blue);
    let green = report
        .record
        .green
        .fleet
        .clone()
        .expect("v2's fleet was launched");
    let gone = lab.fleet.describe(&web, &green).await.unwrap();
    assert!(
        !gone.is_live()
            && gone
                .instances
                .iter()
                .all(|i| i.state == InstanceState::Terminated),
        "v2's containers remain: {gone:?}"
    );
    for host in lab.hosts.iter() {
        let label = format!("immutable:fleet={green}");
        let options = bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some([("label".to_owned(), vec![label])].into()),
            ..Default::default()
        };
        let left = host.client().list_containers(Some(options)).await.unwrap();
        assert!(
            left.is_empty(),
            "host {}: v2 containers left: {}",
            host.name(),
            left.len()
        );
    }
    assert_eq!(
        containers_per_host(&lab, &blue).await,
        [("a".to_owned(), 2), ("b".to_owned(), 2)]
    );
}
