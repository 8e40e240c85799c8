//! `ScratchImage` against the machine's daemon: the demo app built `FROM scratch` runs with
//! host networking and answers; its environment is in the image; the same inputs give the
//! same image; a tag the daemon refuses is bad input on `tag`.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptions, InspectContainerOptions};
use immutable_core::Error;
use immutable_docker::ScratchImage;
use immutable_testkit::docker::{self, Sweep};
use immutable_testkit::local::free_port;
use immutable_testkit::serial;

use crate::common::{DEMO_APP, TEST_LABEL, VERSION_LABEL, demo_image, get, until_answered};

/// Creates and starts a container of `image` named `name` on the host's network, serving
/// on `port`; its id, registered with `sweep` before it starts.
async fn run_demo(docker: &Docker, sweep: &Sweep, image: &str, name: &str, port: u16) -> String {
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        env: Some(vec![
            format!("PORT={port}"),
            format!("IMAGE_ID={image}"),
            format!("INSTANCE_ID={name}"),
        ]),
        labels: Some(HashMap::from([(
            TEST_LABEL.to_owned(),
            "immutable-docker".to_owned(),
        )])),
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
    let id = docker
        .create_container(Some(options), body)
        .await
        .unwrap()
        .id;
    sweep.container(&id);
    docker.start_container(&id, None).await.unwrap();
    id
}

/// A container name of this test process.
fn name(test: &str) -> String {
    format!("immutable-docker-it-{test}-{}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_image_runs_with_host_networking_and_answers_with_its_image_id() {
    let _machine = serial::shared().await;
    let docker = docker::system().await;
    let sweep = Sweep::new(&docker);
    let image = demo_image(&docker, "scratch-runs", false).await;
    sweep.image(&image);
    let hex = image.strip_prefix("sha256:").expect("a sha256 id");
    assert_eq!(hex.len(), 64, "{image}");

    let inspected = docker.inspect_image(&image).await.unwrap();
    let config = inspected.config.expect("an image config");
    assert_eq!(
        config.entrypoint,
        Some(vec!["/app/immutable-docker-demo-app".to_owned()])
    );
    let labels = config.labels.unwrap_or_default();
    assert_eq!(
        labels.get(VERSION_LABEL).map(String::as_str),
        Some("scratch-runs")
    );

    let port = free_port();
    let name = name("runs");
    let id = run_demo(&docker, &sweep, &image, &name, port).await;
    let (status, body) = until_answered(port, "/").await;
    assert_eq!(
        (status, body.as_str()),
        (200, format!("image={image} instance={name}\n").as_str())
    );
    assert_eq!(get(port, "/health").await.map(|(s, _)| s), Some(200));

    sweep.now().await;
    let gone = docker
        .inspect_container(&id, None::<InspectContainerOptions>)
        .await;
    assert!(gone.is_err(), "the container is removed");
    assert!(
        docker.inspect_image(&image).await.is_err(),
        "the image is removed"
    );
    assert_eq!(
        get(port, "/").await,
        None,
        "nothing answers once it is removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_is_in_the_image_an_unhealthy_demo_fails_its_health_check() {
    let _machine = serial::shared().await;
    let docker = docker::system().await;
    let sweep = Sweep::new(&docker);
    let image = demo_image(&docker, "scratch-unhealthy", true).await;
    sweep.image(&image);

    let port = free_port();
    run_demo(&docker, &sweep, &image, &name("unhealthy"), port).await;
    let (status, _) = until_answered(port, "/").await;
    assert_eq!(status, 200);
    assert_eq!(get(port, "/health").await.map(|(s, _)| s), Some(503));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_inputs_build_the_same_image_and_another_version_another() {
    let docker = docker::system().await;
    let sweep = Sweep::new(&docker);
    let first = demo_image(&docker, "scratch-same", false).await;
    sweep.image(&first);
    let again = demo_image(&docker, "scratch-same", false).await;
    let other = demo_image(&docker, "scratch-other", false).await;
    sweep.image(&other);
    assert_eq!(first, again);
    assert_ne!(first, other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tagged_image_is_found_by_its_tag_and_a_refused_tag_is_bad_input() {
    let docker = docker::system().await;
    let sweep = Sweep::new(&docker);
    let tag = format!("immutable-docker-it:tagged-{}", std::process::id());
    let image = ScratchImage::new(DEMO_APP)
        .label(TEST_LABEL, "immutable-docker")
        .label(VERSION_LABEL, "scratch-tagged")
        .tag(&tag)
        .build(&docker)
        .await
        .unwrap();
    sweep.image(&tag);
    sweep.image(&image);
    let by_tag = docker.inspect_image(&tag).await.unwrap();
    assert_eq!(by_tag.id.as_deref(), Some(image.as_str()));

    let refused = ScratchImage::new(DEMO_APP)
        .tag("Not A Valid Tag")
        .build(&docker)
        .await
        .unwrap_err();
    match &refused {
        Error::InvalidInput { field, .. } => assert_eq!(field, "tag", "{refused}"),
        other => panic!("expected InvalidInput on tag, got {other}"),
    }
    assert!(refused.to_string().contains("Not A Valid Tag"), "{refused}");
}
