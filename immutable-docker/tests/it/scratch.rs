//! `ScratchImage` against the machine's daemon: the demo app built `FROM scratch` runs with
//! host networking and answers; its environment is in the image; the same inputs give the
//! same image; a tag the daemon refuses is bad input on `tag`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptions, InspectContainerOptions};
use immutable_core::Error;
use immutable_docker::ScratchImage;
use immutable_testkit::docker::{self, Sweep};
use immutable_testkit::local::free_port;
use immutable_testkit::serial;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::DEMO_APP;

/// The label on what these tests make, whose value names the crate.
const TEST_LABEL: &str = "immutable.test";

/// The label naming the demo image's version.
const VERSION_LABEL: &str = "immutable.test.version";

/// The demo app built into a scratch image labelled [`TEST_LABEL`] and [`VERSION_LABEL`],
/// with `DEMO_UNHEALTHY=1` in its environment when `unhealthy`; its id. Unlike the lab's
/// shared `demo_image`, each test owns its image (a version of its own) and removes it.
async fn scratch_demo(docker: &Docker, version: &str, unhealthy: bool) -> String {
    let mut image = ScratchImage::new(DEMO_APP)
        .label(TEST_LABEL, "immutable-docker")
        .label(VERSION_LABEL, version);
    if unhealthy {
        image = image.env("DEMO_UNHEALTHY", "1");
    }
    image
        .build(docker)
        .await
        .unwrap_or_else(|e| panic!("the demo image {version}: {e}"))
}

/// `GET http://127.0.0.1:{port}{path}`: the status and the body; `None` when nothing answers
/// within 2 s.
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        Some((status, body.to_owned()))
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

/// [`get`] every 50 ms until something answers, at most 10 s.
async fn until_answered(port: u16, path: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(answer) = get(port, path).await {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "nothing answered on 127.0.0.1:{port} within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

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
    let image = scratch_demo(&docker, "scratch-runs", false).await;
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
    let image = scratch_demo(&docker, "scratch-unhealthy", true).await;
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
    let first = scratch_demo(&docker, "scratch-same", false).await;
    sweep.image(&first);
    let again = scratch_demo(&docker, "scratch-same", false).await;
    let other = scratch_demo(&docker, "scratch-other", false).await;
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
