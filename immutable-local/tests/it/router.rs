//! The router against a real HAProxy: the preview entry point, restoring dynamic servers
//! (which do not survive a restart) from the router's state file, health checks slower
//! than their interval, and neighbours: a preview backend that is never another service's
//! live backend, a service without a preview backend, tampered state files and instance
//! ids that would inject commands, and an impostor on an instance's port.

use immutable_core::PreviewRouter;
use std::time::{Duration, Instant};

use crate::common::Lab;
use async_trait::async_trait;
use immutable_core::{
    DeploymentId, DeploymentRequest, Error, EventKind, Fleet, FleetId, FleetSpec, HealthState,
    ImageRef, InstanceId, InstanceState, ServiceName, Step, Steps, TrafficRouter,
};
use immutable_local::{HaproxyOptions, HaproxyRouter, InstanceAddresses};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_haproxy_gets_its_routing_back() {
    let _machine = immutable_testkit::serial::shared().await;
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
    assert_eq!(
        crate::common::answer(&url).await.as_deref(),
        Some(v1.id.as_str())
    );
    let routing = lab.router.routing(&web).await.unwrap();

    lab.haproxy.restart().await.unwrap();
    assert!(lab.router.servers(&web).await.unwrap().is_empty());
    assert_eq!(
        crate::common::answer(&url).await,
        None,
        "no server after the restart"
    );

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
    assert_eq!(
        crate::common::answer(&url).await.as_deref(),
        Some(v1.id.as_str())
    );
}

/// Imports the demo app as `v1` of `web` and deploys it (two instances, no bake).
async fn v1_serving(lab: &Lab) -> immutable_core::Report {
    lab.import_demo("web", "v1", false).await;
    let engine = lab.engine().build().unwrap();
    let request = DeploymentRequest::new("web", ImageRef::name("v1")).bake_time(Duration::ZERO);
    let report = engine.deploy(request).await.unwrap();
    assert!(report.succeeded(), "{}", report.outcome);
    report
}

/// Polls `url` until `image` answers (bounded: 10 s).
async fn until_answered_by(url: &str, image: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while crate::common::answer(url).await.as_deref() != image {
        assert!(
            Instant::now() < deadline,
            "{url} never answered as {image:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_entry_point_serves_the_candidate_alone() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start(&["web"]).await;
    let v1 = lab.import_demo("web", "v1", false).await;
    let v2 = lab.import_demo("web", "v2", false).await;
    let engine = lab.engine().build().unwrap();
    let request = DeploymentRequest::new("web", ImageRef::name("v1")).bake_time(Duration::ZERO);
    assert!(engine.deploy(request).await.unwrap().succeeded());
    let web = ServiceName::new("web").unwrap();
    let spec = FleetSpec::new(web.clone(), DeploymentId::generate(), v2.id.clone(), 1);
    let candidate = lab.fleet.launch(&spec).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let candidate = loop {
        let info = lab.fleet.describe(&web, &candidate.id).await.unwrap();
        if info.count(InstanceState::Running) == 1 {
            break info;
        }
        assert!(Instant::now() < deadline, "the candidate never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let target = lab.router.attach(&candidate).await.unwrap();

    lab.router.preview(&web, Some(&target.id)).await.unwrap();
    let (live, preview) = (lab.haproxy.url("web"), lab.haproxy.preview_url("web"));
    until_answered_by(&preview, Some(v2.id.as_str())).await;
    for _ in 0..20 {
        assert_eq!(
            crate::common::answer(&live).await.as_deref(),
            Some(v1.id.as_str())
        );
    }
    lab.router.preview(&web, None).await.unwrap();
    until_answered_by(&preview, None).await;
    lab.router.detach(&web, &target.id).await.unwrap();
    lab.fleet.terminate(&web, &candidate.id).await.unwrap();
}

/// A health check answering later than the check interval (300 ms, checks every 100 ms) still
/// passes: HAProxy's check timeout is its own 2 s, not the interval, so a slow moment on the
/// machine does not mark a healthy server down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_slower_than_its_interval_still_passes() {
    let _machine = immutable_testkit::serial::shared().await;
    let mut options = HaproxyOptions::new(["web"]);
    options.health_path = "/?delay_ms=300".into();
    let lab = Lab::start_with(options).await;
    lab.import_demo("web", "v1", false).await;
    let engine = lab.engine().build().unwrap();
    let report = engine
        .deploy(
            DeploymentRequest::new("web", ImageRef::name("v1"))
                .bake_time(Duration::ZERO)
                .health_timeout(Duration::from_secs(15)),
        )
        .await
        .unwrap();
    assert!(report.succeeded(), "{:?}", report.outcome);
}

/// Service `web` previews through `web:preview`, never through `web-preview`, which is the
/// live backend of the service named so: while web's candidate sits on web's preview entry
/// point, every answer of service web-preview comes from web-preview's own fleet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_never_reaches_the_live_backend_of_a_service_named_like_it() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start(&["web", "web-preview"]).await;
    let neighbour = lab.import_demo("web-preview", "np-v1", false).await;
    lab.import_demo("web", "v1", false).await;
    let v2 = lab.import_demo("web", "v2", false).await;
    let engine = lab.engine().build().unwrap();
    let quick = |service: &str, image: &str| {
        DeploymentRequest::new(service, ImageRef::name(image)).bake_time(Duration::ZERO)
    };
    assert!(
        engine
            .deploy(quick("web-preview", "np-v1"))
            .await
            .unwrap()
            .succeeded()
    );
    assert!(engine.deploy(quick("web", "v1")).await.unwrap().succeeded());
    let web = ServiceName::new("web").unwrap();
    assert_eq!(
        lab.router.preview_backend(&web).unwrap(),
        Some("web:preview")
    );

    let held = Steps::from_steps(
        "preview-then-hold",
        vec![
            Step::Preview,
            Step::pause(Duration::from_secs(4)),
            Step::shift(100),
        ],
    )
    .unwrap();
    let deploying = tokio::spawn({
        let engine = engine.clone();
        async move { engine.deploy(quick("web", "v2").strategy(held)).await }
    });
    until_answered_by(&lab.haproxy.preview_url("web"), Some(v2.id.as_str())).await;
    let neighbour_url = lab.haproxy.url("web-preview");
    for _ in 0..50 {
        assert_eq!(
            crate::common::answer(&neighbour_url).await.as_deref(),
            Some(neighbour.id.as_str()),
            "web's candidate reached the live traffic of service web-preview"
        );
    }
    assert!(deploying.await.unwrap().unwrap().succeeded());
}

/// A preview backend named like a service (`web-preview`) is refused at build, naming the
/// field, before any HAProxy change; so is one backend serving two services.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_backend_a_service_could_serve_from_is_refused() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start(&["web", "web-preview"]).await;
    let build = |b: immutable_local::HaproxyRouterBuilder| {
        b.state_dir(lab.dir.path().join("router2"))
            .instances(lab.fleet.clone())
            .build()
    };
    let named_like_a_service = HaproxyRouter::builder(lab.haproxy.admin_socket()).service_backends(
        "web",
        "web",
        Some("web-preview".into()),
    );
    let shared = HaproxyRouter::builder(lab.haproxy.admin_socket())
        .service("web")
        .service_backends("api", "web", None);
    for (builder, field) in [
        (named_like_a_service, "preview_backend"),
        (shared, "backend"),
    ] {
        match build(builder).await {
            Err(Error::InvalidInput {
                field: f, reason, ..
            }) => assert_eq!(f, field, "{reason}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(
        !lab.dir.path().join("router2").exists(),
        "nothing was created"
    );
}

/// An HAProxy with a backend named after the service and nothing else is enough: preview
/// steps are skipped, saying why, and the service deploys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_a_preview_backend_deploys() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start_with(HaproxyOptions::new(["web"]).without_preview()).await;
    lab.import_demo("web", "v1", false).await;
    let v2 = lab.import_demo("web", "v2", false).await;
    let engine = lab.engine().build().unwrap();
    let mut events = engine.events();
    for image in ["v1", "v2"] {
        let request =
            DeploymentRequest::new("web", ImageRef::name(image)).bake_time(Duration::ZERO);
        let report = engine.deploy(request).await.unwrap();
        assert!(report.succeeded(), "{:?}", report.outcome);
    }
    let mut skipped = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let EventKind::PreviewSkipped { reason } = e.kind {
            skipped.push(reason);
        }
    }
    assert_eq!(
        skipped.len(),
        2,
        "each deployment skipped its preview: {skipped:?}"
    );
    assert!(skipped[0].contains("no preview backend"), "{skipped:?}");
    assert_eq!(
        crate::common::answer(&lab.haproxy.url("web"))
            .await
            .as_deref(),
        Some(v2.id.as_str())
    );
}

/// A state file whose server name would smuggle a command into HAProxy is refused, naming
/// the file and the field: the file is left as it is and HAProxy gets no write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_state_file_is_refused_and_nothing_reaches_haproxy() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start(&["web"]).await;
    let report = v1_serving(&lab).await;
    let web = ServiceName::new("web").unwrap();
    let target = report.record.green.target.clone().unwrap();
    let servers = lab.router.servers(&web).await.unwrap();

    let path = lab.dir.path().join("router").join("web.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let victim = &servers[0];
    let tampered = text.replacen(
        &format!("\"name\": \"{victim}\""),
        &format!("\"name\": \"{victim} weight 0; shutdown sessions server web/{victim}\""),
        1,
    );
    assert_ne!(tampered, text, "the test must tamper with a server name");
    std::fs::write(&path, &tampered).unwrap();
    let writes = lab.router.api_writes();

    let health = lab.router.health(&web, &target).await.unwrap_err();
    let weights = lab
        .router
        .set_weights(&web, &immutable_core::Routing::all_to(&target))
        .await
        .unwrap_err();
    let restore = lab.router.restore().await.unwrap_err();
    for e in [health, weights, restore] {
        match e {
            Error::InvalidInput { field, reason, .. } => {
                assert_eq!(field, "targets[0].servers[0].name", "{reason}");
                assert!(reason.contains(&path.display().to_string()), "{reason}");
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!(lab.router.api_writes(), writes, "a write reached HAProxy");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        tampered,
        "the file was changed"
    );
    assert_eq!(lab.router.servers(&web).await.unwrap(), servers);
}

/// Instance addresses from a custom source whose instance id is not one word.
#[derive(Debug)]
struct Hostile(std::net::SocketAddr);

#[async_trait]
impl InstanceAddresses for Hostile {
    async fn addresses(
        &self,
        _: &ServiceName,
        _: &FleetId,
    ) -> immutable_core::Result<Vec<(InstanceId, std::net::SocketAddr)>> {
        Ok(vec![(
            InstanceId::new("i-1 weight 256; disable server web/x"),
            self.0,
        )])
    }
}

/// An instance id that would inject a command is refused at attach, naming the field:
/// nothing is recorded and HAProxy gets no write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_id_that_would_inject_a_command_is_never_attached() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start(&["web"]).await;
    let image = lab.import_demo("web", "v1", false).await;
    let state = lab.dir.path().join("hostile-router");
    let router = lab
        .haproxy
        .router_builder()
        .state_dir(&state)
        .instances(Hostile("127.0.0.1:1".parse().unwrap()))
        .build()
        .await
        .unwrap();
    let web = ServiceName::new("web").unwrap();
    let spec = FleetSpec::new(web.clone(), DeploymentId::generate(), image.id.clone(), 1);
    let fleet = immutable_core::FleetInfo::new(FleetId::new("fl-x"), spec);
    match router.attach(&fleet).await {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "instances"),
        other => panic!("{other:?}"),
    }
    assert_eq!(router.api_writes(), 0);
    assert!(router.servers(&web).await.unwrap().is_empty());
    assert!(!state.join("web.json").exists(), "nothing was recorded");
}

/// An instance killed while another process took its port and answers the health checks:
/// HAProxy's check passes, but the router never counts the impostor healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_on_an_instance_port_is_never_healthy() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start(&["web"]).await;
    let report = v1_serving(&lab).await;
    let web = ServiceName::new("web").unwrap();
    let fleet = report.record.green.fleet.clone().unwrap();
    let target = report.record.green.target.clone().unwrap();
    let addresses = lab.fleet.addresses(&web, &fleet).await.unwrap();
    let (victim, addr) = addresses[0].clone();

    // The victim dies; an impostor (the same demo app, not the fleet's) takes its port.
    let pid = recorded_pid(&lab, &fleet, &victim);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let mut impostor = impostor_on(addr.port());
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = loop {
        let report = lab.router.health(&web, &target).await.unwrap();
        let row = report
            .instances
            .iter()
            .find(|i| i.instance == victim)
            .unwrap();
        // HAProxy sees a passing check again once the impostor answers.
        let stats = lab.router.servers(&web).await.unwrap();
        assert!(stats.contains(&victim.to_string()));
        if row
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("no longer listens"))
        {
            break report;
        }
        assert_ne!(
            row.state,
            HealthState::Healthy,
            "the impostor was counted healthy"
        );
        assert!(
            Instant::now() < deadline,
            "HAProxy never checked the impostor: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = impostor.kill();
    let _ = impostor.wait();
    let row = report
        .instances
        .iter()
        .find(|i| i.instance == victim)
        .unwrap();
    assert_eq!(row.state, HealthState::Unhealthy, "{row:?}");
    assert_eq!(report.healthy(), 1);
}

/// The pid the fleet's state file records for `instance`.
fn recorded_pid(lab: &Lab, fleet: &FleetId, instance: &InstanceId) -> u32 {
    let path = lab
        .dir
        .path()
        .join("root/fleets")
        .join(fleet.as_str())
        .join("fleet.json");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let found = state["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == instance.as_str())
        .unwrap_or_else(|| panic!("{instance} in {}", path.display()));
    found["process"]["pid"].as_u64().unwrap() as u32
}

/// Starts the demo app, as nobody's instance, on `port`.
fn impostor_on(port: u16) -> std::process::Child {
    std::process::Command::new(crate::common::DEMO_APP)
        .env("PORT", port.to_string())
        .env("IMAGE_ID", "impostor")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the demo app starts")
}

/// After a restart, a server whose address was changed in the state file is not put back:
/// its instance does not listen there, so it gets no share of the traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_never_routes_to_an_address_changed_in_the_state_file() {
    let _machine = immutable_testkit::serial::shared().await;
    let mut lab = Lab::start(&["web"]).await;
    let _v1 = v1_serving(&lab).await;
    let web = ServiceName::new("web").unwrap();
    let path = lab.dir.path().join("router").join("web.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let moved = state["targets"][0]["servers"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    state["targets"][0]["servers"][0]["addr"] = "127.0.0.1:1".into();
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();

    lab.haproxy.restart().await.unwrap();
    assert_eq!(lab.router.restore().await.unwrap(), 1);
    let servers = lab.router.servers(&web).await.unwrap();
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert!(!servers.contains(&moved), "{servers:?}");
}
