//! The dashboard's pages as a browser gets them: the real `immutable dashboard` (read-only, on
//! a free loopback port) over the store of `immutable_benches::dashboard_store` (1,000
//! services x 100 records in a `FileStore`, built once and cached in the target directory),
//! each URL fetched `RUNS` times with one HTTP client after a warm-up, printed as a table.
//! The acceptance asks for the services page and a deployment's page under 200 ms.
//!
//! The binary is not built by this bench (Cargo gives benches no path to another package's
//! binary): build it first, then run the bench, both in release:
//!
//! ```text
//! cargo build -p immutable-cli --release
//! cargo bench -p immutable-benches --bench dashboard_pages
//! ```
//!
//! `IMMUTABLE_BIN` names another binary (a debug one, say: its numbers are not the
//! acceptance's). The pages: `/` (the services table: a page of 50 services, the newest
//! record of each, the halts), `/services/svc-0500` (a page of 20 of its history),
//! `/deployments/ID` (one record, its commands, its chart) and `/api/deployments/ID` (the
//! same as JSON), for the newest record of svc-0500.
#![allow(missing_docs, clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use immutable_benches::dashboard_store::{self, Shape, service_name};
use immutable_benches::{Spread, ms};
use immutable_core::{FileStore, StateStore};

const RUNS: usize = 50;
const WARM_UP: usize = 3;
/// A page whose first GET takes longer than this is timed `SLOW_RUNS` times only, so that a
/// page that reads the whole journal still gets a row in minutes, not hours.
const SLOW: Duration = Duration::from_secs(2);
const SLOW_RUNS: usize = 5;
/// What the acceptance allows a page.
const BUDGET: Duration = Duration::from_millis(200);

/// The `immutable` binary: `IMMUTABLE_BIN`, else the release build in the target directory.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("IMMUTABLE_BIN") {
        return PathBuf::from(path);
    }
    let path = immutable_benches::target_dir(env!("CARGO_TARGET_TMPDIR"))
        .join("release")
        .join("immutable");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p immutable-cli --release` first (or set IMMUTABLE_BIN)",
        path.display()
    );
    path
}

/// A running read-only dashboard over `store`; killed when dropped.
struct Dashboard {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
}

impl Dashboard {
    fn start(bin: &PathBuf, store: &std::path::Path) -> Dashboard {
        let mut child = Command::new(bin)
            .arg("--store")
            .arg(format!("file:{}", store.display()))
            .args(["dashboard", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stderr = child.stderr.take().expect("piped");
        let mut lines = BufReader::new(stderr).lines();
        let first = lines
            .next()
            .and_then(Result::ok)
            .expect("the dashboard says where it listens");
        let base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .trim_end_matches('/')
            .to_owned();
        // Keep reading its stderr so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Dashboard { child, base }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Row {
    path: String,
    times: Vec<Duration>,
    bytes: usize,
}

/// GETs `path` `WARM_UP` times, then `RUNS` times timed (status and whole body); a page
/// slower than `SLOW` once `SLOW_RUNS` times.
async fn row(client: &reqwest::Client, base: &str, path: &str) -> Row {
    let url = format!("{base}{path}");
    let get = || async {
        let res = client.get(&url).send().await.expect("an answer");
        assert!(res.status().is_success(), "{url}: {}", res.status());
        res.bytes().await.expect("a body").len()
    };
    let first = Instant::now();
    get().await;
    let (warm_up, runs) = match first.elapsed() > SLOW {
        true => (0, SLOW_RUNS),
        false => (WARM_UP - 1, RUNS),
    };
    for _ in 0..warm_up {
        get().await;
    }
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        bytes = get().await;
        times.push(t.elapsed());
    }
    times.sort();
    Row {
        path: path.to_owned(),
        times,
        bytes,
    }
}

fn print(rows: &[Row]) {
    println!(
        "{RUNS} GETs per page after {WARM_UP} warm-up ({SLOW_RUNS} after one for a page \
         slower than {SLOW:?}), one keep-alive client"
    );
    println!(
        "{:<48} {:>5} {:>9} {:>8} {:>8} {:>9}  p90 under {} ms",
        "page",
        "GETs",
        "median ms",
        "p90 ms",
        "max ms",
        "bytes",
        BUDGET.as_millis()
    );
    for r in rows {
        let t = Spread::of(&r.times);
        let verdict = if t.p90 < BUDGET { "yes" } else { "NO" };
        println!(
            "{:<48} {:>5} {:>9} {:>8} {:>8} {:>9}  {verdict}",
            r.path,
            r.times.len(),
            ms(t.median),
            ms(t.p90),
            ms(t.max),
            r.bytes,
        );
    }
}

fn main() {
    let bin = binary();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let built = dashboard_store::cached(
            &immutable_benches::target_dir(env!("CARGO_TARGET_TMPDIR")),
            Shape::DASHBOARD,
        )
        .await;
        let service = service_name(built.shape.services / 2);
        let store = FileStore::open(&built.dir).unwrap();
        let newest = store.latest(&service).await.unwrap().expect("a record").id;
        println!(
            "{} over {} services x {} records in {}",
            bin.display(),
            built.shape.services,
            built.shape.records_per_service,
            built.dir.display()
        );
        let dash = Dashboard::start(&bin, &built.dir);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .expect("an HTTP client");
        let mut rows = Vec::new();
        for path in [
            "/".to_owned(),
            format!("/services/{service}"),
            format!("/deployments/{newest}"),
            format!("/api/deployments/{newest}"),
        ] {
            rows.push(row(&client, &dash.base, &path).await);
        }
        print(&rows);
    });
}
