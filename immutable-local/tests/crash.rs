//! The deploy tool dies (SIGKILL) in the middle of a canary; a new process resumes from the
//! same `FileStore`, adopts the green processes that survived, and finishes, while a load
//! generator sees no failed request throughout.
#![allow(clippy::print_stdout)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Lab, Timeline, assert_zero_downtime, settings, warm_up};
use immutable_core::{
    DeploymentRequest, Error, FileStore, Fleet, ImageRef, InstanceState, Phase, ServiceName,
    StateStore,
};

const DEPLOY_TOOL: &str = env!("CARGO_BIN_EXE_immutable-local-deploy");

/// Kills the deploy tool if the test ends first.
struct ToolGuard(Child);

impl Drop for ToolGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_deploy_tool_is_resumed_by_a_new_process_without_a_failed_request() {
    let lab = Lab::start(&["web"]).await;
    lab.import_demo("web", "v1", false).await;
    let v2 = lab.import_demo("web", "v2", false).await;
    let store_dir = lab.dir.path().join("store");
    let store = FileStore::open(&store_dir).unwrap();
    let lease = Duration::from_secs(3);
    let engine = || {
        lab.engine()
            .store(store.clone())
            .settings(settings().with_lease_ttl(lease))
            .build()
            .unwrap()
    };
    let first = engine()
        .deploy(DeploymentRequest::new("web", ImageRef::name("v1")).bake_time(Duration::ZERO))
        .await
        .unwrap();
    assert!(first.succeeded());

    let start = Instant::now();
    let load = lab.load("web", 200_000, Duration::from_secs(90));
    warm_up(&load, 100).await;
    let root = lab.images.root().display().to_string();
    let tool = Command::new(DEPLOY_TOOL)
        .args(["deploy", "--root", &root])
        .args(["--store", &store_dir.display().to_string()])
        .args([
            "--socket",
            &lab.haproxy.admin_socket().display().to_string(),
        ])
        .args([
            "--router-state",
            &lab.dir.path().join("router").display().to_string(),
        ])
        .args(["--service", "web", "--image", "v2", "--capacity", "2"])
        .args([
            "--canary",
            "10,50",
            "--pause-ms",
            "2000",
            "--bake-ms",
            "500",
        ])
        .args(["--lease-ttl-s", "3", "--check-ms", "100"])
        .stdout(Stdio::null())
        .spawn()
        .expect("the deploy tool starts");
    let mut tool = ToolGuard(tool);

    // Kill it once the canary has moved traffic and pauses.
    let web = ServiceName::new("web").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let record = loop {
        let unfinished = store.unfinished(Some(&web)).await.unwrap();
        if let Some(r) = unfinished
            .into_iter()
            .find(|r| r.phase == Phase::Rollout && r.weight >= 10)
        {
            break r;
        }
        assert!(Instant::now() < deadline, "the tool never shifted traffic");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tool.0.kill().unwrap();
    tool.0.wait().unwrap();
    let killed_at = start.elapsed();
    let green = record
        .green
        .fleet
        .clone()
        .expect("green fleet in the record");
    println!(
        "deploy tool killed at {killed_at:.1?} in phase {} at {} %",
        record.phase, record.weight
    );

    // The green processes outlived their parent.
    let survived = lab.fleet.describe(&web, &green).await.unwrap();
    assert_eq!(survived.count(InstanceState::Running), 2, "{survived:?}");

    // A new process: a fresh engine over the same store; the dead run's lease expires first.
    let resumer = engine();
    let timeline = Timeline::attach(&resumer);
    let deadline = Instant::now() + lease * 5;
    let report = loop {
        let mut results = resumer.resume_unfinished().await.unwrap();
        assert_eq!(results.len(), 1, "one unfinished deployment");
        match results.remove(0).1 {
            Err(Error::Locked { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => break other.expect("the resumed deployment"),
        }
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let load = load.stop().await;
    timeline.print(start);

    assert!(report.succeeded(), "{:?}", report.outcome);
    assert_eq!(
        report.record.green.fleet.as_ref(),
        Some(&green),
        "green was adopted"
    );
    let fleets = lab.fleet.list(&web).await.unwrap();
    assert_eq!(fleets.len(), 1);
    assert_eq!(fleets[0].id, green);
    let gc = resumer.gc("web").await.unwrap();
    assert!(
        gc.fleets.is_empty() && gc.targets.is_empty(),
        "orphans: {gc:?}"
    );
    assert_eq!(lab.router.servers(&web).await.unwrap().len(), 2);
    let since = timeline.last_shift().expect("the resumed run's last shift");
    assert_zero_downtime("crash and resume", &load, v2.id.as_str(), since);
}
