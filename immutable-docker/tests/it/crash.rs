//! A v1 -> v2 deployment of containers, cut off after each of its Docker API calls in turn
//! and resumed by a fresh engine: every run ends with the new image serving from exactly one
//! fleet, and no container, image or HAProxy server is left over.
//!
//! The cut is a crash: once it comes, the crashed engine's Docker client refuses every call
//! (bollard's request modifier rewrites each into a request the daemon rejects), its router
//! and its store refuse every call, and its task is dropped. The fresh engine's clock runs
//! ten seconds ahead, as a process started later would: past the crashed engine's lease (5
//! s), well within the health timeout (60 s), so a resumed wait for health still has its
//! time.
#![allow(clippy::print_stdout)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::common::{Lab, system_url};
use async_trait::async_trait;
use bollard::{API_DEFAULT_VERSION, Docker};
use immutable_core::conformance::{Hooks, StoreCall, StoreHooks};
use immutable_core::{
    Clock, DeploymentRequest, Engine, Error, Fleet, FleetInfo, HealthReport, ImageRef,
    InMemoryStore, InstanceState, Result, Routing, ServiceName, Settings, StateStore, Target,
    TargetId, TrafficRouter,
};
use immutable_docker::{DockerFleet, DockerHost, DockerHosts, DockerImageStore};
use immutable_local::HaproxyRouter;

/// Lets `limit` Docker API calls through, then rewrites every further one into a request
/// the daemon refuses, and marks the crash.
#[derive(Debug, Clone)]
struct Cut {
    calls: Arc<AtomicUsize>,
    limit: usize,
    crashed: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Cut {
    fn new(limit: usize) -> Self {
        Cut {
            calls: Arc::default(),
            limit,
            crashed: Arc::default(),
            log: Arc::default(),
        }
    }

    /// The system daemon as host `a`, through this cut.
    async fn host(&self) -> DockerHost {
        let path = system_url().replacen("unix://", "", 1);
        let cut = self.clone();
        let client = Docker::connect_with_unix(&path, 120, API_DEFAULT_VERSION)
            .unwrap()
            .with_request_modifier(move |mut req| {
                let n = cut.calls.fetch_add(1, Ordering::SeqCst) + 1;
                // The first call is the version negotiation of `with_client`.
                if n == 1 {
                    return req;
                }
                if n - 1 > cut.limit {
                    cut.crashed.store(true, Ordering::SeqCst);
                    *req.method_mut() = http::Method::GET;
                    *req.uri_mut() = "/containers/json?filters=the-deploy-tool-crashed"
                        .parse()
                        .unwrap();
                    return req;
                }
                let path = req.uri().path().to_owned();
                cut.log
                    .lock()
                    .unwrap()
                    .push(format!("{} {path}", req.method()));
                req
            });
        DockerHost::with_client("a", system_url(), client)
            .await
            .unwrap()
    }

    fn made(&self) -> usize {
        self.calls.load(Ordering::SeqCst).saturating_sub(1)
    }
}

/// Whether the process still lives: every store and router call is refused once it crashed.
#[derive(Debug, Clone)]
struct Alive(Arc<AtomicBool>);

impl Alive {
    fn check(&self) -> Result<()> {
        if self.0.load(Ordering::SeqCst) {
            return Err(Error::provider("the deploy tool crashed"));
        }
        Ok(())
    }
}

#[async_trait]
impl Hooks for Alive {
    async fn before(&self, _: StoreCall<'_>) -> Result<()> {
        if self.0.load(Ordering::SeqCst) {
            return Err(Error::store("the deploy tool crashed", None));
        }
        Ok(())
    }
}

/// The router as the crashed process sees it.
#[derive(Debug)]
struct CrashableRouter {
    router: HaproxyRouter,
    alive: Alive,
}

#[async_trait]
impl TrafficRouter for CrashableRouter {
    async fn attach(&self, fleet: &FleetInfo) -> Result<Target> {
        self.alive.check()?;
        self.router.attach(fleet).await
    }
    async fn targets(&self, service: &ServiceName) -> Result<Vec<Target>> {
        self.alive.check()?;
        self.router.targets(service).await
    }
    async fn health(&self, service: &ServiceName, target: &TargetId) -> Result<HealthReport> {
        self.alive.check()?;
        self.router.health(service, target).await
    }
    async fn routing(&self, service: &ServiceName) -> Result<Routing> {
        self.alive.check()?;
        self.router.routing(service).await
    }
    async fn set_weights(&self, service: &ServiceName, routing: &Routing) -> Result<()> {
        self.alive.check()?;
        self.router.set_weights(service, routing).await
    }
    async fn detach(&self, service: &ServiceName, target: &TargetId) -> Result<()> {
        self.alive.check()?;
        self.router.detach(service, target).await
    }
}

/// Wall-clock time moved ahead by a fixed offset: a process started that much later.
#[derive(Debug, Clone, Copy)]
struct Later(Duration);

impl Clock for Later {
    fn now(&self) -> SystemTime {
        SystemTime::now() + self.0
    }
}

fn settings() -> Settings {
    Settings::default()
        .with_poll_interval(Duration::from_millis(50))
        .with_lease_ttl(Duration::from_secs(5))
        .with_launch_timeout(Duration::from_secs(30))
}

fn request(lab: &Lab, image: &str) -> DeploymentRequest {
    DeploymentRequest::new(lab.svc("web"), ImageRef::name(image))
        .capacity(2)
        .bake_time(Duration::ZERO)
        .health_timeout(Duration::from_secs(60))
}

/// An engine of a process with its own Docker client over `host`, its own router (on the
/// lab's HAProxy and router state), and `store`, its clock `ahead` of the wall clock.
async fn engine_on(
    lab: &Lab,
    host: DockerHost,
    store: impl StateStore,
    alive: Alive,
    ahead: Duration,
) -> Engine {
    let hosts = DockerHosts::new([host]).unwrap();
    let images = DockerImageStore::open(lab.images.root(), hosts).unwrap();
    let fleet = DockerFleet::open(&images)
        .unwrap()
        .with_grace_period(Duration::from_secs(5));
    let router = Lab::router(&lab.haproxy, &fleet, lab.dir.path().join("router")).await;
    Engine::builder()
        .images(images)
        .fleet(fleet)
        .router(CrashableRouter { router, alive })
        .store(store)
        .settings(settings())
        .clock(Later(ahead))
        .build()
        .unwrap()
}

/// What must hold after every run: one fleet of `image`, both containers running, nothing
/// else of the service on the daemon, its two servers alone in HAProxy taking all traffic,
/// and the service's images as imported.
async fn assert_settled(lab: &Lab, image: &str, images_before: &BTreeSet<String>, after: &str) {
    let web = ServiceName::new(lab.svc("web")).unwrap();
    let want = immutable_core::ImageStore::resolve(&lab.images, &web, &ImageRef::name(image))
        .await
        .unwrap();
    let fleets = lab.fleet.list(&web).await.unwrap();
    assert_eq!(fleets.len(), 1, "after {after}: fleets {fleets:?}");
    let fleet = &fleets[0];
    assert_eq!(
        fleet.image, want.id,
        "after {after}: the wrong image serves"
    );
    assert_eq!(
        fleet.count(InstanceState::Running),
        2,
        "after {after}: {fleet:?}"
    );
    assert_eq!(
        fleet.instances.len(),
        2,
        "after {after}: stray containers {fleet:?}"
    );
    let servers = lab.router.servers(&web).await.unwrap();
    assert_eq!(
        servers.len(),
        2,
        "after {after}: HAProxy servers {servers:?}"
    );
    let targets = lab.router.targets(&web).await.unwrap();
    assert_eq!(targets.len(), 1, "after {after}: targets {targets:?}");
    assert_eq!(targets[0].fleet, fleet.id, "after {after}");
    assert_eq!(
        lab.router.routing(&web).await.unwrap(),
        Routing::all_to(&targets[0].id),
        "after {after}"
    );
    let images: BTreeSet<String> = immutable_core::ImageStore::list(&lab.images, &web)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id.to_string())
        .collect();
    assert_eq!(
        &images, images_before,
        "after {after}: the service's images changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_cut_after_any_docker_call_is_resumed_with_nothing_leaked() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start(&["web"]).await;
    lab.import_demo("web", "web-v1", "v1", false).await;
    lab.import_demo("web", "web-v2", "v2", false).await;
    let web = ServiceName::new(lab.svc("web")).unwrap();
    let images_before: BTreeSet<String> = immutable_core::ImageStore::list(&lab.images, &web)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id.to_string())
        .collect();
    let store = InMemoryStore::new();
    let ticks = |n: u64| Duration::from_secs(10 * n);
    let never = Alive(Arc::default());
    let counting = Cut::new(usize::MAX);
    let first = engine_on(
        &lab,
        counting.host().await,
        store.clone(),
        never.clone(),
        ticks(0),
    )
    .await;
    assert!(
        first
            .deploy(request(&lab, "web-v1"))
            .await
            .unwrap()
            .succeeded()
    );

    // How many calls an uninterrupted deployment makes.
    let counting = Cut::new(usize::MAX);
    let engine = engine_on(
        &lab,
        counting.host().await,
        store.clone(),
        never.clone(),
        ticks(1),
    )
    .await;
    assert!(
        engine
            .deploy(request(&lab, "web-v2"))
            .await
            .unwrap()
            .succeeded()
    );
    let total = counting.made();
    println!("an uninterrupted v1 -> v2 deployment of 2 containers makes {total} Docker API calls");
    assert_settled(&lab, "web-v2", &images_before, "the uninterrupted run").await;

    let mut image = "web-v2";
    let (mut resumed_runs, mut redeployed) = (0, 0);
    for cut_after in 0..total {
        let next = if image == "web-v2" {
            "web-v1"
        } else {
            "web-v2"
        };
        let cut = Cut::new(cut_after);
        let alive = Alive(cut.crashed.clone());
        let crashed = StoreHooks::new(store.clone(), alive.clone());
        let base = 2 + 2 * cut_after as u64;
        let doomed = engine_on(&lab, cut.host().await, crashed, alive, ticks(base)).await;
        let deploy = request(&lab, next);
        let run = tokio::spawn(async move { doomed.deploy(deploy).await });
        while !cut.crashed.load(Ordering::SeqCst) && !run.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        run.abort();
        let _ = run.await;

        let after = format!(
            "cut {cut_after}, the crashed engine's calls {:?}",
            cut.log.lock().unwrap()
        );
        let fresh = engine_on(
            &lab,
            crate::common::system_host("a").await,
            store.clone(),
            never.clone(),
            ticks(base + 1),
        )
        .await;
        let resumed = fresh.resume_unfinished().await.unwrap();
        match resumed.as_slice() {
            [] => {
                // Cut before its first record: a deploy tool deploys again.
                assert!(
                    fresh.deploy(request(&lab, next)).await.unwrap().succeeded(),
                    "after {after}"
                );
                redeployed += 1;
            }
            [(_, report)] => {
                resumed_runs += 1;
                let report = report.as_ref().unwrap();
                assert!(report.succeeded(), "after {after}: {:?}", report.outcome);
            }
            more => panic!("after {after}: {} unfinished", more.len()),
        }
        assert_settled(&lab, next, &images_before, &after).await;
        image = next;
    }
    println!(
        "cut after each of {total} Docker API calls: {resumed_runs} resumed, {redeployed} cut \
         before their first record and deployed again; nothing leaked"
    );
    assert!(
        resumed_runs > total / 2,
        "most cuts come after the first record"
    );
}
