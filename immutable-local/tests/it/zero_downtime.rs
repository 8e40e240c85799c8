//! Zero-downtime swaps with real processes behind a real HAProxy, each under a bounded load
//! (4 keep-alive and 4 new-connection clients on loopback) for the whole deployment.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use crate::common::{Lab, Timeline, answer, assert_zero_downtime, warm_up};
use immutable_core::{
    CutoverCheck, DeploymentRequest, EventKind, Fleet, ImageRef, Outcome, Phase, RollbackCause,
    RollbackReport, ServiceName, Step, Steps,
};
use immutable_testkit::load::until_event;

fn request(image: &str) -> DeploymentRequest {
    DeploymentRequest::new("web", ImageRef::name(image))
        .capacity(2)
        .health_timeout(Duration::from_secs(20))
        .bake_time(Duration::from_secs(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_v1_to_v2_fails_no_request() {
    let _one_at_a_time = immutable_testkit::serial::exclusive().await;
    let lab = Lab::start(&["web"]).await;
    lab.import_demo("web", "v1", false).await;
    let v2 = lab.import_demo("web", "v2", false).await;
    let engine = lab.engine().build().unwrap();
    assert!(engine.deploy(request("v1")).await.unwrap().succeeded());

    let start = Instant::now();
    let timeline = Timeline::attach(&engine);
    let load = lab.load("web", 100_000, Duration::from_secs(60));
    warm_up(&load, 100).await;
    let report = engine.deploy(request("v2")).await.unwrap();
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
    lab.import_demo("web", "v1", false).await;
    let v2 = lab.import_demo("web", "v2", false).await;
    let cutover = CutoverCheck::new(&lab.haproxy.url("web"))
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
            .deploy(request("v1").strategy(canary.clone()))
            .await
            .unwrap()
            .succeeded()
    );

    let start = Instant::now();
    let timeline = Timeline::attach(&engine);
    let load = lab.load("web", 100_000, Duration::from_secs(60));
    warm_up(&load, 100).await;
    let report = engine.deploy(request("v2").strategy(canary)).await.unwrap();
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
    let v1 = lab.import_demo("web", "v1", false).await;
    lab.import_demo("web", "v2-broken", true).await;
    let engine = lab.engine().build().unwrap();
    let first = engine.deploy(request("v1")).await.unwrap();
    assert!(first.succeeded());

    let start = Instant::now();
    let timeline = Timeline::attach(&engine);
    let load = lab.load("web", 100_000, Duration::from_secs(60));
    warm_up(&load, 100).await;
    let report = engine
        .deploy(request("v2-broken").health_timeout(Duration::from_secs(3)))
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
    let web = ServiceName::new("web").unwrap();
    let fleets = lab.fleet.list(&web).await.unwrap();
    assert_eq!(fleets.len(), 1, "only v1's fleet is left: {fleets:?}");
    assert_eq!(fleets[0].image, v1.id);
    assert_eq!(lab.router.servers(&web).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_rollback_during_bake_fails_no_request() {
    let _one_at_a_time = immutable_testkit::serial::exclusive().await;
    let lab = Lab::start(&["web"]).await;
    let v1 = lab.import_demo("web", "v1", false).await;
    lab.import_demo("web", "v2", false).await;
    let engine = lab.engine().build().unwrap();
    assert!(engine.deploy(request("v1")).await.unwrap().succeeded());

    let start = Instant::now();
    let timeline = Timeline::attach(&engine);
    let mut events = engine.events();
    let load = lab.load("web", 100_000, Duration::from_secs(60));
    warm_up(&load, 100).await;
    let deploying = tokio::spawn({
        let engine = engine.clone();
        async move {
            engine
                .deploy(request("v2").bake_time(Duration::from_secs(60)))
                .await
        }
    });
    until_event(&mut events, |k| {
        matches!(k, EventKind::PhaseEntered { phase: Phase::Bake })
    })
    .await;
    // Let v2 serve alone for a moment, then roll back while it bakes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rolled = engine.rollback("web").await.unwrap();
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

/// Kills HAProxy (SIGKILL) and starts it again with the same configuration file; returns
/// when it is up again, and then when the service answers again (polled every 20 ms, at most
/// 10 s), with nobody calling the router.
async fn kill_and_start_haproxy(lab: &mut Lab) -> (Instant, Instant) {
    lab.haproxy.kill();
    lab.haproxy
        .start_again()
        .await
        .expect("HAProxy starts again");
    let up = Instant::now();
    let url = lab.haproxy.url("web");
    let deadline = up + Duration::from_secs(10);
    while answer(&url).await.is_none() {
        assert!(
            Instant::now() < deadline,
            "the service never answered again after HAProxy's restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (up, Instant::now())
}

/// HAProxy killed and started again (same configuration) while v2 bakes: the router's
/// guard puts every server back with its weight, with no command run; from the first answer
/// on, no request fails and all come from v2; the bake neither rolls back nor loses v1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_killed_during_a_bake_serves_the_new_fleet_again_with_no_command_run() {
    let _one_at_a_time = immutable_testkit::serial::exclusive().await;
    let mut lab = Lab::start(&["web"]).await;
    lab.import_demo("web", "v1", false).await;
    let v2 = lab.import_demo("web", "v2", false).await;
    let _guard = lab.router.keep_restored(Duration::from_millis(100));
    let engine = lab.engine().build().unwrap();
    assert!(engine.deploy(request("v1")).await.unwrap().succeeded());

    let start = Instant::now();
    let timeline = Timeline::attach(&engine);
    let mut events = engine.events();
    let load = lab.load("web", 100_000, Duration::from_secs(60));
    warm_up(&load, 100).await;
    let deploying = tokio::spawn({
        let engine = engine.clone();
        async move {
            engine
                .deploy(request("v2").bake_time(Duration::from_secs(6)))
                .await
        }
    });
    until_event(&mut events, |k| {
        matches!(k, EventKind::PhaseEntered { phase: Phase::Bake })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Instant::now();
    let (up, back) = kill_and_start_haproxy(&mut lab).await;
    let report = deploying.await.unwrap().unwrap();
    let load = load.stop().await;

    timeline.print(start);
    println!(
        "restart during the bake: HAProxy down {:.0?}, up again, answering again after {:.0?} \
         more",
        up - killed,
        back - up
    );
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.outcome);
    assert!(
        report.record.blue_lost_at.is_none(),
        "the restart read as the old fleet lost"
    );
    let after = immutable_local::LoadReport {
        samples: load
            .samples
            .iter()
            .filter(|s| s.sent >= back)
            .cloned()
            .collect(),
        elapsed: load.elapsed,
    };
    println!("after the service answered again: {}", after.summary());
    assert!(after.served() > 100, "{}", after.summary());
    assert_eq!(after.failed(), 0, "{}", after.summary());
    assert_eq!(
        after.images_since(back).keys().collect::<Vec<_>>(),
        [v2.id.as_str()],
        "answers after the restart came from another fleet than v2"
    );
}

/// HAProxy killed and started again (same configuration) while a canary holds at 50 %: the
/// split comes back with the servers, with no command run, and no request fails after the
/// service answers again; the canary then goes on to 100 %.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_killed_during_a_canary_at_50_keeps_the_split_with_no_command_run() {
    let _one_at_a_time = immutable_testkit::serial::exclusive().await;
    let mut lab = Lab::start(&["web"]).await;
    let v1 = lab.import_demo("web", "v1", false).await;
    let v2 = lab.import_demo("web", "v2", false).await;
    let _guard = lab.router.keep_restored(Duration::from_millis(100));
    let engine = lab.engine().build().unwrap();
    assert!(engine.deploy(request("v1")).await.unwrap().succeeded());

    let start = Instant::now();
    let timeline = Timeline::attach(&engine);
    let mut events = engine.events();
    let load = lab.load("web", 100_000, Duration::from_secs(60));
    warm_up(&load, 100).await;
    let canary = Steps::canary([50, 100], Duration::from_secs(8));
    let deploying = tokio::spawn({
        let engine = engine.clone();
        async move { engine.deploy(request("v2").strategy(canary)).await }
    });
    until_event(&mut events, |k| {
        matches!(k, EventKind::WeightsSet { routing } if routing.weights().values().any(|w| *w == 50))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    let (up, back) = kill_and_start_haproxy(&mut lab).await;
    // Three seconds of load at the restored split, well before the pause ends.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let split_end = Instant::now();
    let report = deploying.await.unwrap().unwrap();
    let load = load.stop().await;

    timeline.print(start);
    println!(
        "restart at 50 %: HAProxy down {:.0?}, answering again {:.0?} after it was up",
        up - killed,
        back - up
    );
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.outcome);
    let at_split: Vec<_> = load
        .samples
        .iter()
        .filter(|s| s.sent >= back && s.sent < split_end)
        .collect();
    let failed = at_split.iter().filter(|s| s.result.is_err()).count();
    let from_v2 = at_split
        .iter()
        .filter(|s| s.result.as_deref() == Ok(v2.id.as_str()))
        .count();
    let from_v1 = at_split
        .iter()
        .filter(|s| s.result.as_deref() == Ok(v1.id.as_str()))
        .count();
    println!(
        "after the restart, at 50 %: {} requests, {from_v1} from v1, {from_v2} from v2, \
         {failed} failed",
        at_split.len()
    );
    assert_eq!(
        failed, 0,
        "requests failed after the service answered again"
    );
    assert!(at_split.len() >= 100, "too few requests to judge the split");
    let share = from_v2 as f64 / at_split.len() as f64;
    assert!(
        (0.3..=0.7).contains(&share),
        "the split was lost: {:.0} % from v2",
        share * 100.0
    );
    let after_all = load.images_since(timeline.last_shift().expect("a shift"));
    assert_eq!(after_all.keys().collect::<Vec<_>>(), [v2.id.as_str()]);
}
