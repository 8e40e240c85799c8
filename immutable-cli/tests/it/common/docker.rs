//! The Docker backend for the CLI's tests: a service of its own on the system dockerd
//! (`<name>-<random suffix>`: the tests share the daemon), its store root, the CLI pointed at
//! both through a service file (no Docker host named: the CLI takes DOCKER_HOST or the
//! system socket, as `immutable_testkit::docker::system` does), and the managed proxy on two
//! free loopback ports. Dropping the lab stops the proxy, removes the service's containers
//! and untags its images. And a container of someone else's, which no command may touch.

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, ContainerSummary, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListImagesOptions, RemoveContainerOptions,
    RemoveImageOptions, StartContainerOptions,
};
use immutable_core::tags;
use immutable_docker::ScratchImage;
use immutable_testkit::docker::{Sweep, system};

use super::lab::MINUTE;
use super::{BIN, Cli, SUCCEEDED};

/// A random suffix, so that tests sharing the daemon never share a name.
pub fn suffix() -> String {
    let mut bytes = [0u8; 3];
    getrandom::fill(&mut bytes).expect("random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub struct DockerLab {
    pub dir: tempfile::TempDir,
    /// `<name>-<suffix>`.
    pub service: String,
    /// The live entry point's port (the preview one is the next).
    pub port: u16,
    /// The CLI with the service file (service, backend, root, store, proxy, fast polls).
    pub cli: Cli,
    /// The system daemon.
    pub docker: Docker,
}

impl DockerLab {
    /// A service file for `<name>-<suffix>` on the system daemon; nothing made yet.
    pub async fn new(name: &str) -> DockerLab {
        DockerLab::with_keys(name, "").await
    }

    /// [`new`](Self::new) with more keys (`key = value` lines) in `[docker]`.
    pub async fn with_keys(name: &str, docker_keys: &str) -> DockerLab {
        let docker = system().await;
        let service = format!("{name}-{}", suffix());
        let dir = tempfile::tempdir().unwrap();
        let port = crate::own_app::free_port_pair();
        let file = dir.path().join("svc.toml");
        std::fs::write(
            &file,
            format!(
                "service = {service:?}\nbackend = \"docker\"\nstore = {store:?}\n\
                 [docker]\nroot = {root:?}\nhealth_check_interval = \"100ms\"\n{docker_keys}\n\
                 [proxy]\nport = {port}\npreview_port = {preview}\n\
                 [engine]\npoll_interval = \"100ms\"\n",
                store = format!("file:{}", dir.path().join("store").display()),
                root = dir.path().join("root"),
                preview = port + 1,
            ),
        )
        .unwrap();
        DockerLab {
            cli: Cli::new(["--service-file", file.to_str().unwrap()]),
            dir,
            service,
            port,
            docker,
        }
    }

    /// `demo-setup` and `proxy start`, then v1 deployed; the ids of v1 and v2.
    pub fn with_v1(&self) -> (String, String) {
        let setup = self.cli.run(&["demo-setup", "--output", "json"], MINUTE);
        assert_eq!(setup.code, SUCCEEDED, "{setup:?}");
        let images = setup.json()["images"].clone();
        let id = |n: usize| images[n]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            images[0]["name"],
            format!("{}-v1", self.service),
            "{images}"
        );
        assert_eq!(
            images[1]["name"],
            format!("{}-v2", self.service),
            "{images}"
        );
        let proxy = self.cli.run(&["proxy", "start"], MINUTE);
        assert_eq!(proxy.code, SUCCEEDED, "{proxy:?}");
        let v1 = self.deploy("v1");
        assert_eq!(v1.code, SUCCEEDED, "{v1:?}");
        (id(0), id(1))
    }

    /// `deploy --image <service>-<version>` of two instances, without a bake, to its end.
    pub fn deploy(&self, version: &str) -> super::Run {
        let image = format!("{}-{version}", self.service);
        let args = [
            "deploy",
            "--image",
            &image,
            "--capacity",
            "2",
            "--bake-time",
            "0s",
        ];
        self.cli.run(&args, MINUTE)
    }

    /// The live entry point.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Every container carrying the service's label, stopped ones included.
    pub async fn containers(&self) -> Vec<ContainerSummary> {
        service_containers(&self.docker, &self.service).await
    }
}

/// Every container labelled as `service`'s, stopped ones included.
pub async fn service_containers(docker: &Docker, service: &str) -> Vec<ContainerSummary> {
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([(
            "label".to_owned(),
            vec![format!("{}={service}", tags::SERVICE)],
        )])),
        ..Default::default()
    };
    docker
        .list_containers(Some(options))
        .await
        .expect("list containers")
}

impl Drop for DockerLab {
    fn drop(&mut self) {
        let _ = self.cli.run(&["proxy", "stop"], MINUTE);
        let (docker, service) = (self.docker.clone(), self.service.clone());
        // Its own thread and runtime: the test's runtime may be shutting down.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(remove_service(&docker, &service));
        })
        .join();
    }
}

/// Removes the service's containers and its images' pin tags (`immutable-sdk:<service>.*`),
/// which deletes the images.
async fn remove_service(docker: &Docker, service: &str) {
    for c in service_containers(docker, service).await {
        if let Some(id) = c.id {
            let force = RemoveContainerOptions {
                force: true,
                ..Default::default()
            };
            let _ = docker.remove_container(&id, Some(force)).await;
        }
    }
    let Ok(images) = docker.list_images(Some(ListImagesOptions::default())).await else {
        return;
    };
    let pin = format!("immutable-sdk:{service}.");
    for tag in images.iter().flat_map(|i| &i.repo_tags) {
        if tag.starts_with(&pin) {
            let _ = docker
                .remove_image(tag, Some(RemoveImageOptions::default()), None)
                .await;
        }
    }
}

/// A container of someone else's: the demo app on the host's network (on a free loopback
/// port), labelled only `test=foreign`. Swept, with its image, when dropped.
pub struct Foreign {
    docker: Docker,
    name: String,
    _sweep: Sweep,
}

impl Foreign {
    pub async fn start(docker: &Docker) -> Foreign {
        let sweep = Sweep::new(docker);
        let name = format!("foreign-{}", suffix());
        let image = ScratchImage::new(BIN)
            .arg("demo-app")
            .label("test", &name)
            .build(docker)
            .await
            .expect("the foreign image");
        sweep.image(&image);
        sweep.container(&name);
        let body = ContainerCreateBody {
            image: Some(image),
            env: Some(vec![format!("PORT={}", crate::own_app::free_port_pair())]),
            labels: Some(HashMap::from([("test".to_owned(), "foreign".to_owned())])),
            host_config: Some(HostConfig {
                network_mode: Some("host".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        docker
            .create_container(Some(options), body)
            .await
            .expect("create the foreign container");
        docker
            .start_container(&name, None::<StartContainerOptions>)
            .await
            .expect("start the foreign container");
        Foreign {
            docker: docker.clone(),
            name,
            _sweep: sweep,
        }
    }

    /// Still there, running, with its labels only.
    pub async fn assert_untouched(&self, after: &str) {
        let c = self
            .docker
            .inspect_container(&self.name, None)
            .await
            .unwrap_or_else(|e| panic!("the foreign container is gone after {after}: {e}"));
        let state = c.state.and_then(|s| s.running);
        assert_eq!(state, Some(true), "stopped after {after}");
        let labels = c.config.and_then(|c| c.labels).unwrap_or_default();
        assert_eq!(
            labels,
            HashMap::from([("test".to_owned(), "foreign".to_owned())]),
            "relabelled after {after}"
        );
    }
}
