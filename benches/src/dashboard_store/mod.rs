//! A journal at the dashboard's scale: 1,000 services with 100 finished deployments each
//! (100,000 records) in a [`FileStore`], built once and cached between bench runs.
//!
//! The records are copies of real ones, a canary that finished and one that a failed check
//! rolled back (one in ten), each with the timeline the engine writes; every copy gets its own
//! id and service, and is saved through [`StateStore::save`], so the index and layout are the
//! store's own.
//!
//! # Cost
//! A save fsyncs twice (the record and the index, each with its directory), which on a disk
//! is milliseconds: 100,000 of them would take many minutes. So the store is built on a tmpfs
//! (`/dev/shm`) when there is one, where fsync costs nothing, and copied to its cache
//! directory; reads do not depend on where it was written. Without a tmpfs it is built in
//! place.
//!
//! # Cache
//! [`cached`] keeps the store in `<target>/immutable-bench/dashboard-store/v<FORMAT>` and
//! reuses it when it is complete and its newest record still parses; [`FORMAT`] changes
//! whenever what is written does.

mod templates;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use immutable_core::{DeploymentId, FileStore, Retention, ServiceName, StateStore};
use serde::{Deserialize, Serialize};

/// The version of what [`build`] writes; a cache of another version is never reused.
pub const FORMAT: u32 = 1;

/// How many services, and how many finished records each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Services, named by [`service_name`].
    pub services: usize,
    /// Finished records per service.
    pub records_per_service: usize,
}

impl Shape {
    /// The dashboard's acceptance: 1,000 services, 100,000 records.
    pub const DASHBOARD: Shape = Shape {
        services: 1_000,
        records_per_service: 100,
    };

    /// Records in all.
    pub fn records(&self) -> usize {
        self.services * self.records_per_service
    }
}

/// The `i`th service: `svc-0000`, `svc-0001`, ... (names sort as numbers do).
pub fn service_name(i: usize) -> ServiceName {
    ServiceName::new(format!("svc-{i:04}")).expect("a valid service name")
}

/// A built store, and what building it took.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Built {
    /// The store's directory: open it with [`FileStore::open`].
    #[serde(skip)]
    pub dir: PathBuf,
    /// What it holds.
    pub shape: Shape,
    /// How long saving the records took.
    pub saving: Duration,
    /// How long copying them from the tmpfs took (zero when built in place).
    pub copying: Duration,
    /// Whether this run reused a cached store instead of building it.
    #[serde(skip)]
    pub reused: bool,
}

/// The file, written last, that marks a cached store complete.
const MARKER: &str = "built.json";

/// The store of `shape` under `target/immutable-bench/dashboard-store/v<FORMAT>`: reused when
/// complete, else built (on a tmpfs when there is one) and copied there.
///
/// # Panics
/// When the store cannot be built or written: a bench has no better answer.
pub async fn cached(target: &Path, shape: Shape) -> Built {
    let root = target.join("immutable-bench").join("dashboard-store");
    let name = format!("v{FORMAT}-{}x{}", shape.services, shape.records_per_service);
    let dir = root.join(&name);
    if let Some(built) = reusable(&dir, shape).await {
        return built;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let partial = root.join(format!("{name}.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&root).expect("the bench cache directory");
    let shm = Path::new("/dev/shm");
    let mut built = if shm.is_dir() {
        let scratch = tempfile::tempdir_in(shm).expect("a directory on the tmpfs");
        let mut built = build(scratch.path(), shape).await;
        let t = Instant::now();
        copy_dir(scratch.path(), &partial);
        built.copying = t.elapsed();
        built
    } else {
        build(&partial, shape).await
    };
    std::fs::write(
        partial.join(MARKER),
        serde_json::to_vec_pretty(&built).expect("JSON"),
    )
    .expect("the marker");
    std::fs::rename(&partial, &dir).expect("the built store moved into place");
    built.dir = dir;
    built
}

/// The store in `dir` if it is complete, of `shape`, and its newest record parses.
async fn reusable(dir: &Path, shape: Shape) -> Option<Built> {
    let marker = std::fs::read(dir.join(MARKER)).ok()?;
    let mut built: Built = serde_json::from_slice(&marker).ok()?;
    let last = service_name(shape.services.checked_sub(1)?);
    let store = FileStore::open(dir).ok()?;
    (built.shape == shape && store.latest(&last).await.ok()??.phase.is_terminal()).then(|| {
        built.dir = dir.to_owned();
        built.reused = true;
        built
    })
}

/// Saves `shape`'s records through a [`FileStore`] in `dir` (created), oldest first.
///
/// # Panics
/// When a save fails.
pub async fn build(dir: &Path, shape: Shape) -> Built {
    let [done, rolled_back] = templates::finished_canaries().await;
    let store = FileStore::open(dir)
        .expect("a store directory")
        .with_retention(Retention::keep_all());
    let t = Instant::now();
    for s in 0..shape.services {
        let service = service_name(s);
        for r in 0..shape.records_per_service {
            let mut record = if r % 10 == 9 { &rolled_back } else { &done }.clone();
            record.id = DeploymentId::generate();
            record.version = 0;
            record.spec.service = service.clone();
            store.save(&mut record).await.expect("a save");
        }
    }
    Built {
        dir: dir.to_owned(),
        shape,
        saving: t.elapsed(),
        copying: Duration::ZERO,
        reused: false,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a directory");
    for entry in std::fs::read_dir(from).expect("a listing") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("a copy");
        }
    }
}
