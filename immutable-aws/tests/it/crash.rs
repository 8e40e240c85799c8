//! A v1 -> v2 deployment on moto, of bare EC2 instances and of Auto Scaling groups, cut off
//! after each of its AWS calls in turn and resumed by a fresh engine: every run ends with the
//! new image serving from exactly one fleet, and no group, instance or target group leaks. A
//! new deployment's first launch and attach look nothing up (`launch_new`, `attach_new`); the
//! cuts right after them show that a resumed run finds what they made.
//!
//! The cut is a crash: once it comes, the crashed engine's AWS clients and store refuse every
//! further call, so nothing it did after that point reaches the world, and its task is
//! dropped. The fresh engine's clock runs a few minutes ahead, as a process started later
//! would, so the crashed engine's lease has expired for it.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use crate::common::*;
use async_trait::async_trait;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use immutable_aws::{AsgFleet, AwsClients, AwsFleet, AwsImageStore, LaunchTemplate};
use immutable_core::conformance::{Hooks, StoreCall, StoreHooks};
use immutable_core::{
    Clock, DeploymentRequest, Engine, Error, ImageRef, ImageStore, InMemoryStore, Result,
    ServiceName, Settings, StateStore,
};

/// Lets `limit` AWS calls through, then refuses every call and, once the calls it let
/// through have all returned, marks the crash.
///
/// Waiting for them keeps a crash from landing while one of them is still on its way to the
/// server: moto ignores `RunInstances`' client token, so an in-flight launch that moto carries
/// out after the fresh engine's lookup would be launched again. Real EC2 returns the first
/// launch's instances for the same token; moto cannot show that, so the cut comes between calls.
#[derive(Debug, Clone, Default)]
struct Cut {
    calls: Arc<AtomicUsize>,
    limit: Arc<AtomicUsize>,
    crashed: Arc<AtomicBool>,
    state: Arc<Mutex<CutState>>,
}

#[derive(Debug, Default)]
struct CutState {
    /// The operations let through, in order: what a failure message shows.
    log: Vec<String>,
    /// Calls let through that have not returned.
    in_flight: usize,
    /// A call was refused: the crash comes when `in_flight` is 0.
    refused: bool,
}

/// Marks, in a call's config bag, a call the cut let through.
#[derive(Debug, Clone)]
struct LetThrough;

impl Storable for LetThrough {
    type Storer = StoreReplace<Self>;
}

impl Cut {
    fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    fn crash_if_quiet(&self, state: &CutState) {
        if state.refused && state.in_flight == 0 {
            self.crashed.store(true, Ordering::SeqCst);
        }
    }
}

impl Intercept for Cut {
    fn name(&self) -> &'static str {
        "Cut"
    }

    fn read_before_serialization(
        &self,
        _ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let mut state = self.state.lock().unwrap();
        if n > self.limit.load(Ordering::SeqCst) {
            state.refused = true;
            self.crash_if_quiet(&state);
            return Err("the deploy tool crashed".into());
        }
        let name = cfg.load::<Metadata>().map_or("unknown", |m| m.name());
        state.log.push(name.to_owned());
        state.in_flight += 1;
        cfg.interceptor_state().store_put(LetThrough);
        Ok(())
    }

    fn read_after_execution(
        &self,
        _ctx: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        if cfg.load::<LetThrough>().is_some() {
            let mut state = self.state.lock().unwrap();
            state.in_flight -= 1;
            self.crash_if_quiet(&state);
        }
        Ok(())
    }
}

/// The store as the crashed process sees it: everything refused once the crash came.
type Crashable = StoreHooks<InMemoryStore, Alive>;

/// Whether the process still lives: every store call is refused once it crashed.
#[derive(Debug, Clone)]
struct Alive(Arc<AtomicBool>);

#[async_trait]
impl Hooks for Alive {
    async fn before(&self, _: StoreCall<'_>) -> Result<()> {
        if self.0.load(Ordering::SeqCst) {
            return Err(Error::store("the deploy tool crashed", None));
        }
        Ok(())
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
        .with_lease_ttl(Duration::from_secs(30))
}

fn request(image: &str) -> DeploymentRequest {
    DeploymentRequest::new(SERVICE, ImageRef::name(image))
        .capacity(2)
        .bake_time(Duration::ZERO)
        .health_timeout(Duration::from_secs(10))
}

/// What the fleets are.
#[derive(Debug, Clone, Copy)]
enum Kind<'a> {
    /// Bare EC2 instances.
    Instances,
    /// Auto Scaling groups from the launch template of this id.
    Groups(&'a str),
}

/// An engine over `clients` and `store`, its clock `ahead` of the wall clock.
fn engine_on(
    w: &World,
    clients: &AwsClients,
    kind: Kind<'_>,
    store: impl StateStore,
    ahead: Duration,
) -> Engine {
    let router = immutable_aws::AwsRouter::builder(clients)
        .service(SERVICE, w.entry_point())
        .drain_poll_interval(Duration::from_millis(100));
    let builder = Engine::builder()
        .images(AwsImageStore::new(clients))
        .store(store)
        .settings(settings())
        .clock(Later(ahead));
    let builder = match kind {
        Kind::Instances => builder
            .fleet(
                AwsFleet::builder(clients)
                    .instance_type("t3.micro")
                    .subnets(w.subnets.clone())
                    .build()
                    .unwrap(),
            )
            .router(router.build().unwrap()),
        Kind::Groups(template) => {
            let fleet = AsgFleet::builder(clients)
                .launch_template(LaunchTemplate::Id(template.to_owned()))
                .subnets(w.subnets.clone())
                .size_limits(1, 10)
                .keep_template_versions()
                .build()
                .unwrap();
            let router = router.membership(fleet.membership()).build().unwrap();
            builder.fleet(fleet.clone()).router(router).scaling(fleet)
        }
    };
    builder.build().unwrap()
}

/// What must hold after every run of bare instances: the image's instances alone behind the
/// listener, in one target group, and no other instance of the service running.
async fn assert_instances_settled(w: &World, image: &str, after: &str) {
    let web = ServiceName::new(SERVICE).unwrap();
    let want = w
        .images()
        .resolve(&web, &ImageRef::name(image))
        .await
        .unwrap()
        .id;
    let forwards = w.listener_forwards(&w.listener).await;
    assert_eq!(forwards.len(), 1, "after {after}: {forwards:?}");
    assert_eq!(w.target_groups().await.len(), 1, "after {after}");
    let live = w
        .instances(&[
            ("tag:immutable:service", SERVICE),
            ("instance-state-name", "running"),
        ])
        .await;
    assert_eq!(live.len(), 2, "after {after}: live instances {live:?}");
    let health = w
        .elb()
        .describe_target_health()
        .target_group_arn(&forwards[0].0)
        .send()
        .await
        .unwrap();
    let registered: Vec<&str> = health
        .target_health_descriptions()
        .iter()
        .filter_map(|d| d.target().and_then(|t| t.id()))
        .collect();
    for (id, _) in &live {
        assert!(
            registered.contains(&id.as_str()),
            "after {after}: instance {id} runs outside the serving group"
        );
    }
    let images = w
        .ec2()
        .describe_instances()
        .set_instance_ids(Some(live.iter().map(|(id, _)| id.clone()).collect()))
        .send()
        .await
        .unwrap();
    for instance in images.reservations().iter().flat_map(|r| r.instances()) {
        assert_eq!(instance.image_id(), Some(want.as_str()), "after {after}");
    }
}

/// What must hold after every run of groups: the image serving from one group, alone behind
/// the listener, and nothing else of the service left.
async fn assert_groups_settled(w: &World, image: &str, after: &str) {
    let groups = w.groups().await;
    assert_eq!(groups.len(), 1, "after {after}: groups {groups:?}");
    let group = &groups[0];
    let tag = |k: &str| {
        group
            .tags()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .map(str::to_owned)
    };
    let web = ServiceName::new(SERVICE).unwrap();
    let want = w
        .images()
        .resolve(&web, &ImageRef::name(image))
        .await
        .unwrap()
        .id;
    assert_eq!(
        tag("immutable:image").as_deref(),
        Some(want.as_str()),
        "after {after}"
    );
    let forwards = w.listener_forwards(&w.listener).await;
    assert_eq!(forwards.len(), 1, "after {after}: {forwards:?}");
    assert_eq!(
        group.target_group_arns(),
        [forwards[0].0.as_str()],
        "after {after}"
    );
    assert_eq!(w.target_groups().await.len(), 1, "after {after}");
    let name = group.auto_scaling_group_name().unwrap();
    let running = w.instances(&[("instance-state-name", "running")]).await;
    let members: Vec<&str> = group
        .instances()
        .iter()
        .filter_map(|i| i.instance_id())
        .collect();
    for (id, _) in &running {
        assert!(
            members.contains(&id.as_str()),
            "after {after}: instance {id} runs outside {name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_of_instances_cut_after_any_call_is_resumed_with_nothing_leaked() {
    let w = World::new().await;
    cut_after_every_call(&w, Kind::Instances).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_of_groups_cut_after_any_call_is_resumed_with_nothing_leaked() {
    let w = World::new().await;
    let template = w.launch_template("web").await;
    cut_after_every_call(&w, Kind::Groups(&template)).await;
}

async fn assert_settled(w: &World, kind: Kind<'_>, image: &str, after: &str) {
    match kind {
        Kind::Instances => assert_instances_settled(w, image, after).await,
        Kind::Groups(_) => assert_groups_settled(w, image, after).await,
    }
}

/// Deploys v1, counts the calls of an uninterrupted v1 -> v2, then cuts a deployment after
/// each of them in turn, alternating the image, and resumes it with a fresh engine.
async fn cut_after_every_call(w: &World, kind: Kind<'_>) {
    w.bake_image(SERVICE, "web-v1").await;
    w.bake_image(SERVICE, "web-v2").await;
    let store = InMemoryStore::new();
    let minutes = |n: u64| Duration::from_secs(60 * n);
    let first = engine_on(w, &w.clients, kind, store.clone(), minutes(0));
    assert!(first.deploy(request("web-v1")).await.unwrap().succeeded());

    // How many calls an uninterrupted deployment makes.
    let counting = Cut {
        limit: Arc::new(AtomicUsize::new(usize::MAX)),
        ..Cut::default()
    };
    let clients = clients_through(&w.clients.sdk, &counting);
    let engine = engine_on(w, &clients, kind, store.clone(), minutes(1));
    assert!(engine.deploy(request("web-v2")).await.unwrap().succeeded());
    let total = counting.calls.load(Ordering::SeqCst);
    println!("an uninterrupted v1 -> v2 deployment ({kind:?}) makes {total} AWS calls");

    let mut image = "web-v2";
    let (mut resumed_runs, mut redeployed) = (0, 0);
    for cut_after in 0..total {
        let next = if image == "web-v2" {
            "web-v1"
        } else {
            "web-v2"
        };
        let cut = Cut {
            limit: Arc::new(AtomicUsize::new(cut_after)),
            ..Cut::default()
        };
        let crashed: Crashable = StoreHooks::new(store.clone(), Alive(cut.crashed.clone()));
        let base = 2 + 2 * cut_after as u64;
        let doomed = engine_on(
            w,
            &clients_through(&w.clients.sdk, &cut),
            kind,
            crashed,
            minutes(base),
        );
        let run = tokio::spawn(async move { doomed.deploy(request(next)).await });
        while !cut.crashed.load(Ordering::SeqCst) && !run.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        run.abort();
        let _ = run.await;

        let after = format!(
            "cut {cut_after}, the crashed engine's calls {:?}",
            cut.log()
        );
        let fresh = engine_on(w, &w.clients, kind, store.clone(), minutes(base + 1));
        let resumed = fresh.resume_unfinished().await.unwrap();
        match resumed.as_slice() {
            [] => {
                // Cut before its first record: a deploy tool deploys again.
                assert!(fresh.deploy(request(next)).await.unwrap().succeeded());
                redeployed += 1;
            }
            [(_, report)] => {
                resumed_runs += 1;
                let report = report.as_ref().unwrap();
                assert!(report.succeeded(), "after {after}: {:?}", report.outcome);
            }
            more => panic!("after {after}: {} unfinished", more.len()),
        }
        assert_settled(w, kind, next, &after).await;
        image = next;
    }
    println!(
        "{kind:?}: cut after each of {total} calls: {resumed_runs} resumed, {redeployed} cut \
         before their first record and deployed again; nothing leaked"
    );
    assert!(
        resumed_runs > total / 2,
        "most cuts come after the first record"
    );
}
