//! Process fleets: graceful termination lets in-flight requests finish, a fleet is found by
//! any `ProcessFleet` over the same root, terminate reaches an instance's children, readiness
//! proves the listener is the instance's own, and the files and directories the backend
//! writes cannot be subverted by links planted beside them.
#![allow(clippy::print_stdout)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::Lab;
use immutable_core::{DeploymentId, Error, Fleet, FleetId, FleetSpec, InstanceState, ServiceName};
use immutable_local::{ImportRequest, LocalImageStore, ProcessFleet};

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
    let _machine = immutable_testkit::serial::shared().await;
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
    let _machine = immutable_testkit::serial::shared().await;
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

// ---- Sessions, readiness, files: an instance among neighbours ----

/// A store and a fleet with a short grace period, no HAProxy; kills what it started when
/// dropped.
struct Bare {
    dir: tempfile::TempDir,
    images: LocalImageStore,
    fleet: ProcessFleet,
}

impl Bare {
    fn new() -> Bare {
        let dir = tempfile::tempdir().unwrap();
        let images = LocalImageStore::open(dir.path().join("root")).unwrap();
        let fleet = ProcessFleet::open(&images)
            .unwrap()
            .with_grace_period(Duration::from_secs(1));
        Bare { dir, images, fleet }
    }

    /// Imports an image whose command is `run.sh` with this body.
    async fn script(&self, name: &str, body: &str) -> immutable_core::Image {
        let src = self.dir.path().join(format!("src-{name}"));
        std::fs::create_dir_all(&src).unwrap();
        let run = src.join("run.sh");
        std::fs::write(&run, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
        self.images
            .import(ImportRequest::new("web", name, &src, ["./run.sh"]))
            .await
            .unwrap()
    }

    fn fleet_dir(&self, fleet: &FleetId) -> PathBuf {
        self.dir.path().join("root/fleets").join(fleet.as_str())
    }

    /// The port recorded for the fleet's first instance.
    fn port(&self, fleet: &FleetId) -> u16 {
        let state = std::fs::read(self.fleet_dir(fleet).join("fleet.json")).unwrap();
        let state: serde_json::Value = serde_json::from_slice(&state).unwrap();
        let port = state["instances"][0]["port"].as_u64().unwrap();
        u16::try_from(port).unwrap()
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        self.fleet.kill_all();
    }
}

fn web() -> ServiceName {
    ServiceName::new("web").unwrap()
}

fn spec(image: &immutable_core::Image) -> FleetSpec {
    FleetSpec::new(web(), DeploymentId::generate(), image.id.clone(), 1)
}

/// Whether `pid` is still the process that started at `start` and not a zombie.
fn alive(pid: i32, start: u64) -> bool {
    procfs::process::Process::new(pid)
        .and_then(|p| p.stat())
        .is_ok_and(|s| s.starttime == start && !matches!(s.state, 'Z' | 'X'))
}

/// Waits (bounded: 10 s) until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A child that ignores SIGTERM (as a slow worker would), its pid written to `child.pid` in
/// the working directory; the instance's own process then runs on.
const FORKS_A_CHILD: &str = "(trap '' TERM; exec sleep 600) &\necho $! > child.pid\nexec sleep 600";

/// Launches an instance that forks a child; returns the fleet, the child's pid and start time
/// and the child's session (the instance's pid).
async fn instance_with_child(bare: &Bare) -> (FleetId, i32, u64, i32) {
    let image = bare.script("forks", FORKS_A_CHILD).await;
    let info = bare.fleet.launch(&spec(&image)).await.unwrap();
    let file = bare
        .fleet
        .instance_dir(&info.id, &info.instances[0].id)
        .join("work/child.pid");
    until("the child's pid", || {
        std::fs::read_to_string(&file).is_ok_and(|s| s.ends_with('\n'))
    })
    .await;
    let child: i32 = std::fs::read_to_string(&file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let stat = procfs::process::Process::new(child)
        .unwrap()
        .stat()
        .unwrap();
    assert!(alive(child, stat.starttime));
    (info.id, child, stat.starttime, stat.session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_kills_the_children_of_an_instance() {
    let _machine = immutable_testkit::serial::shared().await;
    let bare = Bare::new();
    let (fleet, child, start, _) = instance_with_child(&bare).await;
    bare.fleet.terminate(&web(), &fleet).await.unwrap();
    assert!(
        !alive(child, start),
        "the instance's child {child} outlived terminate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_kills_the_children_of_an_instance_whose_process_died() {
    let _machine = immutable_testkit::serial::shared().await;
    let bare = Bare::new();
    let (fleet, child, start, leader) = instance_with_child(&bare).await;
    let pid = rustix::process::Pid::from_raw(leader).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    until("the instance's process to be gone", || {
        procfs::process::Process::new(leader)
            .and_then(|p| p.stat())
            .map_or(true, |s| s.state == 'Z')
    })
    .await;
    assert!(alive(child, start), "the child runs on");
    bare.fleet.terminate(&web(), &fleet).await.unwrap();
    assert!(
        !alive(child, start),
        "the child {child} of a dead instance outlived terminate"
    );
}

/// Describes the fleet for a second: its one instance must stay pending and unlisted.
async fn stays_pending(bare: &Bare, fleet: &FleetId, why: &str) {
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        let info = bare.fleet.describe(&web(), fleet).await.unwrap();
        assert_eq!(
            info.instances[0].state,
            InstanceState::Pending,
            "{why}: {info:?}"
        );
        let listed = bare.fleet.addresses(&web(), fleet).await.unwrap();
        assert!(listed.is_empty(), "{why}: addresses lists {listed:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_squatter_on_the_port_does_not_make_an_instance_running() {
    let _machine = immutable_testkit::serial::shared().await;
    let bare = Bare::new();
    let image = bare.script("mute", "exec sleep 600").await;
    let info = bare.fleet.launch(&spec(&image)).await.unwrap();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", bare.port(&info.id))).unwrap();
    stays_pending(&bare, &info.id, "another process listens on the port").await;
    drop(squatter);
}

async fn demo_is_running(bare: &Bare, image: &immutable_core::Image) {
    let info = bare.fleet.launch(&spec(image)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = bare.fleet.describe(&web(), &info.id).await.unwrap();
        if now.instances[0].state == InstanceState::Running {
            break;
        }
        assert!(Instant::now() < deadline, "never ran: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = bare.fleet.addresses(&web(), &info.id).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let body = client
        .get(format!("http://{}/", listed[0].1))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains(image.id.as_str()), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_listening_itself_is_running() {
    let _machine = immutable_testkit::serial::shared().await;
    let bare = Bare::new();
    let src = bare.dir.path().join("src-demo");
    std::fs::create_dir_all(&src).unwrap();
    let image = bare
        .images
        .import(ImportRequest::new(
            "web",
            "demo",
            &src,
            [crate::common::DEMO_APP],
        ))
        .await
        .unwrap();
    demo_is_running(&bare, &image).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_child_listens_is_running() {
    let _machine = immutable_testkit::serial::shared().await;
    let bare = Bare::new();
    let body = format!("'{}' &\nwait", crate::common::DEMO_APP);
    let image = bare.script("parent", &body).await;
    demo_is_running(&bare, &image).await;
}

/// A victim file and a symbolic link to it at `link`.
fn plant(dir: &Path, link: &Path) -> PathBuf {
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, link).unwrap();
    victim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_never_written_through_a_link_at_the_temporary_path() {
    let _machine = immutable_testkit::serial::shared().await;
    let bare = Bare::new();
    let image = bare.script("mute", "exec sleep 600").await;
    let info = bare.fleet.launch(&spec(&image)).await.unwrap();
    let state = bare.fleet_dir(&info.id).join("fleet.json");
    // The name the state's temporary file once had, predictable by anyone.
    let tmp = bare
        .fleet_dir(&info.id)
        .join(format!(".fleet.json.tmp-{}", std::process::id()));
    let victim = plant(bare.dir.path(), &tmp);
    bare.fleet.terminate(&web(), &info.id).await.unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(
        !state.is_symlink(),
        "the state file was replaced by the link"
    );
    let written = std::fs::read_to_string(&state).unwrap();
    assert!(written.contains("\"terminated\": true"), "{written}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_at_a_lock_file_is_refused() {
    let _machine = immutable_testkit::serial::shared().await;
    let bare = Bare::new();
    let image = bare.script("mute", "exec sleep 600").await;
    let info = bare.fleet.launch(&spec(&image)).await.unwrap();
    let lock = bare
        .dir
        .path()
        .join(format!("root/fleets/.{}.lock", info.id));
    std::fs::remove_file(&lock).unwrap();
    // A dangling link: opening it to create the lock would create a file where it points.
    let target = bare.dir.path().join("created-through-the-link");
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    let err = bare.fleet.terminate(&web(), &info.id).await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&lock.display().to_string()), "{message}");
    assert!(message.contains("symbolic link"), "{message}");
    assert!(!target.exists(), "a file was created through the link");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directories_the_backend_creates_are_private() {
    let _machine = immutable_testkit::serial::shared().await;
    let bare = Bare::new();
    let root = bare.dir.path().join("root");
    for dir in [root.clone(), root.join("images"), root.join("fleets")] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    let image = bare.script("mute", "exec sleep 600").await;
    let info = bare.fleet.launch(&spec(&image)).await.unwrap();
    let instance = bare.fleet.instance_dir(&info.id, &info.instances[0].id);
    for dir in [
        bare.fleet_dir(&info.id),
        instance.clone(),
        instance.join("work"),
    ] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    // A directory the user made is theirs: its mode is left alone.
    let mine = bare.dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o755)).unwrap();
    LocalImageStore::open(&mine).unwrap();
    assert_eq!(mode(&mine), 0o755);
    assert_eq!(mode(&mine.join("images")), 0o700);
}

#[test]
fn bad_port_ranges_are_refused_by_name() {
    let _machine = immutable_testkit::serial::shared_blocking();
    let bare = Bare::new();
    #[allow(clippy::reversed_empty_ranges)]
    for range in [30000..=20000, 0..=100, 80..=8080, 1023..=1023] {
        match bare.fleet.clone().with_port_range(range.clone()) {
            Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "port_range", "{range:?}"),
            other => panic!("{range:?}: expected InvalidInput on port_range, got {other:?}"),
        }
    }
    assert!(bare.fleet.clone().with_port_range(1024..=1024).is_ok());
    assert!(bare.fleet.clone().with_port_range(65535..=65535).is_ok());
}

/// A fleet state file tampered to name another process (pid and start time both right) as
/// an instance: the SDK never takes it for the instance, so `describe` does not call it
/// running and `terminate` does not signal it or its session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_file_naming_another_process_never_gets_it_signalled() {
    let _machine = immutable_testkit::serial::shared().await;
    let bare = Bare::new();
    let image = bare.script("mute", "exec sleep 600").await;
    let info = bare.fleet.launch(&spec(&image)).await.unwrap();
    let mut victim = std::process::Command::new("setsid")
        .args(["--", "sleep", "600"])
        .spawn()
        .unwrap();
    let pid = i32::try_from(victim.id()).unwrap();
    let start = procfs::process::Process::new(pid)
        .unwrap()
        .stat()
        .unwrap()
        .starttime;
    let path = bare.fleet_dir(&info.id).join("fleet.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let own = state["instances"][0]["process"].clone();
    state["instances"][0]["process"] = serde_json::json!({ "pid": pid, "start_ticks": start });
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();

    let seen = bare.fleet.describe(&web(), &info.id).await.unwrap();
    assert_ne!(seen.instances[0].state, InstanceState::Running, "{seen:?}");
    bare.fleet.terminate(&web(), &info.id).await.unwrap();
    assert!(
        alive(pid, start),
        "terminate signalled a process named by a tampered file"
    );
    let _ = victim.kill();
    let _ = victim.wait();
    // The real instance is left for the lab's teardown (its record was overwritten).
    let own_pid = i32::try_from(own["pid"].as_u64().unwrap()).unwrap();
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(own_pid).unwrap(),
        rustix::process::Signal::KILL,
    );
}

/// An instance whose process does not keep the environment it was started with (as a
/// program that sets its process title over it does; here `env -i`) is still known as the
/// instance by where it runs: terminate stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_rewrites_its_environment_is_still_terminated() {
    let _machine = immutable_testkit::serial::shared().await;
    let bare = Bare::new();
    let image = bare.script("no-env", "exec env -i sleep 600").await;
    let info = bare.fleet.launch(&spec(&image)).await.unwrap();
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(bare.fleet_dir(&info.id).join("fleet.json")).unwrap(),
    )
    .unwrap();
    let pid = i32::try_from(state["instances"][0]["process"]["pid"].as_u64().unwrap()).unwrap();
    let start = state["instances"][0]["process"]["start_ticks"]
        .as_u64()
        .unwrap();
    until("env -i to exec", || {
        procfs::process::Process::new(pid)
            .and_then(|p| p.environ())
            .is_ok_and(|e| e.is_empty())
    })
    .await;
    let seen = bare.fleet.describe(&web(), &info.id).await.unwrap();
    assert_eq!(seen.instances[0].state, InstanceState::Pending, "{seen:?}");
    bare.fleet.terminate(&web(), &info.id).await.unwrap();
    assert!(!alive(pid, start), "the instance outlived terminate");
}

/// One broken fleet state file (another fleet's) does not stop a service's fleets from
/// being listed; it is left as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_state_file_of_another_fleet_does_not_hide_the_others() {
    let _machine = immutable_testkit::serial::shared().await;
    let bare = Bare::new();
    let image = bare.script("mute", "exec sleep 600").await;
    let info = bare.fleet.launch(&spec(&image)).await.unwrap();
    let broken = bare.dir.path().join("root/fleets/fl-broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("fleet.json"), "{ not json").unwrap();
    let listed = bare.fleet.list(&web()).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, info.id);
    assert_eq!(
        std::fs::read_to_string(broken.join("fleet.json")).unwrap(),
        "{ not json"
    );
}
