//! The connection pool, and the one way statements are sent: prepared once per connection,
//! counted, their errors mapped, retried whole when they failed for a passing reason.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use immutable_core::{Result, RetryPolicy};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::{self, Doing};
use crate::sql::Sql;

/// A statement's parameters.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// What the store has sent, since it was built (shared by its clones): the cost of each
/// operation, made visible to tests and monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresStoreStats {
    /// Statements executed (each attempt of a retried one), but the polls.
    pub statements: u64,
    /// Rows the statements returned, but the polls'.
    pub rows_read: u64,
    /// Rows they inserted, updated or deleted.
    pub rows_written: u64,
    /// Reads of a deployment's commands and of a service's halts: a runner makes one of each
    /// per poll interval, so this follows a deployment's duration, not the history behind it.
    pub polls: u64,
    /// Attempts that failed for a passing reason and were made again.
    pub retries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    statements: AtomicU64,
    rows_read: AtomicU64,
    rows_written: AtomicU64,
    polls: AtomicU64,
    retries: AtomicU64,
}

/// Whether a read is a poll, counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    Read,
    Poll,
}

/// The pool, the statements of the schema, the counters and the retry policy.
#[derive(Debug)]
pub(crate) struct Db {
    pool: Pool,
    pub(crate) schema: String,
    /// The schema as an SQL identifier.
    pub(crate) quoted: String,
    pub(crate) sql: Sql,
    pub(crate) retry: RetryPolicy,
    counters: Counters,
}

impl Db {
    pub(crate) fn new(
        pg: tokio_postgres::Config,
        schema: String,
        pool_size: usize,
        retry: RetryPolicy,
    ) -> Result<Db> {
        // Fast recycling: a connection found closed is dropped; a broken one that looks open
        // fails its next statement, which is retried on a fresh one.
        let manager = Manager::from_config(
            pg,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| immutable_core::Error::store(format!("the connection pool: {e}"), None))?;
        let quoted = format!("\"{schema}\"");
        Ok(Db {
            pool,
            sql: Sql::new(&quoted),
            schema,
            quoted,
            retry,
            counters: Counters::default(),
        })
    }

    pub(crate) fn stats(&self) -> PostgresStoreStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PostgresStoreStats {
            statements: get(&c.statements),
            rows_read: get(&c.rows_read),
            rows_written: get(&c.rows_written),
            polls: get(&c.polls),
            retries: get(&c.retries),
        }
    }

    pub(crate) fn doing<'a>(
        &'a self,
        operation: &'static str,
        kind: immutable_core::ResourceKind,
        id: &'a str,
    ) -> Doing<'a> {
        Doing {
            operation,
            kind,
            id,
            schema: &self.schema,
        }
    }

    /// A connection from the pool.
    pub(crate) async fn client(&self, doing: &Doing<'_>) -> Result<Object> {
        self.pool.get().await.map_err(|e| error::pool(e, doing))
    }

    /// Sends `sql` once and returns its rows.
    pub(crate) async fn query(
        &self,
        sql: &str,
        params: Params<'_>,
        count: Count,
        doing: &Doing<'_>,
    ) -> Result<Vec<Row>> {
        let client = self.client(doing).await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| error::db(e, doing))?;
        let result = client.query(&statement, params).await;
        let c = &self.counters;
        match count {
            Count::Read => c.statements.fetch_add(1, Ordering::Relaxed),
            Count::Poll => c.polls.fetch_add(1, Ordering::Relaxed),
        };
        let rows = result.map_err(|e| error::db(e, doing))?;
        if count == Count::Read {
            c.rows_read.fetch_add(rows.len() as u64, Ordering::Relaxed);
        }
        Ok(rows)
    }

    /// What a conditional save that changed no row finds, by `state` (a statement returning
    /// the stored version and whether the stored body is `params`' body): `None` when the
    /// save was `retried` and its earlier attempt had been committed all the same (the row
    /// is ours, at `new`), else `Some` of the stored version (`None` inside: no row).
    pub(crate) async fn unwritten(
        &self,
        state: &str,
        params: Params<'_>,
        new: i64,
        retried: bool,
        doing: &Doing<'_>,
    ) -> Result<Option<Option<u64>>> {
        let rows = self.query(state, params, Count::Read, doing).await?;
        let stored = rows
            .first()
            .map(|r| (r.get::<_, i64>(0), r.get::<_, bool>(1)));
        if retried && stored == Some((new, true)) {
            return Ok(None);
        }
        Ok(Some(
            stored.map(|(v, _)| u64::try_from(v).unwrap_or_default()),
        ))
    }

    /// Sends a statement that writes once, and returns how many rows it wrote.
    pub(crate) async fn execute(
        &self,
        sql: &str,
        params: Params<'_>,
        doing: &Doing<'_>,
    ) -> Result<u64> {
        let client = self.client(doing).await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| error::db(e, doing))?;
        let result = client.execute(&statement, params).await;
        self.counters.statements.fetch_add(1, Ordering::Relaxed);
        let n = result.map_err(|e| error::db(e, doing))?;
        self.counters.rows_written.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }

    /// Sends a statement that writes and returns rows (`RETURNING`, or a count).
    pub(crate) async fn write_returning(
        &self,
        sql: &str,
        params: Params<'_>,
        doing: &Doing<'_>,
    ) -> Result<Vec<Row>> {
        let rows = self.query(sql, params, Count::Read, doing).await?;
        self.counters
            .rows_written
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        Ok(rows)
    }

    /// Runs `op` until it succeeds, fails for a reason that is not passing, or runs out of
    /// attempts. `op` learns whether an earlier attempt failed: a write that failed with its
    /// connection may have been committed all the same, and its next attempt says so.
    pub(crate) async fn retrying<T, F, Fut>(&self, doing: &Doing<'_>, mut op: F) -> Result<T>
    where
        F: FnMut(bool) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match op(attempt > 1).await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < self.retry.max_attempts && e.is_retryable() => {
                    let wait = self.retry.backoff(attempt);
                    tracing::debug!(%doing, attempt, error = %e, ?wait, "retrying");
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A time as nanoseconds since the Unix epoch (negative before it, saturating).
pub(crate) fn nanos(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// The time `nanos` after the Unix epoch.
pub(crate) fn time(nanos: i64) -> std::time::SystemTime {
    let magnitude = std::time::Duration::from_nanos(nanos.unsigned_abs());
    if nanos >= 0 {
        std::time::UNIX_EPOCH + magnitude
    } else {
        std::time::UNIX_EPOCH - magnitude
    }
}
