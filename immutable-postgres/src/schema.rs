//! The schema's versions: each migration is SQL applied once, in order, in one transaction
//! with its row in `schema_migrations`, under an advisory lock so that two processes
//! migrating at once apply each migration once.
//!
//! # Layout (version 1)
//! | table | key | columns | indexes |
//! |---|---|---|---|
//! | `deployments` | `id` | `service`, `version`, `finished`, `body` (the record, jsonb) | `(service, id)`; `(service, id) WHERE NOT finished` |
//! | `services` | `name` | `records` (how many the service has) | |
//! | `leases` | `service` | `deployment`, `holder`, `expires_at` (ns since the epoch), and the lease a takeover replaced | |
//! | `commands` | `(deployment, id)` | `body` | |
//! | `halts` | `scope` ([`HaltScope::key`](immutable_core::HaltScope::key)) | `body` | |
//! | `waves` | `id` | `version`, `finished`, `body` | `(id) WHERE NOT finished` |
//!
//! Keys are `text COLLATE "C"`, so they sort bytewise, as ids and names sort in Rust.

use immutable_core::{ResourceKind, Result};

use crate::PostgresStore;
use crate::error::{Doing, SchemaError};

/// The version this store reads and writes.
pub const LATEST: u32 = 1;

/// The migrations, in order: version, name, SQL (with `{s}` for the quoted schema).
const MIGRATIONS: &[(u32, &str, &str)] = &[(1, "the journal", V1)];

const V1: &str = r#"
CREATE TABLE {s}.deployments (
    id text COLLATE "C" PRIMARY KEY,
    service text COLLATE "C" NOT NULL,
    version bigint NOT NULL,
    finished boolean NOT NULL,
    body jsonb NOT NULL
);
CREATE INDEX deployments_by_service ON {s}.deployments (service, id);
CREATE INDEX deployments_unfinished ON {s}.deployments (service, id) WHERE NOT finished;
CREATE TABLE {s}.services (
    name text COLLATE "C" PRIMARY KEY,
    records bigint NOT NULL
);
CREATE TABLE {s}.leases (
    service text COLLATE "C" PRIMARY KEY,
    deployment text NOT NULL,
    holder text NOT NULL,
    expires_at bigint NOT NULL,
    replaced_deployment text,
    replaced_holder text,
    replaced_expires_at bigint
);
CREATE TABLE {s}.commands (
    deployment text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (deployment, id)
);
CREATE TABLE {s}.halts (
    scope text COLLATE "C" PRIMARY KEY,
    body jsonb NOT NULL
);
CREATE TABLE {s}.waves (
    id text COLLATE "C" PRIMARY KEY,
    version bigint NOT NULL,
    finished boolean NOT NULL,
    body jsonb NOT NULL
);
CREATE INDEX waves_unfinished ON {s}.waves (id) WHERE NOT finished;
"#;

/// What [`PostgresStore::migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Migration {
    /// The schema's version before.
    pub from: u32,
    /// Its version now ([`LATEST`]).
    pub to: u32,
    /// The migrations applied, by version and name; empty when it was up to date.
    pub applied: Vec<(u32, &'static str)>,
}

impl PostgresStore {
    fn schema_doing(&self, operation: &'static str) -> Doing<'_> {
        Doing {
            operation,
            kind: ResourceKind::Deployment,
            id: &self.db.schema,
            schema: &self.db.schema,
        }
    }

    /// Creates the schema and its tables, or brings them to this version: every migration
    /// not applied yet, in order, in one transaction (all or none). Safe to run again, and
    /// from several processes at once (they take turns).
    ///
    /// Run it once per database and version, as `immutable store migrate` does, before
    /// runners [`open`](crate::PostgresStoreBuilder::open) the store; the database itself
    /// must exist (`createdb`), and the user must be allowed to create the schema in it.
    ///
    /// # Errors
    /// The connection's and the server's; [`SchemaError::TooNew`] (as the source of
    /// [`Error::Store`](immutable_core::Error::Store)) when a newer version migrated it.
    pub async fn migrate(&self) -> Result<Migration> {
        let doing = self.schema_doing("migrate the schema");
        let map = |e| crate::error::db(e, &doing);
        let mut client = self.db.client(&doing).await?;
        let tx = client.transaction().await.map_err(map)?;
        let s = &self.db.quoted;
        let lock_key = format!("immutable-migrate:{}", self.db.schema);
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&lock_key])
            .await
            .map_err(map)?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {s};
             CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
                 version integer PRIMARY KEY,
                 name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );"
        ))
        .await
        .map_err(map)?;
        let from = current(&*tx, s).await.map_err(map)?;
        if from > LATEST {
            return Err(self.too_new(from));
        }
        let mut applied = Vec::new();
        for (version, name, sql) in MIGRATIONS.iter().filter(|(v, ..)| *v > from) {
            tx.batch_execute(&sql.replace("{s}", s))
                .await
                .map_err(map)?;
            let insert =
                format!("INSERT INTO {s}.schema_migrations (version, name) VALUES ($1, $2)");
            tx.execute(&insert, &[&(*version as i32), name])
                .await
                .map_err(map)?;
            applied.push((*version, *name));
        }
        tx.commit().await.map_err(map)?;
        if !applied.is_empty() {
            tracing::info!(schema = %self.db.schema, from, to = LATEST, "migrated the journal's schema");
        }
        Ok(Migration {
            from,
            to: LATEST,
            applied,
        })
    }

    /// The schema's version as stored: 0 when it does not exist.
    ///
    /// # Errors
    /// The connection's and the server's.
    pub async fn schema_version(&self) -> Result<u32> {
        let doing = self.schema_doing("read the schema's version");
        let client = self.db.client(&doing).await?;
        let exists: bool = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&format!("{}.schema_migrations", self.db.quoted)],
            )
            .await
            .map_err(|e| crate::error::db(e, &doing))?
            .get(0);
        if !exists {
            return Ok(0);
        }
        current(&**client, &self.db.quoted)
            .await
            .map_err(|e| crate::error::db(e, &doing))
    }

    /// Checks that the schema is at this store's version, as
    /// [`open`](crate::PostgresStoreBuilder::open) does.
    ///
    /// # Errors
    /// [`Error::Store`](immutable_core::Error::Store) with a [`SchemaError`] as its source
    /// when it is not; the connection's and the server's.
    pub async fn check_schema(&self) -> Result<()> {
        let found = self
            .db
            .retry
            .run(|| self.schema_version(), |_, _, _| {})
            .await?;
        match found {
            LATEST => Ok(()),
            newer if newer > LATEST => Err(self.too_new(newer)),
            older => Err(SchemaError::NotMigrated {
                schema: self.db.schema.clone(),
                found: older,
                needed: LATEST,
            }
            .into()),
        }
    }

    fn too_new(&self, found: u32) -> immutable_core::Error {
        SchemaError::TooNew {
            schema: self.db.schema.clone(),
            found,
            known: LATEST,
        }
        .into()
    }
}

/// The newest version recorded in `schema_migrations`.
async fn current(
    client: &impl tokio_postgres::GenericClient,
    quoted: &str,
) -> std::result::Result<u32, tokio_postgres::Error> {
    let row = client
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {quoted}.schema_migrations"),
            &[],
        )
        .await?;
    Ok(u32::try_from(row.get::<_, i32>(0)).unwrap_or(0))
}
