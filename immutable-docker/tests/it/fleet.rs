//! Containers as the fleet makes them: labels, environment, restart policy, limits, and both
//! networks (the host's, and Docker's bridge with the port published on 127.0.0.1 only).

use std::time::Duration;

use immutable_core::{
    DeploymentId, Error, Fleet, FleetSpec, ImageId, InstanceState, ServiceName, tags,
};
use immutable_docker::{DockerFleet, ImageSource, ImportRequest, Limits, Network, ScratchImage};

use crate::common::{DEMO_APP, Lab, system_host};

async fn running(
    fleet: &DockerFleet,
    service: &ServiceName,
    spec: &FleetSpec,
) -> immutable_core::FleetInfo {
    let launched = fleet.launch(spec).await.unwrap();
    for _ in 0..100 {
        let info = fleet.describe(service, &launched.id).await.unwrap();
        if info.count(InstanceState::Running) == spec.capacity as usize {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the fleet never ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_carry_labels_environment_limits_and_a_published_port_on_loopback() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start(&["web"]).await;
    let web = ServiceName::new(lab.svc("web")).unwrap();
    let host = system_host("build").await;
    // The demo app listens on every address of its container: what a published port needs.
    let id = ScratchImage::new(DEMO_APP)
        .env("DEMO_HOST", "0.0.0.0")
        .label("org.example.version", "published")
        .tag("immutable-docker-test:published")
        .build(host.client())
        .await
        .unwrap();
    let request = ImportRequest::new(web.as_str(), "published", ImageSource::Docker(id.clone()));
    lab.images.import(request).await.unwrap();
    let limits = Limits::none()
        .memory(64 * 1024 * 1024)
        .unwrap()
        .cpus(0.5)
        .unwrap();
    let fleet = lab
        .fleet
        .clone()
        .with_network(Network::Published)
        .with_limits(limits);
    let deployment = DeploymentId::generate();
    let spec = FleetSpec::new(web.clone(), deployment.clone(), ImageId::new(&id), 1);
    let info = running(&fleet, &web, &spec).await;
    let instance = &info.instances[0].id;

    let client = lab.hosts.iter().next().unwrap().client();
    let inspected = client
        .inspect_container(instance.as_str(), None)
        .await
        .unwrap();
    let labels = inspected.config.as_ref().unwrap().labels.clone().unwrap();
    assert_eq!(labels.get(tags::SERVICE), Some(&web.to_string()));
    assert_eq!(labels.get(tags::FLEET), Some(&info.id.to_string()));
    assert_eq!(labels.get(tags::DEPLOYMENT), Some(&deployment.to_string()));
    assert_eq!(
        labels.get(tags::MANAGED_BY).map(String::as_str),
        Some("immutable")
    );
    let env = inspected.config.as_ref().unwrap().env.clone().unwrap();
    let port = env
        .iter()
        .find_map(|e| e.strip_prefix("PORT="))
        .expect("PORT")
        .to_owned();
    for want in [
        format!("INSTANCE_ID={instance}"),
        format!("IMAGE_ID={id}"),
        format!("SERVICE={web}"),
    ] {
        assert!(env.contains(&want), "{want} missing from {env:?}");
    }
    let hc = inspected.host_config.unwrap();
    assert_eq!(hc.memory, Some(64 * 1024 * 1024));
    assert_eq!(hc.nano_cpus, Some(500_000_000));
    assert_eq!(hc.network_mode.as_deref(), Some("bridge"));
    assert_eq!(
        hc.restart_policy
            .and_then(|r| r.name)
            .map(|n| n.to_string())
            .as_deref(),
        Some("no")
    );
    let bindings = hc.port_bindings.unwrap();
    let binding = &bindings[&format!("{port}/tcp")].as_ref().unwrap()[0];
    assert_eq!(
        binding.host_ip.as_deref(),
        Some("127.0.0.1"),
        "published beyond loopback"
    );
    // The router's address for it answers, through Docker's published port.
    let addresses = fleet.addresses(&web, &info.id).await.unwrap();
    assert_eq!(addresses.len(), 1);
    assert_eq!(addresses[0].1.to_string(), format!("127.0.0.1:{port}"));
    let mut answer = None;
    for _ in 0..50 {
        if let Some(a) =
            immutable_testkit::local::answer(&format!("http://127.0.0.1:{port}/")).await
        {
            answer = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        answer.as_deref(),
        Some(id.as_str()),
        "no answer through the published port"
    );

    // A second launch of the key finds the fleet; terminate removes the container.
    assert_eq!(fleet.launch(&spec).await.unwrap().id, info.id);
    fleet.terminate(&web, &info.id).await.unwrap();
    match client.inspect_container(instance.as_str(), None).await {
        Err(e) => assert!(e.to_string().contains("404"), "{e}"),
        Ok(_) => panic!("terminate left the container"),
    }
    fleet.terminate(&web, &info.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_fleet_settings_name_the_field() {
    for (result, field) in [
        (Limits::none().memory(1024).map(|_| ()), "memory"),
        (Limits::none().cpus(0.0).map(|_| ()), "cpus"),
        (Limits::none().cpus(f64::NAN).map(|_| ()), "cpus"),
    ] {
        match result {
            Err(Error::InvalidInput { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected InvalidInput on {field}, got {other:?}"),
        }
    }
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start(&["web"]).await;
    match lab.fleet.clone().with_port_range(80..=90) {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "port_range"),
        other => panic!("{other:?}"),
    }
    let web = ServiceName::new(lab.svc("web")).unwrap();
    let spec = FleetSpec::new(
        web.clone(),
        DeploymentId::generate(),
        ImageId::new("img-1"),
        1,
    );
    match lab.fleet.launch(&spec).await {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "image"),
        other => panic!("{other:?}"),
    }
    let unknown = ImageId::new(format!("sha256:{}", "0".repeat(64)));
    let spec = FleetSpec::new(web.clone(), DeploymentId::generate(), unknown, 1);
    match lab.fleet.launch(&spec).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(
        lab.fleet.list(&web).await.unwrap().is_empty(),
        "a refused launch made a container"
    );
}
