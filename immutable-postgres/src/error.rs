//! PostgreSQL's errors mapped into the core's [`Error`] where they arise.
//!
//! A lost connection, a server shutting down or starting, a serialization failure, a
//! deadlock, a lock or a pool that timed out are retryable ([`Error::Transient`], or
//! [`Error::Throttled`] for "too many connections"); a missing table or schema is a
//! [`SchemaError`]; the server refusing the credentials, a missing database or a missing
//! privilege say what to fix. The driver's error is kept as the
//! [`source`](std::error::Error::source), and no message holds a password.

use immutable_core::{Error, ResourceKind};
use tokio_postgres::error::SqlState;

/// Why the schema cannot be used: the source of the [`Error::Store`] that
/// [`PostgresStore::open`](crate::PostgresStoreBuilder::open) (and any call on a store whose
/// tables are missing) returns. Downcast the source to tell it apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The schema is missing, or older than this version of the store.
    #[error(
        "the journal's schema `{schema}` is at version {found} and this store needs version \
         {needed}: run `immutable store migrate --store <url>` (or PostgresStore::migrate) once"
    )]
    NotMigrated {
        /// The schema.
        schema: String,
        /// Its version (0 when it does not exist).
        found: u32,
        /// The version this store needs.
        needed: u32,
    },
    /// The schema was migrated by a newer version of the store, which may have changed what
    /// this one reads and writes.
    #[error(
        "the journal's schema `{schema}` is at version {found}, newer than this store knows \
         ({known}): upgrade the program, or use a schema of its own"
    )]
    TooNew {
        /// The schema.
        schema: String,
        /// Its version.
        found: u32,
        /// The newest version this store knows.
        known: u32,
    },
}

impl From<SchemaError> for Error {
    fn from(e: SchemaError) -> Error {
        Error::store(e.to_string(), Some(Box::new(e) as immutable_core::BoxError))
    }
}

/// What a failed call was doing, for its error: `"save deployment 01j..."`.
pub(crate) struct Doing<'a> {
    pub(crate) operation: &'static str,
    pub(crate) kind: ResourceKind,
    pub(crate) id: &'a str,
    pub(crate) schema: &'a str,
}

impl std::fmt::Display for Doing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} `{}`", self.operation, self.kind, self.id)
    }
}

/// Maps a driver error.
pub(crate) fn db(e: tokio_postgres::Error, doing: &Doing<'_>) -> Error {
    let Some(code) = e.code().cloned() else {
        return connection(e, doing);
    };
    let message = e
        .as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_owned());
    let text = format!("{doing}: {message}");
    let class = &code.code()[..2];
    let error = if code == SqlState::UNIQUE_VIOLATION {
        Error::conflict(text)
    } else if code == SqlState::UNDEFINED_TABLE
        || code == SqlState::INVALID_SCHEMA_NAME
        || code == SqlState::UNDEFINED_COLUMN
    {
        return SchemaError::NotMigrated {
            schema: doing.schema.to_owned(),
            found: 0,
            needed: crate::schema::LATEST,
        }
        .into();
    } else if code == SqlState::TOO_MANY_CONNECTIONS || class == "53" {
        Error::throttled(text)
    } else if class == "08"
        || class == "40"
        || code == SqlState::ADMIN_SHUTDOWN
        || code == SqlState::CRASH_SHUTDOWN
        || code == SqlState::CANNOT_CONNECT_NOW
        || code == SqlState::QUERY_CANCELED
        || code == SqlState::LOCK_NOT_AVAILABLE
        || code == SqlState::READ_ONLY_SQL_TRANSACTION
    {
        // Serialization failures and deadlocks (class 40) are retried whole; a read-only
        // server is a standby that is being promoted, or one we should not write to.
        Error::transient(text)
    } else if class == "28" {
        Error::store(
            format!(
                "{text}: check the user and the password (the URL, PGPASSWORD or the password \
                 file)"
            ),
            None,
        )
    } else if code == SqlState::INVALID_CATALOG_NAME {
        Error::store(
            format!(
                "{text}: create the database first (createdb), then run `immutable store migrate`"
            ),
            None,
        )
    } else if code == SqlState::INSUFFICIENT_PRIVILEGE {
        Error::store(
            format!(
                "{text}: the user needs USAGE and CREATE on the schema and SELECT, INSERT, \
                 UPDATE, DELETE on its tables"
            ),
            None,
        )
    } else {
        Error::store(text, None)
    };
    error.with_source(e)
}

/// A driver error without a SQL state: the connection failed or closed (retryable), or a
/// row could not be read (not).
fn connection(e: tokio_postgres::Error, doing: &Doing<'_>) -> Error {
    let io = {
        let mut source = std::error::Error::source(&e);
        let mut found = false;
        while let Some(s) = source {
            found |= s.is::<std::io::Error>();
            source = s.source();
        }
        found
    };
    let text = format!("{doing}: {e}");
    let lost = io || e.is_closed() || text.contains("timeout") || text.contains("timed out");
    if lost {
        Error::Transient {
            message: format!("{text} (the connection to the server was lost or refused)"),
            source: Some(Box::new(e)),
        }
    } else {
        Error::store(text, Some(Box::new(e) as immutable_core::BoxError))
    }
}

/// Maps an error of the connection pool.
pub(crate) fn pool(e: deadpool_postgres::PoolError, doing: &Doing<'_>) -> Error {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => db(e, doing),
        PoolError::Timeout(kind) => Error::transient(format!(
            "{doing}: no connection to the server in time ({kind:?})"
        )),
        other => Error::store(
            format!("{doing}: {other}"),
            Some(Box::new(other) as immutable_core::BoxError),
        ),
    }
}

/// A stored body that does not parse: not retryable, naming the row.
pub(crate) fn unreadable(e: tokio_postgres::Error, doing: &Doing<'_>) -> Error {
    Error::store(
        format!("{doing}: a stored row cannot be read (written by another version?): {e}"),
        Some(Box::new(e) as immutable_core::BoxError),
    )
}
