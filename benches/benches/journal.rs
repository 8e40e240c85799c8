//! Per-deployment time on a `FileStore` with 0, 1,000 and 10,000 finished records of the
//! service behind it, printed as a table: the journal's cost must not grow with history.
//!
//! `cargo bench -p immutable-benches --bench journal`. Each row runs 100 blue-green
//! deployments (v1 <-> v2, 3 instances, instant mock backends, 1 ms polls, no bake) in real
//! time, the rows taking turns, and reports their wall times and what each one did to the
//! store's directory. The
//! store lives in `IMMUTABLE_BENCH_DIR` (default: the system temporary directory, usually a
//! disk, so fsync is part of the cost). The history is written through a `FileStore` on a
//! tmpfs (`/dev/shm`) when there is one, then copied, so that seeding 10,000 records does not
//! take 40,000 fsyncs.
#![allow(missing_docs, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use immutable_benches::{Spread, ms};
use immutable_core::{
    DeploymentId, DeploymentRecord, DeploymentRequest, Engine, FileStore, ImageRef, Phase,
    Retention, Settings, StateStore,
};
use immutable_mock::{MockCloud, Timings};

const DEPLOYMENTS: usize = 100;

fn request(version: u32) -> DeploymentRequest {
    DeploymentRequest::new("web", ImageRef::name(format!("web-v{version}")))
        .capacity(3)
        .bake_time(Duration::ZERO)
}

fn engine(cloud: &MockCloud, store: &FileStore) -> Engine {
    Engine::builder()
        .backends(cloud.backends())
        .store(store.clone())
        .settings(Settings::default().with_poll_interval(Duration::from_millis(1)))
        .build()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A store directory holding `n` finished records of web (a tenth rolled back) copied from
/// `template`, written through a `FileStore`.
async fn seeded(base: &Path, n: usize, template: &DeploymentRecord) -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(base).unwrap();
    let shm = Path::new("/dev/shm");
    let scratch = shm.is_dir().then(|| tempfile::tempdir_in(shm).unwrap());
    let seed_at: PathBuf = scratch
        .as_ref()
        .map_or(dir.path().into(), |s| s.path().into());
    let store = FileStore::open(&seed_at)
        .unwrap()
        .with_retention(Retention::keep_all());
    for i in 0..n {
        let mut r = template.clone();
        r.id = DeploymentId::generate();
        r.version = 0;
        r.phase = if i % 10 == 0 {
            Phase::RolledBack
        } else {
            Phase::Done
        };
        store.save(&mut r).await.unwrap();
    }
    if scratch.is_some() {
        copy_dir(&seed_at, dir.path());
    }
    dir
}

/// One history size: its store, an engine over it, and what its deployments took.
struct Row {
    label: String,
    engine: Engine,
    store: FileStore,
    _dirs: [tempfile::TempDir; 2],
    times: Vec<Duration>,
    stats: Delta,
}

/// What the deployments of a row did to the store directory.
#[derive(Default)]
struct Delta {
    files_read: u64,
    files_written: u64,
    dirs_listed: u64,
    files_removed: u64,
}

async fn row(base: &Path, history: usize, retention: Retention) -> Row {
    let cloud = MockCloud::with_timings(Timings::instant());
    for v in 1..=2 {
        cloud.add_image("web", &format!("web-v{v}"));
    }
    // A real record of web to copy, from a first deployment on a scratch store.
    let scratch = tempfile::tempdir_in(base).unwrap();
    let first = engine(&cloud, &FileStore::open(scratch.path()).unwrap())
        .deploy(request(1))
        .await
        .unwrap();
    let dir = seeded(base, history, &first.record).await;
    let store = FileStore::open(dir.path())
        .unwrap()
        .with_retention(retention);
    let label = match retention.kept() {
        Some(keep) => format!("{history} (keep {keep})"),
        None => format!("{history}"),
    };
    Row {
        label,
        engine: engine(&cloud, &store),
        store,
        _dirs: [scratch, dir],
        times: Vec::with_capacity(DEPLOYMENTS),
        stats: Delta::default(),
    }
}

impl Row {
    /// One v1 <-> v2 deployment, timed.
    async fn deploy(&mut self, i: usize) {
        let before = self.store.stats();
        let t = Instant::now();
        let report = self
            .engine
            .deploy(request(2 - (i % 2) as u32))
            .await
            .unwrap();
        self.times.push(t.elapsed());
        assert!(report.succeeded(), "{:?}", report.outcome);
        let after = self.store.stats();
        self.stats.files_read += after.files_read - before.files_read;
        self.stats.files_written += after.files_written - before.files_written;
        self.stats.dirs_listed += after.dirs_listed - before.dirs_listed;
        self.stats.files_removed += after.files_removed - before.files_removed;
    }
}

fn print(rows: &[Row]) {
    println!(
        "{:<18} {:>9} {:>9} {:>9} {:>9} {:>10} {:>11} {:>11} {:>9}",
        "records behind",
        "min ms",
        "median ms",
        "mean ms",
        "p90 ms",
        "reads/dep",
        "writes/dep",
        "listings",
        "removed"
    );
    for r in rows {
        let t = Spread::of(&r.times);
        let per = |n: u64| format!("{:.1}", n as f64 / r.times.len() as f64);
        println!(
            "{:<18} {:>9} {:>9} {:>9} {:>9} {:>10} {:>11} {:>11} {:>9}",
            r.label,
            ms(t.min),
            ms(t.median),
            ms(t.mean),
            ms(t.p90),
            per(r.stats.files_read),
            per(r.stats.files_written),
            r.stats.dirs_listed,
            r.stats.files_removed,
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported here.
    let base: PathBuf =
        std::env::var_os("IMMUTABLE_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "{DEPLOYMENTS} deployments per row, store in {}",
            base.display()
        );
        let mut rows = Vec::new();
        for history in [0, 1_000, 10_000] {
            rows.push(row(&base, history, Retention::keep_all()).await);
        }
        // Steady state with retention: trimmed by a batch every 62 successes.
        rows.push(row(&base, 1_000, Retention::default()).await);
        // A warm-up round, not counted; then the rows take turns, so that a change in the
        // machine's load meanwhile falls on all of them alike.
        for r in &mut rows {
            r.deploy(0).await;
            r.times.clear();
            r.stats = Delta::default();
        }
        for i in 1..=DEPLOYMENTS {
            for r in &mut rows {
                r.deploy(i).await;
            }
        }
        print(&rows);
    });
}
