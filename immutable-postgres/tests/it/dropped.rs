//! Connections lost in the middle of a write: the store's session killed while its statement
//! waits (`pg_terminate_backend`), and the server restarted (`pg_ctl restart -m fast`) or
//! stopped. A write is retried and then written once, or reported as retryable; never is a
//! record left half-written (a record without its service's count, a count without its
//! record, or a version skipped).

use std::time::Duration;

use immutable_core::conformance::sample_record;
use immutable_core::{DeploymentRecord, Phase, RetryPolicy, StateStore};
use immutable_postgres::PostgresStore;
use immutable_testkit::postgres::Postgres;
use tokio_postgres::Client;

use crate::common::{builder, migrated, pg};

/// Waits until a session of `app` waits for a lock, and returns its process id.
async fn waiting_session(admin: &Client, app: &str) -> i32 {
    for _ in 0..500 {
        let rows = admin
            .query(
                "SELECT pid FROM pg_stat_activity
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&app],
            )
            .await
            .unwrap();
        if let Some(row) = rows.first() {
            return row.get(0);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no session of {app} ever waited for the lock");
}

/// Saves a record of `web`, locks its row in `locker`'s open transaction, and starts the
/// next save of it, which waits for the lock: the write a test then cuts.
async fn save_behind_a_lock(
    store: &PostgresStore,
    locker: &Client,
    schema: &str,
) -> (
    DeploymentRecord,
    tokio::task::JoinHandle<immutable_core::Result<DeploymentRecord>>,
) {
    let mut record = sample_record("web");
    store.save(&mut record).await.unwrap();
    locker.batch_execute("BEGIN").await.unwrap();
    locker
        .execute(
            &format!("SELECT 1 FROM \"{schema}\".deployments WHERE id = $1 FOR UPDATE"),
            &[&record.id.as_str()],
        )
        .await
        .unwrap();
    let mut next = record.clone();
    next.phase = Phase::Attach;
    let saving = tokio::spawn({
        let store = store.clone();
        async move { store.save(&mut next).await.map(|()| next) }
    });
    (record, saving)
}

/// The service's record count as the store keeps it.
async fn count(admin: &Client, schema: &str) -> i64 {
    admin
        .query_opt(
            &format!("SELECT records FROM \"{schema}\".services WHERE name = 'web'"),
            &[],
        )
        .await
        .unwrap()
        .map_or(0, |r| r.get(0))
}

async fn stored(admin: &Client, schema: &str, record: &DeploymentRecord) -> Vec<i64> {
    admin
        .query(
            &format!("SELECT version FROM \"{schema}\".deployments WHERE id = $1"),
            &[&record.id.as_str()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_killed_mid_write_is_retried_and_the_record_written_once() {
    let app = pg().schema("killed");
    let store = migrated(builder("killed").with_application_name(&app)).await;
    let schema = store.schema().to_owned();
    let (locker, admin) = (pg().admin().await, pg().admin().await);

    // A later save, its row locked by another session: killed while it waits, retried.
    let (record, saving) = save_behind_a_lock(&store, &locker, &schema).await;
    let pid = waiting_session(&admin, &app).await;
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    // The retry waits for the same lock: the killed attempt left nothing behind.
    waiting_session(&admin, &app).await;
    assert_eq!(stored(&admin, &schema, &record).await, [1]);
    locker.batch_execute("COMMIT").await.unwrap();
    let saved = saving.await.unwrap().unwrap();
    assert_eq!(saved.version, 2);
    assert_eq!(store.load(&record.id).await.unwrap(), saved);
    assert!(store.stats().retries >= 1, "{:?}", store.stats());

    // A first save writes the record and its service's count in one statement: the count's
    // row locked, the session killed after the record's insert, neither is left.
    locker.batch_execute("BEGIN").await.unwrap();
    locker
        .execute(
            &format!("SELECT 1 FROM \"{schema}\".services WHERE name = 'web' FOR UPDATE"),
            &[],
        )
        .await
        .unwrap();
    let mut first = sample_record("web");
    let saving = tokio::spawn({
        let store = store.clone();
        async move { store.save(&mut first).await.map(|()| first) }
    });
    let pid = waiting_session(&admin, &app).await;
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    waiting_session(&admin, &app).await;
    assert_eq!(
        count(&admin, &schema).await,
        1,
        "the count of the first record alone"
    );
    locker.batch_execute("COMMIT").await.unwrap();
    let first = saving.await.unwrap().unwrap();
    assert_eq!(stored(&admin, &schema, &first).await, [1]);
    assert_eq!(
        count(&admin, &schema).await,
        2,
        "two records, counted once each"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_cut_by_a_server_restart_is_retried_and_one_cut_by_a_long_outage_is_reported() {
    // A cluster of this test's own: the others go on meanwhile.
    let own = Postgres::start();
    let url = own.url_with_password();
    let store = migrated(
        PostgresStore::builder(&url)
            .unwrap()
            .with_application_name("restart"),
    )
    .await;
    let schema = store.schema().to_owned();
    let locker = own.admin().await;
    let (record, saving) = save_behind_a_lock(&store, &locker, &schema).await;
    waiting_session(&own.admin().await, "restart").await;
    // Fast shutdown ends every session (the lock's holder rolls back), then the server
    // starts again; the save's attempts fail until it answers.
    let own = tokio::task::spawn_blocking(move || {
        own.restart();
        own
    })
    .await
    .unwrap();
    let saved = saving.await.unwrap().unwrap();
    assert_eq!(saved.version, 2);
    assert_eq!(store.load(&record.id).await.unwrap(), saved);
    assert!(store.stats().retries >= 1);

    // Down for longer than the retries: reported as retryable, and the record is as it was.
    let impatient = PostgresStore::builder(&url)
        .unwrap()
        .with_retry(
            RetryPolicy::default()
                .with_max_attempts(3)
                .with_backoff(Duration::from_millis(20), Duration::from_millis(50)),
        )
        .open()
        .await
        .unwrap();
    let own = tokio::task::spawn_blocking(move || {
        own.stop();
        own
    })
    .await
    .unwrap();
    let mut later = saved.clone();
    later.phase = Phase::AwaitHealthy;
    let e = impatient.save(&mut later).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(
        later.version, 2,
        "a failed save leaves the copy's version alone"
    );
    let _own = tokio::task::spawn_blocking(move || {
        own.start_again();
        own
    })
    .await
    .unwrap();
    assert_eq!(store.load(&record.id).await.unwrap(), saved);
    impatient.save(&mut later).await.unwrap();
    assert_eq!(store.load(&record.id).await.unwrap(), later);
}
