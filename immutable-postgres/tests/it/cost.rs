//! A deployment costs the same with 10 records behind it or 100,000: a deploy, a rollback, a
//! gc and a resume send the same statements and read the same rows, as the store counts them
//! and as the server does (`pg_stat_statements`); and at 100,000 records no statement of a
//! deployment's path reads a whole table.

use std::collections::BTreeMap;
use std::time::Duration;

use immutable_core::conformance::finished_records;
use immutable_core::{
    DeploymentRequest, Engine, ImageRef, Retention, RollbackMode, ServiceName, Settings,
};
use immutable_mock::{MockCloud, Timings};
use immutable_postgres::{PostgresStore, PostgresStoreStats};

use crate::common::{builder, migrated, pg};

/// `n` finished records of `service` (a tenth rolled back), imported.
pub(crate) async fn history(store: &PostgresStore, service: &str, n: usize) {
    let records = finished_records(service, n);
    store.import(&records).await.unwrap();
}

/// What the server counted for the store's statements (but the polls): calls and rows.
async fn server_counts(schema: &str) -> (i64, i64) {
    let admin = pg().admin().await;
    let row = admin
        .query_one(
            "SELECT coalesce(sum(calls), 0)::bigint, coalesce(sum(rows), 0)::bigint
             FROM pg_stat_statements
             WHERE query LIKE '%' || $1 || '%'
               AND query NOT LIKE '%.commands WHERE deployment = $1 ORDER BY id%'
               AND query NOT LIKE '%.halts WHERE scope%'
               AND query NOT LIKE 'EXPLAIN%'",
            &[&format!("\"{schema}\"")],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// One operation's cost: the store's counts (statements, rows read, rows written) and the
/// server's (calls, rows).
type Cost = (&'static str, (u64, u64, u64), (i64, i64));

/// v1 serves; `n` records of web and `n / 10` of billing lie behind; then v2 is deployed,
/// rolled back, collected and resumed, each counted. Returns the costs and the store.
async fn costs_with(n: usize) -> (Vec<Cost>, PostgresStore) {
    let store = migrated(builder("cost").with_retention(Retention::keep_all())).await;
    let schema = store.schema().to_owned();
    let cloud = MockCloud::with_timings(Timings::instant());
    for v in ["web-v1", "web-v2"] {
        cloud.add_image("web", v);
    }
    // Real time, instant backends: a deployment takes milliseconds and its minute-long lease
    // is never renewed, so every count repeats exactly.
    let engine = Engine::builder()
        .backends(cloud.backends())
        .store(store.clone())
        .settings(Settings::default().with_poll_interval(Duration::from_millis(1)))
        .build()
        .unwrap();
    let request = |v: &str| {
        DeploymentRequest::new("web", ImageRef::name(v))
            .capacity(2)
            .bake_time(Duration::ZERO)
    };
    assert!(engine.deploy(request("web-v1")).await.unwrap().succeeded());
    history(&store, "web", n).await;
    history(&store, "billing", n / 10).await;

    let mut costs = Vec::new();
    let mut before = (store.stats(), server_counts(&schema).await);
    let mut measure = async |what: &'static str, costs: &mut Vec<Cost>| {
        let after = (store.stats(), server_counts(&schema).await);
        let (s0, s1): (PostgresStoreStats, PostgresStoreStats) = (before.0, after.0);
        costs.push((
            what,
            (
                s1.statements - s0.statements,
                s1.rows_read - s0.rows_read,
                s1.rows_written - s0.rows_written,
            ),
            (after.1.0 - before.1.0, after.1.1 - before.1.1),
        ));
        before = after;
    };
    assert!(engine.deploy(request("web-v2")).await.unwrap().succeeded());
    measure("deploy", &mut costs).await;
    engine
        .rollback_with("web", RollbackMode::Redeploy)
        .await
        .unwrap();
    measure("rollback", &mut costs).await;
    engine.gc("web").await.unwrap();
    measure("gc", &mut costs).await;
    assert!(engine.resume_unfinished().await.unwrap().is_empty());
    measure("resume_unfinished", &mut costs).await;
    (costs, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_sends_the_same_statements_with_10_or_100000_records_behind_it() {
    let (small, _) = costs_with(10).await;
    let (large, store) = costs_with(100_000).await;
    println!("(operation, store: (statements, rows read, rows written), server: (calls, rows))");
    for ((what, s, ss), (_, l, ls)) in small.iter().zip(&large) {
        println!("{what:18} 10 records: {s:?} {ss:?}   100,000: {l:?} {ls:?}");
    }
    assert_eq!(small, large, "a deployment's cost depends on the history");

    let web = ServiceName::new("web").unwrap();
    let total: i64 = pg()
        .admin()
        .await
        .query_one(
            &format!(
                "SELECT records FROM \"{}\".services WHERE name = 'web'",
                store.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(total > 100_000, "{total} records of web");
    let plans = store.query_plans(&web).await.unwrap();
    let scans: BTreeMap<_, _> = plans
        .iter()
        .filter(|p| p.scans_a_table())
        .map(|p| (p.statement, p.plan.clone()))
        .collect();
    assert!(
        scans.is_empty(),
        "statements that read a whole table: {scans:#?}"
    );
    for p in &plans {
        println!(
            "{:26} {}",
            p.statement,
            p.plan.lines().next().unwrap_or_default()
        );
    }
}
