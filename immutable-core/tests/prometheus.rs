//! `PrometheusCheck` against a real Prometheus server (Debian's package), started by each test
//! on a free loopback port, scraping a `/metrics` endpoint the test serves and flips from good
//! to bad. Real time with short intervals; every wait is bounded.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use immutable_core::{
    Check, CheckContext, CheckOutcome, Condition, DeploymentId, DeploymentRequest, Engine,
    ImageRef, NoData, Outcome, PrometheusCheck, RollbackCause, ServiceName, Settings, Steps,
    TargetId,
};
use immutable_mock::{MockCloud, Timings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
                    let mut buf = [0u8; 4096];
                    let mut req = Vec::new();
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        Metric { value, addr }
    }

    fn set(&self, value: f64) {
        *self.value.lock().unwrap() = value;
    }
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
                panic!("prometheus exited ({status}):\n{log}");
            }
            let ready = reqwest::get(format!("{url}/-/ready")).await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

    let cloud = MockCloud::with_timings(Timings::instant());
    cloud.add_image("web", "web-v1");
    cloud.add_image("web", "web-v2");
    let engine = Engine::builder()
        .images(cloud.clone())
        .fleet(cloud.clone())
        .router(cloud.clone())
        .settings(Settings::default().with_poll_interval(Duration::from_millis(100)))
        .check(
            "error-rate",
            error_rate(&prom, r#"app_errors_ratio{service="{{service}}"}"#),
        )
        .build()
        .unwrap();
    let canary = Steps::canary([50, 100], Duration::from_millis(100))
        .with_checks(Vec::<String>::new(), ["error-rate"]);
    let deploy = |image: &str| {
        DeploymentRequest::new("web", ImageRef::name(image))
            .capacity(2)
            .bake_time(Duration::ZERO)
            .strategy(canary.clone())
    };
    let first = engine.deploy(deploy("web-v1")).await.unwrap();
    assert!(first.succeeded(), "{:?}", first.outcome);

    metric.set(BAD);
    prom.wait_for(scraped, BAD).await;
    let report = engine.deploy(deploy("web-v2")).await.unwrap();
    match report.outcome {
        Outcome::RolledBack {
            cause:
                RollbackCause::CheckFailed {
                    check,
                    weight,
                    reason,
                },
        } => {
            assert_eq!((check.as_str(), weight), ("error-rate", 50));
            assert!(
                reason.contains("returned 0.5") && reason.contains("< 0.05"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}
