//! A local lab for the tests: a store root in a temporary directory, HAProxy on loopback
//! ports, a router, and demo-app images. Dropping it kills every process it started.
#![allow(dead_code, unreachable_pub, clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Duration;

use immutable_core::{Engine, EngineBuilder, Image, Settings};
use immutable_local::{
    Haproxy, HaproxyOptions, HaproxyRouter, ImportRequest, LoadGen, LocalImageStore, ProcessFleet,
    RunningLoad,
};

/// The demo app built with this crate.
pub const DEMO_APP: &str = env!("CARGO_BIN_EXE_immutable-demo-app");

pub struct Lab {
    pub dir: tempfile::TempDir,
    pub images: LocalImageStore,
    pub fleet: ProcessFleet,
    pub haproxy: Haproxy,
    pub router: HaproxyRouter,
}

impl Lab {
    /// Starts HAProxy for `services`; fails the test with a message if it cannot start.
    pub async fn start(services: &[&str]) -> Lab {
        Self::start_with(HaproxyOptions::new(services.iter().copied())).await
    }

    /// Starts HAProxy with `options`; fails the test with a message if it cannot start.
    pub async fn start_with(options: HaproxyOptions) -> Lab {
        let dir = tempfile::tempdir().expect("temp dir");
        let images = LocalImageStore::open(dir.path().join("root")).expect("image store");
        let fleet = ProcessFleet::open(&images)
            .expect("fleet")
            .with_grace_period(Duration::from_secs(5));
        let haproxy = Haproxy::start(options).await.unwrap_or_else(|e| {
            panic!("HAProxy must be installed and start (scripts/test.sh installs it): {e}")
        });
        let router = Self::router(&haproxy, &fleet, dir.path().join("router")).await;
        Lab {
            dir,
            images,
            fleet,
            haproxy,
            router,
        }
    }

    /// A router on the lab's HAProxy with fast health checks.
    pub async fn router(haproxy: &Haproxy, fleet: &ProcessFleet, state: PathBuf) -> HaproxyRouter {
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

    /// Imports the demo app as image `name` of `service` (unhealthy if asked).
    pub async fn import_demo(&self, service: &str, name: &str, unhealthy: bool) -> Image {
        let src = self.dir.path().join(format!("src-{service}-{name}"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("VERSION"), name).unwrap();
        if unhealthy {
            std::fs::write(src.join("UNHEALTHY"), "").unwrap();
        }
        self.images
            .import(ImportRequest::new(service, name, &src, [DEMO_APP]))
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
    /// each request held 50 ms by the app, so that every client always has one in flight: a
    /// swap that cuts in-flight requests fails some (the negative control shows it does).
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
        LoadGen::new(format!("{}/?delay_ms={hold_ms}", self.haproxy.url(service)))
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
        self.fleet.kill_all();
    }
}

pub fn settings() -> Settings {
    Settings::default()
        .with_poll_interval(Duration::from_millis(100))
        .with_launch_timeout(Duration::from_secs(20))
}

pub use immutable_testkit::load::{Timeline, assert_zero_downtime, warm_up};
pub use immutable_testkit::local::answer;
