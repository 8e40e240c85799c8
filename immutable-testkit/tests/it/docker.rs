//! The Docker harness: a private daemon answers on its own socket and leaves nothing behind;
//! with the refusing plugin, it refuses to start containers while the system daemon starts
//! them; a sweep removes what a test made.

use std::path::Path;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{InspectContainerOptions, WaitContainerOptions};
use futures::StreamExt;
use immutable_docker::ScratchImage;
use immutable_testkit::docker::{self, PrivateDaemon, REFUSAL, RefusingPlugin, Sweep};
use immutable_testkit::local::process_alive;
use immutable_testkit::serial;

/// An executable every Debian machine has, which exits 0 at once.
const TRUE: &str = "/bin/true";
/// One that waits as long as its argument says.
const SLEEP: &str = "/bin/sleep";

/// Processes whose command line names `needle`, zombies aside.
fn processes_naming(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .filter(|pid| process_alive(u64::from(*pid)))
        .collect()
}

fn mounted_under(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_owned)
        .collect()
}

/// Creates a container of `image` on `network` ("host", "none").
async fn create(docker: &Docker, image: &str, network: &str) -> String {
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        labels: Some([("immutable.test".to_owned(), "testkit".to_owned())].into()),
        host_config: Some(HostConfig {
            network_mode: Some(network.to_owned()),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            body,
        )
        .await
        .unwrap()
        .id
}

/// Waits for the container to exit; its exit code.
async fn exit_code(docker: &Docker, id: &str) -> i64 {
    let waited = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        docker
            .wait_container(id, None::<WaitContainerOptions>)
            .collect::<Vec<_>>(),
    )
    .await
    .expect("the container exits within 30 s");
    match waited.last() {
        Some(Ok(w)) => w.status_code,
        // bollard reads a non-zero exit as an error carrying the code.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => *code,
        other => panic!("no exit status: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_daemon_answers_on_its_own_socket_and_leaves_nothing_after_drop() {
    let _machine = serial::shared().await;
    let daemon = PrivateDaemon::start().await;
    let root = daemon.root().to_path_buf();
    let pid = daemon.pid();
    assert!(daemon.socket().starts_with(&root));
    assert_eq!(
        daemon.host_url(),
        format!("unix://{}", daemon.socket().display())
    );

    let client = daemon.client();
    assert_eq!(client.ping().await.unwrap(), "OK");
    let info = client.info().await.unwrap();
    let data_root = info.docker_root_dir.expect("a data root");
    assert!(Path::new(&data_root).starts_with(&root), "{data_root}");
    // It is not the system daemon.
    let system = docker::system().await.info().await.unwrap();
    assert_ne!(system.docker_root_dir.as_deref(), Some(data_root.as_str()));
    // Its API version was negotiated down to what the daemon speaks.
    let version = client.version().await.unwrap();
    let api = version.api_version.expect("an API version");
    let negotiated = client.client_version();
    assert_eq!(
        format!("{}.{}", negotiated.major_version, negotiated.minor_version),
        api
    );
    // A container running when the daemon is dropped goes with it.
    let sleeper = ScratchImage::new(SLEEP)
        .arg("600")
        .build(&client)
        .await
        .unwrap();
    let container = create(&client, &sleeper, "none").await;
    client.start_container(&container, None).await.unwrap();
    let inspected = client
        .inspect_container(&container, None::<InspectContainerOptions>)
        .await
        .unwrap();
    let sleeping = inspected
        .state
        .and_then(|s| s.pid)
        .expect("a running container");
    let running = processes_naming(&root.to_string_lossy());
    assert!(
        running.len() >= 3,
        "dockerd, containerd, a shim: {running:?}"
    );

    drop(daemon);
    assert!(!process_alive(pid.into()), "dockerd {pid} still runs");
    assert!(
        !process_alive(u64::try_from(sleeping).unwrap()),
        "the container still runs"
    );
    let left = processes_naming(&root.to_string_lossy());
    assert!(left.is_empty(), "processes left: {left:?}");
    assert!(
        mounted_under(&root).is_empty(),
        "{:?}",
        mounted_under(&root)
    );
    assert!(!root.exists(), "{} is left", root.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_refusing_plugin_the_private_daemon_refuses_container_starts_only() {
    let _machine = serial::shared().await;
    let plugin = RefusingPlugin::start();
    let socket = plugin.socket().to_path_buf();
    let daemon = PrivateDaemon::builder()
        .authorization_plugin(&plugin)
        .start()
        .await;
    let private = daemon.client();
    // The plugin allows everything until told otherwise: the build, the create, a start.
    let private_image = ScratchImage::new(TRUE).build(&private).await.unwrap();
    let started = create(&private, &private_image, "none").await;
    private.start_container(&started, None).await.unwrap();
    assert_eq!(exit_code(&private, &started).await, 0);

    let refused = create(&private, &private_image, "none").await;
    plugin.refuse_container_starts(true);
    let e = private.start_container(&refused, None).await.unwrap_err();
    let message = e.to_string();
    assert!(message.contains(REFUSAL), "{message}");
    assert!(message.contains(plugin.name()), "{message}");
    assert_eq!(plugin.refusals(), 1);
    let state = private
        .inspect_container(&refused, None::<InspectContainerOptions>)
        .await
        .unwrap()
        .state
        .unwrap();
    assert_eq!(state.running, Some(false));
    assert_eq!(state.started_at.as_deref(), Some("0001-01-01T00:00:00Z"));
    // Everything else is still allowed.
    private.ping().await.unwrap();
    private.remove_container(&refused, None).await.unwrap();

    // The system daemon does not ask the plugin: it starts containers.
    let system = docker::system().await;
    let sweep = Sweep::new(&system);
    let image = ScratchImage::new(TRUE)
        .label("immutable.test", "testkit")
        .build(&system)
        .await
        .unwrap();
    sweep.image(&image);
    let id = create(&system, &image, "host").await;
    sweep.container(&id);
    system.start_container(&id, None).await.unwrap();
    assert_eq!(exit_code(&system, &id).await, 0);
    assert_eq!(plugin.refusals(), 1);

    // Allowed again, the private daemon starts them.
    plugin.refuse_container_starts(false);
    let again = create(&private, &private_image, "none").await;
    private.start_container(&again, None).await.unwrap();
    assert_eq!(plugin.refusals(), 1);

    sweep.now().await;
    assert!(
        system.inspect_image(&image).await.is_err(),
        "the image is removed"
    );
    drop(daemon);
    drop(plugin);
    assert!(!socket.exists(), "{} is left", socket.display());
}
