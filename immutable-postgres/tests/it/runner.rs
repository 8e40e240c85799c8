//! A deploy runner in a process of its own: this test binary started again with
//! `IMMUTABLE_PG_RUNNER` set, running [`process`] alone. It has its own mock cloud and shares
//! only the PostgreSQL store (reached with the password in `PGPASSWORD`, as a runner on
//! another machine would), and tells the test what it does in `RUNNER ...` lines on stdout.

use std::io::BufRead;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use async_trait::async_trait;
use immutable_core::{
    DeploymentRequest, Engine, EventKind, Fleet, FleetId, FleetInfo, FleetSpec, ImageRef,
    OnTimeout, Result, ServiceName, Settings, Steps,
};
use immutable_mock::{MockCloud, Timings};
use immutable_postgres::PostgresStore;

use crate::common::pg;

/// Rounds of the race, and the images each runner's cloud has (`web-r<round>`).
pub(crate) const ROUNDS: usize = 100;

/// A runner process and the lines it says.
pub(crate) struct Runner {
    pub(crate) child: Child,
    stdin: Option<ChildStdin>,
}

impl Drop for Runner {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Runner {
    /// Starts runner `name` in `mode` (`race` or `hang`) on `schema`, its lines sent to `lines`
    /// as `(name, line)` without the `RUNNER ` prefix.
    pub(crate) fn start(
        name: &'static str,
        mode: &str,
        schema: &str,
        lines: Sender<(&'static str, String)>,
    ) -> Runner {
        let pg = pg();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "runner::process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("IMMUTABLE_PG_RUNNER", mode)
            .env("IMMUTABLE_PG_URL", pg.url())
            .env("IMMUTABLE_PG_SCHEMA", schema)
            .env("IMMUTABLE_PG_NAME", name)
            .env("PGPASSWORD", pg.password())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the runner process");
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest's `test runner::process ... ` may open the first line.
                if let Some((_, said)) = line.split_once("RUNNER ") {
                    let _ = lines.send((name, said.to_owned()));
                }
            }
        });
        let stdin = child.stdin.take();
        Runner { child, stdin }
    }

    /// Tells the runner to go on with round `round`.
    pub(crate) fn go(&mut self, round: usize) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "go {round}").unwrap();
        stdin.flush().unwrap();
    }
}

/// The next line from any runner, or a panic after a minute.
pub(crate) fn next(lines: &Receiver<(&'static str, String)>) -> (&'static str, String) {
    lines
        .recv_timeout(Duration::from_secs(60))
        .expect("a runner said nothing for a minute")
}

/// Says a line for the test.
fn say(line: String) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "RUNNER {line}");
    let _ = out.flush();
}

/// A fleet whose launches never return: the runner stops there, its record saved in
/// Provision and its lease held (and renewed), until it is killed.
#[derive(Debug)]
struct Stuck(MockCloud);

#[async_trait]
impl Fleet for Stuck {
    async fn launch(&self, spec: &FleetSpec) -> Result<FleetInfo> {
        say(format!("launching {}", spec.key));
        std::future::pending::<()>().await;
        self.0.launch(spec).await
    }
    async fn describe(&self, service: &ServiceName, fleet: &FleetId) -> Result<FleetInfo> {
        self.0.describe(service, fleet).await
    }
    async fn list(&self, service: &ServiceName) -> Result<Vec<FleetInfo>> {
        self.0.list(service).await
    }
    async fn terminate(&self, service: &ServiceName, fleet: &FleetId) -> Result<()> {
        self.0.terminate(service, fleet).await
    }
}

/// The cloud both kinds of runner (and the test that takes over) start from.
pub(crate) fn cloud() -> MockCloud {
    let cloud = MockCloud::with_timings(Timings::instant());
    for round in 0..ROUNDS {
        cloud.add_image("web", &format!("web-r{round}"));
    }
    cloud
}

/// The entry of the runner processes the race and takeover tests start; run by the test
/// harness as a test of its own, it does nothing.
#[test]
fn process() {
    let Ok(mode) = std::env::var("IMMUTABLE_PG_RUNNER") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let var = |k: &str| std::env::var(k).unwrap();
        let store = PostgresStore::builder(&var("IMMUTABLE_PG_URL"))
            .unwrap()
            .with_schema(var("IMMUTABLE_PG_SCHEMA"))
            .unwrap()
            .with_pool_size(2)
            .open()
            .await
            .unwrap();
        match mode.as_str() {
            "race" => race(store, &var("IMMUTABLE_PG_NAME")).await,
            "hang" => hang(store).await,
            other => panic!("no runner mode {other}"),
        }
    });
}

/// For each `go <round>`: deploys `web-r<round>` behind an approval gate, says `won <round>
/// <id>` when it waits there or `refused <round> <error>`, then `done <round> <outcome>`.
async fn race(store: PostgresStore, name: &str) {
    let cloud = cloud();
    let engine = Engine::builder()
        .backends(cloud.backends())
        .store(store)
        .identity(name)
        .settings(
            Settings::default()
                .with_poll_interval(Duration::from_millis(10))
                .with_keep_images(ROUNDS),
        )
        .build()
        .unwrap();
    let gated = Steps::blue_green().with_approval(Duration::from_secs(120), OnTimeout::RollBack);
    let mut events = engine.events();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.unwrap();
        let round: usize = line.strip_prefix("go ").unwrap().parse().unwrap();
        let request = DeploymentRequest::new("web", ImageRef::name(format!("web-r{round}")))
            .capacity(1)
            .strategy(gated.clone())
            .bake_time(Duration::ZERO);
        let mut run = tokio::spawn({
            let engine = engine.clone();
            async move { engine.deploy(request).await }
        });
        let waiting = async {
            loop {
                let e = events.recv().await.unwrap();
                if let EventKind::ApprovalRequested { .. } = e.kind {
                    break e.deployment;
                }
            }
        };
        let run = tokio::select! {
            id = waiting => {
                say(format!("won {round} {id}"));
                run.await.unwrap()
            }
            result = &mut run => result.unwrap(),
        };
        match run {
            Ok(report) => say(format!("done {round} {}", report.outcome)),
            Err(e) => say(format!("refused {round} {e:?}")),
        }
    }
}

/// Deploys `web-r0` with a lease of 3 s on a fleet whose launch never returns.
async fn hang(store: PostgresStore) {
    let cloud = cloud();
    let engine = Engine::builder()
        .images(cloud.clone())
        .fleet(Stuck(cloud.clone()))
        .router(cloud.clone())
        .store(store)
        .settings(takeover_settings())
        .build()
        .unwrap();
    let request = DeploymentRequest::new("web", ImageRef::name("web-r0"))
        .capacity(1)
        .bake_time(Duration::ZERO);
    let result = engine.deploy(request).await;
    panic!("a launch that never returns returned: {result:?}");
}

/// The settings of the killed runner and of the one that takes over.
pub(crate) fn takeover_settings() -> Settings {
    Settings::default()
        .with_poll_interval(Duration::from_millis(10))
        .with_lease_ttl(Duration::from_secs(3))
}
