//! The dashboard tests' world: a FileStore written by an engine on the mock cloud in this
//! process, and the real `immutable dashboard` on a free loopback port over it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use immutable_core::{
    DeploymentId, DeploymentRequest, Engine, FileStore, ImageRef, OnTimeout, Operator, Phase,
    ServiceName, Settings, StateStore, Steps,
};
use immutable_mock::{MockCloud, Timings};
use reqwest::StatusCode;

use crate::common::BIN;

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

/// A running dashboard, killed when dropped.
pub(super) struct Dashboard {
    pub(super) child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(super) base: String,
    /// The token printed at start, if one was.
    pub(super) printed_token: Option<String>,
    _stderr: Receiver<String>,
}

impl Dashboard {
    pub(super) fn start(store: &str, args: &[&str]) -> Dashboard {
        let mut child = Command::new(BIN)
            .args([
                "--store",
                store,
                "dashboard",
                "--listen",
                "127.0.0.1:0",
                "--poll",
                "200ms",
            ])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the dashboard said where it listens");
        let base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .trim_end_matches('/')
            .to_owned();
        let printed_token = lines
            .recv_timeout(Duration::from_millis(500))
            .ok()
            .and_then(|l| {
                l.split("#token=")
                    .nth(1)
                    .map(|t| t.split_whitespace().next().unwrap_or_default().to_owned())
            });
        Dashboard {
            child,
            base,
            printed_token,
            _stderr: lines,
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(super) async fn get(&self, path: &str) -> (StatusCode, String) {
        let res = reqwest::get(self.url(path)).await.unwrap();
        (res.status(), res.text().await.unwrap())
    }

    /// POSTs `body` to `path` with `headers`.
    pub(super) async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, String) {
        let mut req = reqwest::Client::new()
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        (res.status(), res.text().await.unwrap())
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}
