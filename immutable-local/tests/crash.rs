//! The deploy tool dies (SIGKILL) in the middle of a canary; a new process resumes from the
//! same `FileStore`, adopts the green processes that survived, and finishes, while a load
//! generator sees no failed request throughout.
#![allow(clippy::print_stdout)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Lab, Timeline, assert_zero_downtime, settings, warm_up};
use immutable_core::{
    DeploymentRecord, DeploymentRequest, Engine, Error, FileStore, Fleet, ImageRef, InstanceState,
    Phase, Report, ServiceName, StateStore,
};

const DEPLOY_TOOL: &str = env!("CARGO_BIN_EXE_immutable-local-deploy");
const LEASE: Duration = Duration::from_secs(3);

/// Kills the deploy tool if the test ends first.
struct ToolGuard(Child);

impl Drop for ToolGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the deploy tool: v2 as a canary (10 %, 50 %, 2 s pauses), 3 s lease.
fn start_tool(lab: &Lab, store: &FileStore) -> ToolGuard {
    let path = |p: &std::path::Path| p.display().to_string();
    let tool = Command::new(DEPLOY_TOOL)
        .args(["deploy", "--root", &path(lab.images.root())])
        .args(["--store", &path(store.dir())])
        .args(["--socket", &path(&lab.haproxy.admin_socket())])
        .args(["--router-state", &path(&lab.dir.path().join("router"))])
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
    ToolGuard(tool)
}

/// Waits until the tool's deployment has moved traffic (bounded: 30 s).
async fn shifted(store: &FileStore, web: &ServiceName) -> DeploymentRecord {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let unfinished = store.unfinished(Some(web)).await.unwrap();
        if let Some(r) = unfinished
            .into_iter()
            .find(|r| r.phase == Phase::Rollout && r.weight >= 10)
        {
            return r;
        }
        assert!(Instant::now() < deadline, "the tool never shifted traffic");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Resumes the unfinished deployment once the dead run's lease has expired.
async fn resume(engine: &Engine) -> Report {
    let deadline = Instant::now() + LEASE * 5;
    loop {
        let mut results = engine.resume_unfinished().await.unwrap();
        assert_eq!(results.len(), 1, "one unfinished deployment");
        match results.remove(0).1 {
            Err(Error::Locked { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => return other.expect("the resumed deployment"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_deploy_tool_is_resumed_by_a_new_process_without_a_failed_request() {
    let lab = Lab::start(&["web"]).await;
    lab.import_demo("web", "v1", false).await;
    let v2 = lab.import_demo("web", "v2", false).await;
    let store = FileStore::open(lab.dir.path().join("store")).unwrap();
    let engine = || {
        lab.engine()
            .store(store.clone())
            .settings(settings().with_lease_ttl(LEASE))
            .build()
            .unwrap()
    };
    let v1 = DeploymentRequest::new("web", ImageRef::name("v1")).bake_time(Duration::ZERO);
    assert!(engine().deploy(v1).await.unwrap().succeeded());

    let start = Instant::now();
    let load = lab.load("web", 200_000, Duration::from_secs(90));
    warm_up(&load, 100).await;
    let mut tool = start_tool(&lab, &store);
    let web = ServiceName::new("web").unwrap();
    let record = shifted(&store, &web).await;
    tool.0.kill().unwrap();
    tool.0.wait().unwrap();
    let green = record
        .green
        .fleet
        .clone()
        .expect("green fleet in the record");
    println!(
        "deploy tool killed at {:.1?} in phase {} at {} %",
        start.elapsed(),
        record.phase,
        record.weight
    );
    // The green processes outlived their parent.
    let survived = lab.fleet.describe(&web, &green).await.unwrap();
    assert_eq!(survived.count(InstanceState::Running), 2, "{survived:?}");

    // A new process: a fresh engine over the same store.
    let resumer = engine();
    let timeline = Timeline::attach(&resumer);
    let report = resume(&resumer).await;
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
