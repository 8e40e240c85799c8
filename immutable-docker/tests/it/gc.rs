//! `gc` on Docker: what a crash left is found by its containers' labels, even with its state
//! file gone; orphans are removed, foreign fleets only when named, and containers without the
//! SDK's labels are never touched.

use std::collections::HashMap;
use std::time::Duration;

use crate::common::{Lab, demo_image};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions};
use immutable_core::{
    DeploymentId, DeploymentRequest, Fleet, FleetKey, FleetSpec, GcMode, ImageRef, InstanceState,
    ServiceName, tags,
};

/// Starts a container of the demo app that the SDK did not make: `labels` only.
async fn start_foreign(lab: &Lab, name: &str, labels: HashMap<String, String>) -> String {
    let host = lab.hosts.iter().next().unwrap();
    let image = demo_image("v1", false).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        env: Some(vec![format!("PORT={port}")]),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some("host".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some(name.to_owned()),
        ..Default::default()
    };
    let made = host
        .client()
        .create_container(Some(options), body)
        .await
        .unwrap();
    host.client().start_container(&made.id, None).await.unwrap();
    made.id
}

async fn running(lab: &Lab, id: &str) -> bool {
    let host = lab.hosts.iter().next().unwrap();
    let found = host.client().inspect_container(id, None).await.unwrap();
    found.state.and_then(|s| s.running) == Some(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_finds_containers_by_label_and_never_touches_unlabelled_ones() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start(&["web"]).await;
    let web = ServiceName::new(lab.svc("web")).unwrap();
    let v1 = lab.import_demo("web", "web-v1", "v1", false).await;
    lab.import_demo("web", "web-v2", "v2", false).await;
    let engine = lab.engine().build().unwrap();
    let request = |image: &str| {
        DeploymentRequest::new(web.as_str(), ImageRef::name(image))
            .capacity(1)
            .bake_time(Duration::ZERO)
            .health_timeout(Duration::from_secs(30))
    };
    let first = engine.deploy(request("web-v1")).await.unwrap();
    assert!(first.succeeded());
    let second = engine.deploy(request("web-v2")).await.unwrap();
    assert!(second.succeeded());
    let serving = second.record.green.fleet.clone().unwrap();

    // What a crash leaves: an orphan (a fleet of the first deployment, which ended) and a
    // foreign fleet (of a deployment this journal never saw), with their state files lost,
    // so only their containers' labels tell what they are.
    let orphan = lab
        .fleet
        .launch(
            &FleetSpec::new(web.clone(), first.record.id.clone(), v1.id.clone(), 1)
                .with_key(FleetKey::new("a-launch-cut-short")),
        )
        .await
        .unwrap();
    let foreign = lab
        .fleet
        .launch(&FleetSpec::new(
            web.clone(),
            DeploymentId::generate(),
            v1.id.clone(),
            1,
        ))
        .await
        .unwrap();
    for fleet in [&orphan.id, &foreign.id] {
        std::fs::remove_file(
            lab.images
                .root()
                .join("fleets")
                .join(format!("{fleet}.json")),
        )
        .unwrap();
    }
    // Containers the SDK did not make: none of its labels, and the service's label alone
    // (without `immutable:managed-by`).
    let unlabelled = start_foreign(
        &lab,
        &format!("foreign-{}", lab.suffix),
        HashMap::from([("test".into(), "foreign".into())]),
    )
    .await;
    let lookalike = start_foreign(
        &lab,
        &format!("lookalike-{}", lab.suffix),
        HashMap::from([(tags::SERVICE.into(), web.to_string())]),
    )
    .await;

    let report = engine.gc(web.as_str()).await.unwrap();
    assert_eq!(report.fleets, vec![orphan.id.clone()], "{report:?}");
    assert_eq!(
        report.foreign_fleets,
        vec![foreign.id.clone()],
        "{report:?}"
    );
    let removed = engine.gc_with(web.as_str(), GcMode::Remove).await.unwrap();
    assert_eq!(
        removed.removed_fleets,
        vec![orphan.id.clone()],
        "{removed:?}"
    );
    let named = GcMode::RemoveNamed {
        fleets: vec![foreign.id.clone()],
        targets: Vec::new(),
    };
    let removed = engine.gc_with(web.as_str(), named).await.unwrap();
    assert_eq!(
        removed.removed_fleets,
        vec![foreign.id.clone()],
        "{removed:?}"
    );

    let fleets = lab.fleet.list(&web).await.unwrap();
    assert_eq!(fleets.len(), 1, "{fleets:?}");
    assert_eq!(fleets[0].id, serving);
    assert_eq!(fleets[0].count(InstanceState::Running), 1);
    assert!(
        running(&lab, &unlabelled).await,
        "gc touched a container without labels"
    );
    assert!(
        running(&lab, &lookalike).await,
        "gc touched a container the SDK did not make"
    );
    let host = lab.hosts.iter().next().unwrap();
    for id in [unlabelled, lookalike] {
        let force = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        host.client()
            .remove_container(&id, Some(force))
            .await
            .unwrap();
    }
}
