//! The dashboard tests' world: a FileStore written by an engine on the mock cloud in this
//! process, and the real `immutable dashboard` on a free loopback port over it (the process
//! helper is in `common::dashboard`, which the browser tests use too).

use std::sync::Arc;
use std::time::{Duration, Instant};

use immutable_core::{
    DeploymentId, DeploymentRequest, Engine, FileStore, ImageRef, OnTimeout, Operator, Phase,
    ServiceName, Settings, StateStore, Steps,
};
use immutable_mock::{MockCloud, Timings};

pub(super) const TOKEN: &str = "test-token-0123456789abcdef";

/// A journal with one finished deployment of `web` and one waiting at its approval gate,
/// run by an engine in this process.
pub(super) struct World {
    pub(super) dir: tempfile::TempDir,
    pub(super) store: Arc<FileStore>,
    pub(super) done: DeploymentId,
    pub(super) waiting: DeploymentId,
    _runner: tokio::task::JoinHandle<()>,
}

impl World {
    pub(super) async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileStore::open(dir.path().join("journal")).unwrap());
        let cloud = MockCloud::with_timings(Timings::instant());
        cloud.add_image("web", "web-v1");
        cloud.add_image("web", "web-v2");
        let engine = Engine::builder()
            .backends(cloud.backends())
            .store_shared(store.clone())
            .settings(Settings::default().with_poll_interval(Duration::from_millis(100)))
            .build()
            .unwrap();
        let first = DeploymentRequest::new("web", ImageRef::name("web-v1"))
            .capacity(2)
            .bake_time(Duration::ZERO);
        let report = engine.deploy(first).await.unwrap();
        assert!(report.succeeded());
        let gated = DeploymentRequest::new("web", ImageRef::name("web-v2"))
            .capacity(2)
            .bake_time(Duration::ZERO)
            .strategy(
                Steps::blue_green().with_approval(Duration::from_secs(3600), OnTimeout::RollBack),
            );
        let runner = tokio::spawn(async move {
            let _ = engine.deploy(gated).await;
        });
        let web = ServiceName::new("web").unwrap();
        let waiting = wait_for(&store, &web, |r| r.phase == Phase::Rollout).await;
        let done = store
            .history(&web, &immutable_core::Page::first(2).unwrap())
            .await
            .unwrap();
        World {
            done: done.records[1].id.clone(),
            waiting,
            dir,
            store,
            _runner: runner,
        }
    }

    pub(super) fn store_arg(&self) -> String {
        format!("file:{}", self.dir.path().join("journal").display())
    }

    pub(super) fn token_file(&self) -> String {
        let path = self.dir.path().join("token");
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        path.display().to_string()
    }

    pub(super) async fn commands(&self) -> Vec<immutable_core::CommandRecord> {
        self.store.commands(&self.waiting).await.unwrap()
    }

    pub(super) async fn halts(&self) -> usize {
        let operator = Operator::new(self.store.clone());
        operator.halts(None).await.unwrap().len()
    }
}

/// The id of `service`'s latest record once `pred` holds for it (10 s at most).
pub(super) async fn wait_for(
    store: &FileStore,
    service: &ServiceName,
    pred: impl Fn(&immutable_core::DeploymentRecord) -> bool,
) -> DeploymentId {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(r) = store.latest(service).await.unwrap()
            && pred(&r)
        {
            return r.id;
        }
        assert!(Instant::now() < deadline, "the deployment never got there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The dashboard process, shared with the browser tests.
pub(super) use crate::common::dashboard::Dashboard;

pub(super) fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}
