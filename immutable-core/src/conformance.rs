//! The conformance suite every backend runs (feature `conformance`).
//!
//! Free async functions that exercise any [`ImageStore`], [`Fleet`] and [`TrafficRouter`]
//! through the traits alone and panic with a message when the backend breaks the contract,
//! and each capability [`Backends`] carries (preview, scaling control, adoption) when present.
//! Backend differences (which images exist, which ids are surely unknown) are passed in a
//! [`Fixture`]. Each function cleans up what it creates, except [`full_deployment`], which
//! leaves the service's final fleet serving (and [`labels_and_newest_resolve`] and
//! [`labels_cannot_rewrite_ownership`], which leave a label of their own and
//! `immutable:promoted` on the fixture's images).
//!
//! The suite is a stable API: a function checks only what the traits document, new checks
//! come as new functions called by [`run_all`], and a minor release never makes an existing
//! check stricter than the documentation it tests.
//!
//! ```no_run
//! # async fn demo(backends: immutable_core::Backends,
//! #               fixture: immutable_core::conformance::Fixture) {
//! immutable_core::conformance::run_all(&backends, &fixture).await;
//! # }
//! ```

mod halts;
mod hooks;
pub mod hostile;
mod store;
mod waves;

use std::time::Duration;

pub use halts::halt_contract;
pub use hooks::{Hooks, StoreCall, StoreHooks};
pub use store::{
    command_contract, finished_records, history_contract, lease_contract, retention_contract,
    sample_record, store_contract,
};
pub use waves::{sample_wave, wave_contract};

mod capabilities;
mod catalog;
mod fleet;
mod isolation;
mod routing;
pub use capabilities::{
    adoption_reads_and_refuses, preview_routes_a_candidate, scaling_is_idempotent,
};
pub use catalog::{
    detaching_a_deleted_target_is_not_found, labels_and_newest_resolve,
    labels_cannot_rewrite_ownership, retire_refuses_an_image_in_use,
};
pub use fleet::{launch_is_idempotent, terminate_is_idempotent};
pub use isolation::{image_names_are_scoped_to_the_service, other_services_are_not_touched};
pub use routing::{refuses_to_detach_serving_target, weights_are_set_in_one_call};

pub use crate::Backends;
use crate::{
    DeploymentId, DeploymentRequest, Engine, Error, FleetId, FleetInfo, FleetSpec, ImageId,
    ImageRef, InMemoryStore, InstanceState, Routing, ServiceName, Settings, TargetId,
};
#[cfg(doc)]
use crate::{Fleet, ImageStore, TrafficRouter};

/// Ids that surely name nothing, in the backend's own formats.
#[derive(Debug, Clone)]
pub struct UnknownIds {
    /// An image id.
    pub image: ImageId,
    /// A fleet id.
    pub fleet: FleetId,
    /// A target id.
    pub target: TargetId,
}

/// What the suite may use on the backend.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The service the suite deploys; its entry point must exist and serve nothing at first.
    pub service: ServiceName,
    /// An image of the service.
    pub v1: ImageRef,
    /// A second image of the service.
    pub v2: ImageRef,
    /// Instances per fleet.
    pub capacity: u32,
    /// Engine settings for [`full_deployment`]; the suite's own waits poll at its interval.
    pub settings: Settings,
    /// How long the suite waits for instances to run.
    pub wait_timeout: Duration,
    /// Surely unknown ids.
    pub unknown: UnknownIds,
    /// A second service and one of its images, to check that one service never touches
    /// another's resources.
    pub other: Option<(ServiceName, ImageRef)>,
}

/// Runs every check, [`full_deployment`] last.
pub async fn run_all(b: &Backends, f: &Fixture) {
    unknown_ids_are_not_found(b, f).await;
    launch_is_idempotent(b, f).await;
    terminate_is_idempotent(b, f).await;
    weights_are_set_in_one_call(b, f).await;
    refuses_to_detach_serving_target(b, f).await;
    other_services_are_not_touched(b, f).await;
    image_names_are_scoped_to_the_service(b, f).await;
    retire_refuses_an_image_in_use(b, f).await;
    labels_and_newest_resolve(b, f).await;
    labels_cannot_rewrite_ownership(b, f).await;
    detaching_a_deleted_target_is_not_found(b, f).await;
    preview_routes_a_candidate(b, f).await;
    scaling_is_idempotent(b, f).await;
    adoption_reads_and_refuses(b, f).await;
    full_deployment(b, f).await;
}

fn expect_not_found<T: std::fmt::Debug>(what: &str, r: crate::Result<T>) {
    match r {
        Err(Error::NotFound { .. }) => {}
        other => panic!("{what}: expected Error::NotFound, got {other:?}"),
    }
}

async fn resolve(b: &Backends, f: &Fixture, r: &ImageRef) -> crate::Image {
    b.images
        .resolve(&f.service, r)
        .await
        .unwrap_or_else(|e| panic!("resolving {r}: {e}"))
}

async fn launch(b: &Backends, service: &ServiceName, image: &ImageId, capacity: u32) -> FleetInfo {
    let spec = FleetSpec::new(
        service.clone(),
        DeploymentId::generate(),
        image.clone(),
        capacity,
    );
    b.fleet
        .launch(&spec)
        .await
        .unwrap_or_else(|e| panic!("launch: {e}"))
}

/// Polls until no instance of the fleet is pending.
async fn wait_running(
    b: &Backends,
    f: &Fixture,
    service: &ServiceName,
    fleet: &FleetId,
) -> FleetInfo {
    let deadline = tokio::time::Instant::now() + f.wait_timeout;
    loop {
        let info = b
            .fleet
            .describe(service, fleet)
            .await
            .unwrap_or_else(|e| panic!("describe {fleet}: {e}"));
        if info.count(InstanceState::Pending) == 0 {
            return info;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fleet {fleet} still has pending instances after {:?}",
            f.wait_timeout
        );
        tokio::time::sleep(f.settings.poll_interval).await;
    }
}

async fn cleanup(b: &Backends, service: &ServiceName, target: Option<&TargetId>, fleet: &FleetId) {
    if let Some(t) = target {
        b.router
            .detach(service, t)
            .await
            .unwrap_or_else(|e| panic!("cleanup: detach {t}: {e}"));
    }
    b.fleet
        .terminate(service, fleet)
        .await
        .unwrap_or_else(|e| panic!("cleanup: terminate {fleet}: {e}"));
}

/// Unknown ids give [`Error::NotFound`] from every trait.
pub async fn unknown_ids_are_not_found(b: &Backends, f: &Fixture) {
    let s = &f.service;
    let u = &f.unknown;
    expect_not_found(
        "resolve unknown image id",
        b.images.resolve(s, &ImageRef::Id(u.image.clone())).await,
    );
    expect_not_found(
        "resolve unknown image name",
        b.images
            .resolve(
                s,
                &ImageRef::name(format!("no-such-image-{}", DeploymentId::generate())),
            )
            .await,
    );
    expect_not_found(
        "label unknown image",
        b.images.label(s, &u.image, &Default::default()).await,
    );
    expect_not_found("retire unknown image", b.images.retire(s, &u.image).await);
    expect_not_found(
        "describe unknown fleet",
        b.fleet.describe(s, &u.fleet).await,
    );
    expect_not_found(
        "terminate unknown fleet",
        b.fleet.terminate(s, &u.fleet).await,
    );
    expect_not_found(
        "health of unknown target",
        b.router.health(s, &u.target).await,
    );
    expect_not_found("detach unknown target", b.router.detach(s, &u.target).await);
}

/// v1 then v2 through the [`Engine`]: afterwards exactly one fleet, of v2, serves all traffic,
/// and the v1 fleet and target are gone.
pub async fn full_deployment(b: &Backends, f: &Fixture) {
    let s = &f.service;
    let engine = Engine::builder()
        .backends(b.clone())
        .store(InMemoryStore::new())
        .settings(f.settings.clone())
        .build()
        .expect("engine");
    let request = |image: &ImageRef| {
        DeploymentRequest::new(s.as_str(), image.clone())
            .capacity(f.capacity)
            .bake_time(f.settings.poll_interval)
            .health_timeout(f.wait_timeout)
    };
    let first = engine.deploy(request(&f.v1)).await.expect("deploy v1");
    assert!(first.succeeded(), "v1 did not succeed: {:?}", first.outcome);
    let v1_fleet = first.record.green.fleet.clone().expect("v1 fleet");
    let v1_target = first.record.green.target.clone().expect("v1 target");

    let second = engine.deploy(request(&f.v2)).await.expect("deploy v2");
    assert!(
        second.succeeded(),
        "v2 did not succeed: {:?}",
        second.outcome
    );
    let v2_fleet = second.record.green.fleet.clone().expect("v2 fleet");
    let v2_target = second.record.green.target.clone().expect("v2 target");
    let v2_image = resolve(b, f, &f.v2).await;

    let routing = b.router.routing(s).await.expect("routing");
    assert_eq!(
        routing,
        Routing::all_to(&v2_target),
        "traffic is not all on v2"
    );
    let fleets = b.fleet.list(s).await.expect("list fleets");
    assert_eq!(
        fleets.len(),
        1,
        "expected only the v2 fleet, found {fleets:?}"
    );
    assert_eq!(fleets[0].id, v2_fleet);
    assert_eq!(fleets[0].image, v2_image.id);
    assert_eq!(fleets[0].count(InstanceState::Running), f.capacity as usize);
    let targets = b.router.targets(s).await.expect("targets");
    assert!(
        targets.iter().all(|t| t.id != v1_target),
        "the v1 target is still attached"
    );
    assert!(targets.iter().any(|t| t.id == v2_target));
    match b.fleet.describe(s, &v1_fleet).await {
        Ok(info) => assert!(!info.is_live(), "the v1 fleet still runs"),
        Err(Error::NotFound { .. }) => {}
        Err(e) => panic!("describe v1 fleet: {e}"),
    }
}
