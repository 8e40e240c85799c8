//! What the tests share: the cluster, and stores in schemas of their own.

use immutable_postgres::{PostgresStore, PostgresStoreBuilder};
pub(crate) use immutable_testkit::postgres::Postgres;

/// The cluster of this test binary.
pub(crate) fn pg() -> &'static Postgres {
    Postgres::shared()
}

/// A builder for a schema no other test uses, with the password in the URL.
pub(crate) fn builder(prefix: &str) -> PostgresStoreBuilder {
    let pg = pg();
    PostgresStore::builder(&pg.url_with_password())
        .unwrap()
        .with_schema(pg.schema(prefix))
        .unwrap()
}

/// A migrated store in a schema of its own.
pub(crate) async fn store(prefix: &str) -> PostgresStore {
    migrated(builder(prefix)).await
}

/// The store `builder` makes, migrated and opened.
pub(crate) async fn migrated(builder: PostgresStoreBuilder) -> PostgresStore {
    let store = builder.clone().build().unwrap();
    store.migrate().await.unwrap();
    builder.open().await.unwrap()
}
