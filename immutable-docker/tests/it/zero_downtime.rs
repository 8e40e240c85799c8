//! Zero-downtime swaps of containers behind a real HAProxy, each under a bounded load (4
//! keep-alive and 4 new-connection clients on loopback, every container on host networking
//! on a 127.0.0.1 port) for the whole deployment.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use crate::common::{Lab, Timeline, assert_zero_downtime, until_event, warm_up};
use immutable_core::{
    CutoverCheck, DeploymentRequest, EventKind, Fleet, ImageRef, Outcome, Phase, RollbackCause,
    RollbackReport, ServiceName, Step, Steps,
};

fn request(lab: &Lab, image: &str) -> DeploymentRequest {
    DeploymentRequest::new(lab.svc("web"), ImageRef::name(image))
        .capacity(2)
        .health_timeout(Duration::from_secs(20))
        .bake_time(Duration::from_secs(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_v1_to_v2_fails_no_request() {
    let _one_at_a_time = immutable_testkit::serial::exclusive().await;
    let lab = Lab::start(&["web"]).await;
    lab.import_demo("web", "v1", "v1", false).await;
    let v2 = lab.import_demo("web", "v2", "v2", false).await;
    let engine = lab.engine().build().unwrap();
    assert!(
        engine
            .deploy(request(&lab, "v1"))
            .await
            .unwrap()
            .succeeded()
    );

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
    assert_zero_downtime("blue-green v1 -> v2", &load, v2.id.as_str(), since);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_10_50_100_verifies_each_cutover() {
    let _one_at_a_time = immutable_testkit::serial::exclusive().await;
    let lab = Lab::start(&["web"]).await;
    lab.import_demo("web", "v1", "v1", false).await;
    let v2 = lab.import_demo("web", "v2", "v2", false).await;
    let cutover = CutoverCheck::new(&lab.haproxy.url(&lab.svc("web")))
        .unwrap()
        .samples(300)
        .tolerance_percent(12)
        .attempts(3)
        .interval(Duration::from_millis(200));
    let engine = lab.engine().check("cutover", cutover).build().unwrap();
    let canary = Steps::canary([10, 50, 100], Duration::from_secs(1))
        .with_checks(Vec::<String>::new(), ["cutover"]);
    assert!(
        engine
            .deploy(request(&lab, "v1").strategy(canary.clone()))
            .await
            .unwrap()
            .succeeded()
    );

    let start = Instant::now();
    let timeline = Timeline::attach(&engine);
    let load = lab.load("web", 100_000, Duration::from_secs(60));
    warm_up(&load, 100).await;
    let report = engine
        .deploy(request(&lab, "v2").strategy(canary))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let load = load.stop().await;

    timeline.print(start);
    assert_eq!(report.outcome, Outcome::Succeeded);
    let verified: Vec<_> = report
        .record
        .steps_taken
        .iter()
        .filter(|s| matches!(&s.step, Step::Checks { names } if names == &["cutover"]))
        .map(|s| s.note.clone().unwrap_or_default())
        .collect();
    println!("canary: verified cutovers: {verified:?}");
    assert_eq!(
        verified.len(),
        3,
        "a verified cutover after each of the 3 shifts"
    );
    let since = timeline.last_shift().expect("a shift");
    assert_zero_downtime("canary 10/50/100", &load, v2.id.as_str(), since);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhealthy_v2_rolls_back_and_fails_no_request() {
    let _one_at_a_time = immutable_testkit::serial::exclusive().await;
    let lab = Lab::start(&["web"]).await;
    let v1 = lab.import_demo("web", "v1", "v1", false).await;
    lab.import_demo("web", "v2-broken", "v2", true).await;
    let engine = lab.engine().build().unwrap();
    let first = engine.deploy(request(&lab, "v1")).await.unwrap();
    assert!(first.succeeded());

    let start = Instant::now();
    let timeline = Timeline::attach(&engine);
    let load = lab.load("web", 100_000, Duration::from_secs(60));
    warm_up(&load, 100).await;
    let report = engine
        .deploy(request(&lab, "v2-broken").health_timeout(Duration::from_secs(3)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let load = load.stop().await;

    timeline.print(start);
    assert!(
        matches!(
            &report.outcome,
            Outcome::RolledBack {
                cause: RollbackCause::HealthTimeout { .. }
            }
        ),
        "{:?}",
        report.outcome
    );
    // Traffic never moved: everything since before the deployment came from v1.
    assert_zero_downtime("unhealthy v2", &load, v1.id.as_str(), start);
    let web = ServiceName::new(lab.svc("web")).unwrap();
    let fleets = lab.fleet.list(&web).await.unwrap();
    assert_eq!(fleets.len(), 1, "only v1's fleet is left: {fleets:?}");
    assert_eq!(fleets[0].image, v1.id);
    assert_eq!(lab.router.servers(&web).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_rollback_during_bake_fails_no_request() {
    let _one_at_a_time = immutable_testkit::serial::exclusive().await;
    let lab = Lab::start(&["web"]).await;
    let v1 = lab.import_demo("web", "v1", "v1", false).await;
    lab.import_demo("web", "v2", "v2", false).await;
    let engine = lab.engine().build().unwrap();
    assert!(
        engine
            .deploy(request(&lab, "v1"))
            .await
            .unwrap()
            .succeeded()
    );

    let start = Instant::now();
    let timeline = Timeline::attach(&engine);
    let mut events = engine.events();
    let load = lab.load("web", 100_000, Duration::from_secs(60));
    warm_up(&load, 100).await;
    let deploying = tokio::spawn({
        let engine = engine.clone();
        let v2 = request(&lab, "v2").bake_time(Duration::from_secs(60));
        async move { engine.deploy(v2).await }
    });
    until_event(&mut events, |k| {
        matches!(k, EventKind::PhaseEntered { phase: Phase::Bake })
    })
    .await;
    // Let v2 serve alone for a moment, then roll back while it bakes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rolled = engine.rollback(lab.svc("web")).await.unwrap();
    let deployed = deploying.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let load = load.stop().await;

    timeline.print(start);
    assert!(
        matches!(rolled, RollbackReport::RoutedBack(_)),
        "{rolled:?}"
    );
    assert!(
        matches!(deployed.outcome, Outcome::RolledBack { .. }),
        "{:?}",
        deployed.outcome
    );
    let since = timeline.last_shift().expect("the route back");
    assert_zero_downtime("rollback during bake", &load, v1.id.as_str(), since);
}
