//! The store reads behind the dashboard's pages, on the scale its acceptance names: 1,000
//! services with 100 finished records each in a `FileStore` (built once by
//! `immutable_benches::dashboard_store`, cached in the target directory), printed as a table.
//!
//! `cargo bench -p immutable-benches --bench dashboard_store`. Each row runs its reads 100
//! times after one warm-up (so the page cache is warm, as on a dashboard that is in use) and
//! reports their wall times and the files they read and directories they listed. The pages:
//! - services: one page of 50 names (`StateStore::services`), the newest record of each
//!   (`latest`), and the halts;
//! - one deployment: its record (`load`) and its commands;
//! - one service's history: a page of 20 (`history`).
//!
//! `... --bench dashboard_store -- --disk-saves` also times 1,000 saves straight to a store in
//! the target directory (fsync on the disk), the cost the tmpfs build avoids.
#![allow(missing_docs, clippy::print_stdout)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use immutable_benches::dashboard_store::{self, Built, Shape, service_name};
use immutable_benches::{Spread, ms};
use immutable_core::{FileStore, FileStoreStats, Page, ServiceName, StateStore};

const RUNS: usize = 100;
const PAGE: usize = 50;

fn target_dir() -> PathBuf {
    immutable_benches::target_dir(env!("CARGO_TARGET_TMPDIR"))
}

struct Row {
    label: String,
    times: Vec<Duration>,
    read: u64,
    listed: u64,
}

/// Runs `op` once to warm up, then `RUNS` times, timed, with what it did to the directory.
async fn row<F, Fut>(store: &FileStore, label: &str, mut op: F) -> Row
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    op().await;
    let before: FileStoreStats = store.stats();
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        op().await;
        times.push(t.elapsed());
    }
    let after = store.stats();
    times.sort();
    Row {
        label: label.to_owned(),
        times,
        read: after.files_read - before.files_read,
        listed: after.dirs_listed - before.dirs_listed,
    }
}

async fn services_page(store: &FileStore, after: Option<&ServiceName>) -> usize {
    let names = store.services(after, PAGE).await.unwrap();
    for name in &names {
        assert!(store.latest(name).await.unwrap().is_some());
    }
    store.halt_store().unwrap().halts(None).await.unwrap();
    names.len()
}

fn print(built: &Built, rows: &[Row]) {
    let how = if built.reused {
        "reused from the cache".to_owned()
    } else {
        format!(
            "built: saves {:.1} s, copy {:.1} s",
            built.saving.as_secs_f64(),
            built.copying.as_secs_f64()
        )
    };
    println!(
        "{} services x {} records = {} records in {} ({how}); built by its first run in \
         saves {:.1} s + copy {:.1} s",
        built.shape.services,
        built.shape.records_per_service,
        built.shape.records(),
        built.dir.display(),
        built.saving.as_secs_f64(),
        built.copying.as_secs_f64(),
    );
    println!("{RUNS} runs per row, after one warm-up");
    println!(
        "{:<44} {:>8} {:>9} {:>8} {:>8} {:>10} {:>12}",
        "reads", "min ms", "median ms", "p90 ms", "max ms", "files/run", "listings/run"
    );
    for r in rows {
        let t = Spread::of(&r.times);
        let per = |n: u64| format!("{:.1}", n as f64 / r.times.len() as f64);
        println!(
            "{:<44} {:>8} {:>9} {:>8} {:>8} {:>10} {:>12}",
            r.label,
            ms(t.min),
            ms(t.median),
            ms(t.p90),
            ms(t.max),
            per(r.read),
            per(r.listed),
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if std::env::args().any(|a| a == "--disk-saves") {
            let dir = tempfile::tempdir_in(target_dir()).unwrap();
            let shape = Shape {
                services: 10,
                records_per_service: 100,
            };
            let sample = dashboard_store::build(dir.path(), shape).await;
            println!(
                "{} saves on the disk ({}): {:.1} s, {:.2} ms each",
                shape.records(),
                dir.path().display(),
                sample.saving.as_secs_f64(),
                sample.saving.as_secs_f64() * 1e3 / shape.records() as f64
            );
        }
        let built = dashboard_store::cached(&target_dir(), Shape::DASHBOARD).await;
        let store = FileStore::open(&built.dir).unwrap();
        let first = service_name(0);
        let middle = service_name(built.shape.services / 2);
        let last = service_name(built.shape.services - 1);
        let newest = |s: &ServiceName| {
            let (store, s) = (store.clone(), s.clone());
            async move { store.latest(&s).await.unwrap().unwrap().id }
        };
        let (of_first, of_last) = (newest(&first).await, newest(&last).await);
        let page_20 = Page::first(20).unwrap();

        let mut rows = Vec::new();
        rows.push(
            row(&store, "services(first page of 50)", || async {
                assert_eq!(store.services(None, PAGE).await.unwrap().len(), PAGE);
            })
            .await,
        );
        rows.push(
            row(&store, "services(50 after the middle)", || async {
                store.services(Some(&middle), PAGE).await.unwrap();
            })
            .await,
        );
        rows.push(
            row(&store, "latest() of one service", || async {
                store.latest(&middle).await.unwrap().unwrap();
            })
            .await,
        );
        rows.push(
            row(&store, "halts(all)", || async {
                store.halt_store().unwrap().halts(None).await.unwrap();
            })
            .await,
        );
        rows.push(
            row(
                &store,
                "services page: 50 names + 50 latest + halts",
                || async {
                    assert_eq!(services_page(&store, Some(&middle)).await, PAGE);
                },
            )
            .await,
        );
        rows.push(
            row(&store, "history(one service, page of 20)", || async {
                store.history(&middle, &page_20).await.unwrap();
            })
            .await,
        );
        rows.push(
            row(&store, "load() of the first service's newest", || async {
                store.load(&of_first).await.unwrap();
            })
            .await,
        );
        rows.push(
            row(&store, "load() of the last service's newest", || async {
                store.load(&of_last).await.unwrap();
            })
            .await,
        );
        rows.push(
            row(
                &store,
                "deployment page: load (last) + commands",
                || async {
                    store.load(&of_last).await.unwrap();
                    store.commands(&of_last).await.unwrap();
                },
            )
            .await,
        );
        print(&built, &rows);
    });
}
