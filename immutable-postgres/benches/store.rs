//! The PostgreSQL store on a private local cluster (immutable-testkit's `postgres`): the time of
//! each store operation a deployment makes, and of a whole deployment on instant mock
//! backends, with 10 and with 100,000 records behind it. Prints a table.
//!
//! `cargo bench -p immutable-postgres --bench store` (needs Debian's postgresql).
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant, SystemTime};

use immutable_core::conformance::{finished_records, sample_record};
use immutable_core::{
    DeploymentRequest, Engine, ImageRef, Page, Phase, Retention, ServiceName, Settings, StateStore,
};
use immutable_mock::{MockCloud, Timings};
use immutable_postgres::PostgresStore;
use immutable_testkit::postgres::Postgres;

/// Repetitions of each store operation, and deployments timed.
const OPS: u32 = 300;
const DEPLOYS: u32 = 20;

/// A migrated store with `n` finished records of web behind it (and `n / 10` of billing).
async fn store_with(pg: &Postgres, n: usize) -> PostgresStore {
    let builder = PostgresStore::builder(&pg.url_with_password())
        .unwrap()
        .with_schema(pg.schema("bench"))
        .unwrap()
        .with_retention(Retention::keep_all());
    builder.clone().build().unwrap().migrate().await.unwrap();
    let store = builder.open().await.unwrap();
    for (service, count) in [("web", n), ("billing", n / 10)] {
        let records = finished_records(service, count);
        store.import(&records).await.unwrap();
    }
    store
}

/// The mean time of `f` over `n` runs, in microseconds.
async fn mean<F, Fut>(n: u32, mut f: F) -> f64
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    for i in 0..n {
        f(i).await;
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

/// Each operation's mean time (µs) on `store`.
async fn operations(store: &PostgresStore) -> Vec<(&'static str, f64)> {
    let web = ServiceName::new("web").unwrap();
    let mut record = sample_record("web");
    store.save(&mut record).await.unwrap();
    let id = record.id.clone();
    let mut rows = Vec::new();
    let start = Instant::now();
    for _ in 0..OPS {
        store.save(&mut record).await.unwrap();
    }
    let per_save = start.elapsed().as_secs_f64() * 1e6 / f64::from(OPS);
    rows.push(("save (conditional update)", per_save));
    rows.push((
        "save (first: record + count)",
        mean(OPS, |_| async {
            store.save(&mut sample_record("web")).await.unwrap();
        })
        .await,
    ));
    rows.push((
        "load",
        mean(OPS, |_| async {
            store.load(&id).await.unwrap();
        })
        .await,
    ));
    rows.push((
        "latest",
        mean(OPS, |_| async {
            store.latest(&web).await.unwrap();
        })
        .await,
    ));
    // The first saves above left unfinished records of web: close them, so `unfinished`
    // reads what a deployment's path finds (none but the one under way).
    for mut r in store.unfinished(Some(&web)).await.unwrap() {
        r.phase = Phase::Done;
        store.save(&mut r).await.unwrap();
    }
    let mut open = sample_record("web");
    store.save(&mut open).await.unwrap();
    rows.push((
        "unfinished (of all services)",
        mean(OPS, |_| async {
            assert_eq!(store.unfinished(None).await.unwrap().len(), 1);
        })
        .await,
    ));
    rows.push((
        "history page (20)",
        mean(OPS, |_| async {
            store
                .history(&web, &Page::first(20).unwrap())
                .await
                .unwrap();
        })
        .await,
    ));
    let ttl = Duration::from_secs(60);
    let open_id = &open.id;
    rows.push((
        "acquire lease",
        mean(OPS, |i| async move {
            let service = ServiceName::new(format!("svc{i}")).unwrap();
            store
                .acquire_lease(&service, open_id, "bench", ttl, SystemTime::now())
                .await
                .unwrap();
        })
        .await,
    ));
    let held = store
        .acquire_lease(&web, &open.id, "bench", ttl, SystemTime::now())
        .await
        .unwrap()
        .lease;
    rows.push((
        "renew lease",
        mean(OPS, |_| async {
            store
                .renew_lease(&held, ttl, SystemTime::now())
                .await
                .unwrap();
        })
        .await,
    ));
    store.release_lease(&held).await.unwrap();
    open.phase = Phase::Done;
    store.save(&mut open).await.unwrap();
    rows
}

/// The mean time of a v(n) -> v(n+1) blue-green deployment on instant mock backends (ms).
async fn deployment(store: &PostgresStore) -> f64 {
    let cloud = MockCloud::with_timings(Timings::instant());
    for i in 0..=DEPLOYS {
        cloud.add_image("web", &format!("web-v{i}"));
    }
    let engine = Engine::builder()
        .backends(cloud.backends())
        .store(store.clone())
        .settings(
            Settings::default()
                .with_poll_interval(Duration::from_millis(1))
                .with_keep_images(100),
        )
        .build()
        .unwrap();
    let request = |i: u32| {
        DeploymentRequest::new("web", ImageRef::name(format!("web-v{i}")))
            .capacity(2)
            .bake_time(Duration::ZERO)
    };
    assert!(engine.deploy(request(0)).await.unwrap().succeeded());
    mean(DEPLOYS, |i| {
        let engine = engine.clone();
        async move { assert!(engine.deploy(request(i + 1)).await.unwrap().succeeded()) }
    })
    .await
        / 1000.0
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pg = Postgres::start();
        let mut table = Vec::new();
        for n in [10, 100_000] {
            let store = store_with(&pg, n).await;
            let before = store.stats();
            let ops = operations(&store).await;
            let per_deploy = deployment(&store).await;
            let sent = store.stats().statements - before.statements;
            table.push((n, ops, per_deploy, sent));
        }
        println!("\nPostgreSQL store, local cluster (µs per operation, mean of {OPS})");
        println!(
            "{:30} {:>14} {:>16}",
            "operation", "10 records", "100,000 records"
        );
        for (i, (name, small)) in table[0].1.iter().enumerate() {
            let large = table[1].1[i].1;
            println!("{name:30} {small:>14.0} {large:>16.0}");
        }
        println!(
            "{:30} {:>11.2} ms {:>13.2} ms",
            "deployment (mock backends)", table[0].2, table[1].2
        );
    });
}
