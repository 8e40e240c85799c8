//! A Docker lab for the tests: a store root in a temporary directory, the Docker hosts, HAProxy
//! on loopback ports, a router, and the demo app's images. Service names carry a suffix of
//! their own per lab, since the tests of this binary share the daemon: a lab's `web` is
//! `web-<suffix>` there. Dropping the lab removes every container of its services.

#![allow(dead_code, unreachable_pub)]
use std::path::PathBuf;
use std::time::Duration;

use bollard::query_parameters::{
    ListContainersOptions, ListImagesOptions, RemoveContainerOptions, RemoveImageOptions,
};
use immutable_core::{Engine, EngineBuilder, Image, ImageId, Settings, tags};
use immutable_docker::{
    DockerFleet, DockerHost, DockerHosts, DockerImageStore, ImageSource, ImportRequest,
    ScratchImage,
};
use immutable_local::{Haproxy, HaproxyOptions, HaproxyRouter, LoadGen, RunningLoad};
use tokio::sync::OnceCell;

/// The demo app built with this crate.
pub const DEMO_APP: &str = env!("CARGO_BIN_EXE_immutable-docker-demo-app");

/// The daemon the tests use: `DOCKER_HOST` (a unix socket) or /var/run/docker.sock.
pub fn system_url() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| h.starts_with("unix://"))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned())
}

/// The system daemon as host `name`; fails the test with what to do when none answers.
pub async fn system_host(name: &str) -> DockerHost {
    DockerHost::connect(name, system_url()).await.unwrap_or_else(|e| {
        panic!("a Docker daemon must answer (scripts/test.sh installs docker.io and starts dockerd): {e}")
    })
}

/// The demo app's images, built once per test binary on the system daemon: `(version,
/// unhealthy)` to image id. Different versions differ by a label, so their ids differ.
pub async fn demo_image(version: &str, unhealthy: bool) -> ImageId {
    static BUILT: OnceCell<tokio::sync::Mutex<std::collections::BTreeMap<String, ImageId>>> =
        OnceCell::const_new();
    let built = BUILT
        .get_or_init(|| async { tokio::sync::Mutex::new(Default::default()) })
        .await;
    let key = format!("{version}{}", if unhealthy { "-unhealthy" } else { "" });
    let mut built = built.lock().await;
    if let Some(id) = built.get(&key) {
        return id.clone();
    }
    let host = system_host("build").await;
    let mut image = ScratchImage::new(DEMO_APP)
        .label("org.example.version", version)
        .tag(format!("immutable-docker-test:{key}"));
    if unhealthy {
        image = image.env("DEMO_UNHEALTHY", "1");
    }
    let id = image
        .build(host.client())
        .await
        .unwrap_or_else(|e| panic!("building the demo image {key}: {e}"));
    let id = ImageId::new(id);
    built.insert(key, id.clone());
    id
}

pub struct Lab {
    pub dir: tempfile::TempDir,
    pub suffix: String,
    pub hosts: DockerHosts,
    pub images: DockerImageStore,
    pub fleet: DockerFleet,
    pub haproxy: Haproxy,
    pub router: HaproxyRouter,
}

impl Lab {
    /// A lab on the system daemon for `services` (named `<service>-<suffix>` in Docker and
    /// HAProxy).
    pub async fn start(services: &[&str]) -> Lab {
        let hosts = DockerHosts::new([system_host("a").await]).unwrap();
        Self::on(hosts, services).await
    }

    /// A lab over `hosts`.
    pub async fn on(hosts: DockerHosts, services: &[&str]) -> Lab {
        let suffix = format!("{:06x}", fastrand::u32(..0x100_0000));
        let names: Vec<String> = services.iter().map(|s| format!("{s}-{suffix}")).collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let images = DockerImageStore::open(dir.path().join("root"), hosts.clone()).unwrap();
        let fleet = DockerFleet::open(&images)
            .unwrap()
            .with_grace_period(Duration::from_secs(5));
        let haproxy = Haproxy::start(HaproxyOptions::new(names.iter().map(String::as_str)))
            .await
            .unwrap_or_else(|e| {
                panic!("HAProxy must be installed and start (scripts/test.sh installs it): {e}")
            });
        let router = Self::router(&haproxy, &fleet, dir.path().join("router")).await;
        Lab {
            dir,
            suffix,
            hosts,
            images,
            fleet,
            haproxy,
            router,
        }
    }

    /// A router on the lab's HAProxy with fast health checks.
    pub async fn router(haproxy: &Haproxy, fleet: &DockerFleet, state: PathBuf) -> HaproxyRouter {
        haproxy
            .router_builder()
            .state_dir(state)
            .instances(fleet.clone())
            .health_checks(Duration::from_millis(100), 2, 2)
            .drain_timeout(Duration::from_secs(10))
            .build()
            .await
            .expect("router")
    }

    /// The lab's name for `service`.
    pub fn svc(&self, service: &str) -> String {
        format!("{service}-{}", self.suffix)
    }

    /// Imports the demo app `version` as image `name` of `service`.
    pub async fn import_demo(
        &self,
        service: &str,
        name: &str,
        version: &str,
        unhealthy: bool,
    ) -> Image {
        let id = demo_image(version, unhealthy).await;
        let request =
            ImportRequest::new(self.svc(service), name, ImageSource::Docker(id.to_string()));
        self.images
            .import(request)
            .await
            .unwrap_or_else(|e| panic!("import {name}: {e}"))
    }

    /// An engine on the lab with quick polls.
    pub fn engine(&self) -> EngineBuilder {
        Engine::builder()
            .images(self.images.clone())
            .fleet(self.fleet.clone())
            .router(self.router.clone())
            .preview(self.router.clone())
            .store(immutable_core::InMemoryStore::new())
            .settings(settings())
    }

    /// Load on the service's live entry point: 4 keep-alive and 4 new-connection clients,
    /// each request held 50 ms by the app.
    pub fn load(&self, service: &str, max_requests: u64, max_time: Duration) -> RunningLoad {
        self.load_held(service, 50, max_requests, max_time)
    }

    /// As [`load`](Self::load), each request held `hold_ms` by the app.
    pub fn load_held(
        &self,
        service: &str,
        hold_ms: u64,
        max_requests: u64,
        max_time: Duration,
    ) -> RunningLoad {
        LoadGen::new(format!(
            "{}/?delay_ms={hold_ms}",
            self.haproxy.url(&self.svc(service))
        ))
        .keep_alive_clients(4)
        .new_connection_clients(4)
        .max_requests(max_requests)
        .max_duration(max_time)
        .start()
        .expect("load")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let hosts: Vec<DockerHost> = self.hosts.iter().cloned().collect();
        let suffix = self.suffix.clone();
        // Its own thread and runtime: a test's runtime may be shutting down.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(remove_lab_containers(&hosts, &suffix));
        })
        .join();
    }
}

/// Removes every container of the SDK whose service ends with `-<suffix>`, and every
/// container whose name does (what a test started itself).
async fn remove_lab_containers(hosts: &[DockerHost], suffix: &str) {
    for host in hosts {
        let options = ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let Ok(found) = host.client().list_containers(Some(options)).await else {
            continue;
        };
        for c in found {
            let end = format!("-{suffix}");
            let managed = c
                .labels
                .as_ref()
                .and_then(|l| l.get(tags::MANAGED_BY))
                .is_some();
            let ours = (managed
                && c.labels
                    .as_ref()
                    .and_then(|l| l.get(tags::SERVICE))
                    .is_some_and(|s| s.ends_with(&end)))
                || c.names.iter().flatten().any(|n| n.ends_with(&end));
            if let (true, Some(id)) = (ours, c.id) {
                let remove = RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                };
                let _ = host.client().remove_container(&id, Some(remove)).await;
            }
        }
        // The images stay (built once per binary); the lab's pin tags go.
        let images = ListImagesOptions {
            filters: Some([("reference".to_owned(), vec!["immutable-sdk".to_owned()])].into()),
            ..Default::default()
        };
        let Ok(found) = host.client().list_images(Some(images)).await else {
            continue;
        };
        let pins = found.iter().flat_map(|i| i.repo_tags.iter());
        for tag in pins.filter(|t| t.contains(&format!("-{suffix}."))) {
            let _ = host
                .client()
                .remove_image(tag, None::<RemoveImageOptions>, None)
                .await;
        }
    }
}

pub fn settings() -> Settings {
    Settings::default()
        .with_poll_interval(Duration::from_millis(100))
        .with_launch_timeout(Duration::from_secs(30))
}
