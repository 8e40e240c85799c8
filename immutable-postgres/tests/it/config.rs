//! The schema's versions (refused until migrated, migrated once however many migrate at
//! once, a newer schema refused) and the credentials (from the URL or a password file, never
//! shown, a wrong one saying what to check).

use immutable_core::{Error, ServiceName, StateStore};
use immutable_postgres::{PostgresStore, SchemaError, schema};

use crate::common::{builder, pg, store};

fn schema_error(e: &Error) -> Option<&SchemaError> {
    std::error::Error::source(e).and_then(|s| s.downcast_ref::<SchemaError>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_schema_is_not_migrated_is_refused_saying_to_migrate() {
    let b = builder("unmigrated");
    let e = b.clone().open().await.unwrap_err();
    assert!(
        matches!(
            schema_error(&e),
            Some(SchemaError::NotMigrated {
                found: 0,
                needed: schema::LATEST,
                ..
            })
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("immutable store migrate"), "{e}");
    assert!(!e.is_retryable());
    // A store built without the check says the same at its first call.
    let unchecked = b.clone().build().unwrap();
    let web = ServiceName::new("web").unwrap();
    let e = unchecked.latest(&web).await.unwrap_err();
    assert!(
        matches!(schema_error(&e), Some(SchemaError::NotMigrated { .. })),
        "{e:?}"
    );

    let done = unchecked.migrate().await.unwrap();
    assert_eq!((done.from, done.to), (0, schema::LATEST));
    assert_eq!(done.applied.len(), schema::LATEST as usize);
    let again = unchecked.migrate().await.unwrap();
    assert!(again.applied.is_empty(), "a second migrate applies nothing");
    let store = b.open().await.unwrap();
    assert_eq!(store.latest(&web).await.unwrap(), None);
    assert_eq!(store.schema_version().await.unwrap(), schema::LATEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_migrating_at_once_apply_each_migration_once() {
    let b = builder("concurrent");
    let stores: Vec<PostgresStore> = (0..4).map(|_| b.clone().build().unwrap()).collect();
    let runs = stores.iter().map(|s| s.migrate());
    let results = futures::future::join_all(runs).await;
    let applied: usize = results.into_iter().map(|r| r.unwrap().applied.len()).sum();
    assert_eq!(
        applied,
        schema::LATEST as usize,
        "each migration applied once"
    );
    b.open().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_migrated_by_a_newer_version_is_refused() {
    let store = store("newer").await;
    let admin = pg().admin().await;
    admin
        .execute(
            &format!(
                "INSERT INTO \"{}\".schema_migrations (version, name) VALUES (99, 'future')",
                store.schema()
            ),
            &[],
        )
        .await
        .unwrap();
    let e = store.check_schema().await.unwrap_err();
    assert!(
        matches!(
            schema_error(&e),
            Some(SchemaError::TooNew { found: 99, .. })
        ),
        "{e:?}"
    );
    let e = store.migrate().await.unwrap_err();
    assert!(
        matches!(schema_error(&e), Some(SchemaError::TooNew { .. })),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_file_opens_the_store_and_no_password_is_ever_shown() {
    use std::os::unix::fs::PermissionsExt;
    let pg = pg();
    let secret = pg.password();
    let dir = tempfile::tempdir().unwrap();
    let passfile = dir.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!(
            "# the test cluster\n127.0.0.1:{}:immutable:immutable:{secret}\n",
            pg.port()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let schema = pg.schema("passfile");
    let url = format!("{}?passfile={}", pg.url(), passfile.display());
    let b = PostgresStore::builder(&url)
        .unwrap()
        .with_schema(&schema)
        .unwrap();
    let store = b.clone().build().unwrap();
    store.migrate().await.unwrap();
    let store = b.open().await.unwrap();

    let with_password = PostgresStore::builder(&pg.url_with_password()).unwrap();
    for shown in [
        format!("{store:?}"),
        store.to_string(),
        format!("{with_password:?}"),
        with_password.to_string(),
    ] {
        assert!(!shown.contains(secret), "the password shown in {shown}");
    }
    assert!(
        store
            .to_string()
            .contains(&format!("127.0.0.1:{}", pg.port()))
    );

    // A wrong password: refused, saying what to check, not retried, the password not shown.
    let wrong = format!(
        "postgres://immutable:not-{secret}@127.0.0.1:{}/immutable",
        pg.port()
    );
    let e = PostgresStore::builder(&wrong)
        .unwrap()
        .with_schema(&schema)
        .unwrap()
        .open()
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("check the user and the password"),
        "{e}"
    );
    assert!(!e.is_retryable(), "{e:?}");
    assert!(!format!("{e:?}").contains(secret));

    // A URL that does not parse names `url`, and shows no password either.
    let e = PostgresStore::builder(&format!(
        "postgres://immutable:{secret}@127.0.0.1:notaport/db"
    ))
    .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidInput { field, .. } if field == "url"),
        "{e:?}"
    );
    assert!(!e.to_string().contains(secret), "{e}");
    assert!(e.to_string().contains("immutable:***@"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_answer_is_reported_as_retryable() {
    let port = immutable_testkit::postgres::free_port();
    let url = format!("postgres://immutable:x@127.0.0.1:{port}/immutable");
    let store = PostgresStore::builder(&url)
        .unwrap()
        .with_retry(immutable_core::RetryPolicy::none())
        .build()
        .unwrap();
    let e = store.check_schema().await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(matches!(e, Error::Transient { .. }), "{e:?}");
}
