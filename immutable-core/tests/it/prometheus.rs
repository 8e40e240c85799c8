//! `PrometheusCheck` against a real Prometheus server (Debian's package), started by each test
//! on a free loopback port, scraping a `/metrics` endpoint the test serves and flips from good
//! to bad: alone, gating a canary step, and as the bake gate of a wave plan on the mock. One
//! test scripts Prometheus's answers instead, to put exactly one bad measurement in a gate
//! round. Real time with short intervals; every wait is bounded.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use immutable_core::{
    Check, CheckContext, CheckOutcome, Condition, DeploymentId, InMemoryStore, NoData,
    OnWaveFailure, PrometheusCheck, ServiceName, StateStore, TargetId, TargetOutcome, WaveBake,
    WaveEvent, WaveEventKind, WaveFailure, WavePlan, WaveRunner, WaveState,
};
use immutable_mock::MockCloud;
use immutable_testkit::regions::{GatedCanary, Region, failed_check, gate_rounds, regions, web};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GOOD: f64 = 0.01;
const BAD: f64 = 0.5;
const WAIT: Duration = Duration::from_secs(60);

/// Serves `app_errors_ratio` with the labels given and a value the test sets.
struct Metric {
    value: Arc<Mutex<f64>>,
    addr: SocketAddr,
}

impl Metric {
    async fn serve(labels: &str, value: f64) -> Metric {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let value = Arc::new(Mutex::new(value));
        let (shared, labels) = (value.clone(), labels.to_owned());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let body = format!(
                    "# TYPE app_errors_ratio gauge\napp_errors_ratio{{{labels}}} {}\n",
                    *shared.lock().unwrap()
                );
                tokio::spawn(async move {
                    if read_request(&mut sock).await {
                        respond(&mut sock, "text/plain; version=0.0.4", &body).await;
                    }
                });
            }
        });
        Metric { value, addr }
    }

    fn set(&self, value: f64) {
        *self.value.lock().unwrap() = value;
    }
}

/// Reads one HTTP request's head; false when the client went away first.
async fn read_request(sock: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let mut req = Vec::new();
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    true
}

async fn respond(sock: &mut TcpStream, content_type: &str, body: &str) {
    let resp = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
}

/// A Prometheus server with its own config and storage, killed on drop.
struct Prometheus {
    url: String,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

fn prometheus_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("IMMUTABLE_PROMETHEUS") {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("prometheus"))
        .find(|p| p.is_file());
    let bin = on_path.unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
    assert!(
        bin.is_file(),
        "prometheus not found on PATH or at /usr/bin/prometheus: run ./scripts/test.sh, which \
         installs it (Debian's package), or set IMMUTABLE_PROMETHEUS"
    );
    bin
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second and waits until it is ready.
    async fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: app\n    static_configs:\n      \
                 - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let log_path = dir.path().join("prometheus.log");
        // The port is found free, then bound by Prometheus a moment later: if something took
        // it meanwhile, Prometheus exits at once, and another port is tried (three at most).
        let mut tries = 0;
        let (url, child) = 'start: loop {
            tries += 1;
            let port = free_port();
            let mut child = tokio::process::Command::new(prometheus_binary())
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log_path).unwrap())
                .kill_on_drop(true)
                .spawn()
                .expect("cannot start prometheus");
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + WAIT;
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if log.contains("address already in use") && tries < 3 {
                        continue 'start;
                    }
                    panic!("prometheus exited ({status}):\n{log}");
                }
                let ready = reqwest::get(format!("{url}/-/ready")).await;
                if ready.is_ok_and(|r| r.status().is_success()) {
                    break 'start (url, child);
                }
                assert!(
                    Instant::now() < deadline,
                    "prometheus not ready within {WAIT:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        Prometheus {
            url,
            _child: child,
            _dir: dir,
        }
    }

    /// The values of `query`, straight from the HTTP API.
    async fn values(&self, query: &str) -> Vec<f64> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query", self.url),
            [("query", query)],
        )
        .unwrap();
        let Ok(resp) = reqwest::get(url).await else {
            return Vec::new();
        };
        let text = resp.text().await.unwrap_or_default();
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        body["data"]["result"]
            .as_array()
            .map(|samples| {
                samples
                    .iter()
                    .filter_map(|s| s["value"][1].as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until Prometheus has scraped `want` for `query`.
    async fn wait_for(&self, query: &str, want: f64) {
        let deadline = Instant::now() + WAIT;
        while self.values(query).await != [want] {
            assert!(
                Instant::now() < deadline,
                "prometheus did not scrape {want} for {query} within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn run(check: &PrometheusCheck, deployment: &str) -> CheckOutcome {
    let cloud = MockCloud::new();
    let deployment = DeploymentId::new(deployment);
    let service = ServiceName::new("web").unwrap();
    let target = TargetId::new("tg-green");
    let ctx = CheckContext::new(&deployment, &service, &target, 10, &cloud);
    check.run(&ctx).await
}

fn reason(outcome: CheckOutcome) -> String {
    match outcome {
        CheckOutcome::Fail { reason } => reason,
        CheckOutcome::Pass => panic!("expected a failure"),
    }
}

fn error_rate(prom: &Prometheus, query: &str) -> PrometheusCheck {
    PrometheusCheck::builder(&prom.url, query)
        .condition(Condition::Below(0.05))
        .count(3)
        .interval(Duration::from_millis(200))
        .failure_limit(1)
        .request_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

const FLEET_QUERY: &str = r#"app_errors_ratio{service="{{service}}",deployment="{{deployment}}"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_passes_on_a_good_metric_and_fails_once_it_turns_bad() {
    let metric = Metric::serve(r#"service="web",deployment="d-1""#, GOOD).await;
    let prom = Prometheus::start(metric.addr).await;
    let scraped = r#"app_errors_ratio{deployment="d-1"}"#;
    prom.wait_for(scraped, GOOD).await;

    let check = error_rate(&prom, FLEET_QUERY);
    assert_eq!(run(&check, "d-1").await, CheckOutcome::Pass);

    // Another deployment's labels match nothing: no data fails by default, passes if asked.
    let r = reason(run(&check, "d-2").await);
    assert!(
        r.contains(r#"deployment="d-2""#) && r.contains("no data"),
        "{r}"
    );
    let lenient = PrometheusCheck::builder(&prom.url, FLEET_QUERY)
        .condition(Condition::Below(0.05))
        .no_data(NoData::Pass)
        .build()
        .unwrap();
    assert_eq!(run(&lenient, "d-2").await, CheckOutcome::Pass);

    // A query Prometheus cannot parse fails with Prometheus's own words.
    let r = reason(run(&error_rate(&prom, "app_errors_ratio{service="), "d-1").await);
    assert!(r.contains("bad_data") && r.contains("parse error"), "{r}");

    metric.set(BAD);
    prom.wait_for(scraped, BAD).await;
    let r = reason(run(&check, "d-1").await);
    assert!(
        r.contains(r#"app_errors_ratio{service="web",deployment="d-1"}"#)
            && r.contains("returned 0.5")
            && r.contains("not < 0.05")
            && r.contains("2 of 2 measurements failed (failure limit 1, 3 measurements)"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_metric_rolls_the_deployment_back() {
    let metric = Metric::serve(r#"service="web""#, GOOD).await;
    let prom = Prometheus::start(metric.addr).await;
    let scraped = r#"app_errors_ratio{service="web"}"#;
    prom.wait_for(scraped, GOOD).await;

    let check = error_rate(&prom, r#"app_errors_ratio{service="{{service}}"}"#);
    let gated = GatedCanary::new("error-rate", check, 50);
    let first = gated.deploy("web-v1").await;
    assert!(first.succeeded(), "{:?}", first.outcome);

    metric.set(BAD);
    prom.wait_for(scraped, BAD).await;
    let report = gated.deploy("web-v2").await;
    let reason = failed_check(&report, "error-rate", 50);
    assert!(
        reason.contains("returned 0.5") && reason.contains("< 0.05"),
        "{reason}"
    );
}

/// A stand-in for Prometheus's query API: answers each instant query with the next value of a
/// script (the last one once the script runs out), as one series, and keeps the values it gave.
struct ScriptedPrometheus {
    url: String,
    answered: Arc<Mutex<Vec<f64>>>,
}

impl ScriptedPrometheus {
    async fn serve(script: Vec<f64>) -> ScriptedPrometheus {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let answered = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&answered);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                if !read_request(&mut sock).await {
                    continue;
                }
                let value = {
                    let mut log = log.lock().unwrap();
                    let value = script[log.len().min(script.len() - 1)];
                    log.push(value);
                    value
                };
                let body = format!(
                    r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"service":"web"}},"value":[1700000000,"{value}"]}}]}}}}"#
                );
                respond(&mut sock, "application/json", &body).await;
            }
        });
        ScriptedPrometheus { url, answered }
    }

    fn answered(&self) -> Vec<f64> {
        self.answered.lock().unwrap().clone()
    }
}

/// A runner over `regions` with `check` registered as `error-rate`, recording its events.
fn runner(
    regions: &[Region],
    shared: &Arc<dyn StateStore>,
    check: PrometheusCheck,
) -> (WaveRunner, Arc<Mutex<Vec<WaveEvent>>>) {
    let mut builder = WaveRunner::builder()
        .store_shared(Arc::clone(shared))
        .poll_interval(Duration::from_millis(50))
        .check("error-rate", check);
    for r in regions {
        builder = builder.engine(r.name, r.engine.clone());
    }
    let runner = builder.build().unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&events);
    runner.subscribe(move |e| log.lock().unwrap().push(e.clone()));
    (runner, events)
}

/// Wave 1 on the first region, wave 2 on the second, a bake gated by `error-rate`.
fn two_waves(bake: WaveBake) -> WavePlan {
    WavePlan::new(web("web-v2"))
        .wave("first", ["eu-west-1"])
        .wave("second", ["us-east-1"])
        .bake(bake)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metric_going_bad_in_the_bake_stops_the_waves_and_rolls_back_the_first() {
    let metric = Metric::serve(r#"service="web""#, GOOD).await;
    let prom = Prometheus::start(metric.addr).await;
    let scraped = r#"app_errors_ratio{service="web"}"#;
    prom.wait_for(scraped, GOOD).await;

    let shared: Arc<dyn StateStore> = Arc::new(InMemoryStore::new());
    let regions = regions(["eu-west-1", "us-east-1"], &shared).await;
    let (eu, us) = (&regions[0], &regions[1]);
    let us_calls = us.cloud.calls().len();
    let check = error_rate(&prom, r#"app_errors_ratio{service="{{service}}"}"#);
    let (runner, events) = runner(&regions, &shared, check);
    // Long enough that only the gate can end it early: on a pass, wave 2 would start after it.
    let bake = WaveBake::time(Duration::from_secs(30))
        .checks(["error-rate"])
        .interval(Duration::from_millis(300));
    let plan = two_waves(bake).on_failure(OnWaveFailure::RollBackDone);
    let run = tokio::spawn(async move { runner.run(plan).await });

    // The metric is good while wave 1 deploys and through the bake's first gate rounds.
    let deadline = Instant::now() + WAIT;
    while !gate_rounds(&events).contains(&true) {
        assert!(
            !run.is_finished(),
            "the plan ended before a gate round passed"
        );
        assert!(
            Instant::now() < deadline,
            "no gate round passed within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(eu.serving(), eu.v2, "wave 1 deployed web-v2");
    metric.set(BAD);

    let report = tokio::time::timeout(WAIT, run)
        .await
        .expect("the plan did not end")
        .unwrap()
        .unwrap();
    assert_eq!(report.state, WaveState::RolledBack);
    let rec = &report.record;
    match rec.failure.as_ref().unwrap() {
        WaveFailure::Check {
            wave: 0,
            engine,
            check,
            reason,
        } => {
            assert_eq!(
                (engine.as_str(), check.as_str()),
                ("eu-west-1", "error-rate")
            );
            assert!(
                reason.contains(r#"app_errors_ratio{service="web"}"#)
                    && reason.contains("returned 0.5")
                    && reason.contains("not < 0.05"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let rounds = gate_rounds(&events);
    assert_eq!(rounds.last(), Some(&false), "{rounds:?}");
    // Wave 2 never started: no deployment recorded, no call to its cloud.
    assert_eq!(rec.targets[1][0].deployment, None);
    assert!(
        !events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e.kind, WaveEventKind::WaveStarted { wave: 1, .. })),
        "wave 2 started"
    );
    assert_eq!(us.cloud.calls().len(), us_calls, "us-east-1 was called");
    assert_eq!(us.serving(), us.v1);
    // By the plan's policy, wave 1 went back to web-v1.
    assert_eq!(
        rec.targets[0][0].rollback_outcome,
        Some(TargetOutcome::Succeeded)
    );
    assert_eq!(eu.serving(), eu.v1);
    let halts = shared.halt_store().unwrap().halts(None).await.unwrap();
    assert_eq!(halts.len(), 1, "the service stays halted: {halts:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_measurement_within_the_failure_limit_lets_the_waves_go_on() {
    // The gate's one round measures three times: bad, then good twice (limit: one failure).
    let prom = ScriptedPrometheus::serve(vec![BAD, GOOD]).await;
    let check = PrometheusCheck::builder(&prom.url, r#"app_errors_ratio{service="{{service}}"}"#)
        .condition(Condition::Below(0.05))
        .count(3)
        .interval(Duration::from_millis(100))
        .failure_limit(1)
        .request_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let shared: Arc<dyn StateStore> = Arc::new(InMemoryStore::new());
    let regions = regions(["eu-west-1", "us-east-1"], &shared).await;
    let (runner, events) = runner(&regions, &shared, check);
    // The next round would fall after the bake's end: one round, which must pass.
    let bake = WaveBake::time(Duration::from_secs(2))
        .checks(["error-rate"])
        .interval(Duration::from_secs(2))
        .min_passes(1);
    let report = tokio::time::timeout(WAIT, runner.run(two_waves(bake)))
        .await
        .expect("the plan did not end")
        .unwrap();
    assert_eq!(report.state, WaveState::Done, "{:?}", report.record.failure);
    assert_eq!(prom.answered(), [BAD, GOOD, GOOD]);
    assert_eq!(gate_rounds(&events), [true]);
    for r in &regions {
        assert_eq!(r.serving(), r.v2, "{} serves web-v2", r.name);
    }
}
