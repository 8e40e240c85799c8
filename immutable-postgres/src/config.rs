//! [`PostgresStoreBuilder`]: where the database is, whose password opens it, which schema
//! holds the journal, and how the store retries and keeps records.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use immutable_core::{Error, Result, Retention, RetryPolicy};
use tokio_postgres::config::{Host, SslMode};

use crate::url::{Redacted, split_params};

/// The schema the store's tables live in unless [`PostgresStoreBuilder::with_schema`] names
/// another.
pub const DEFAULT_SCHEMA: &str = "immutable";

/// The connections a store keeps open at most unless [`PostgresStoreBuilder::with_pool_size`]
/// says otherwise: a deployment makes one call at a time, and a few run beside it (a lease
/// renewal, a command poll).
pub const DEFAULT_POOL_SIZE: usize = 4;

/// How long a connection may take to open, unless the URL's `connect_timeout` says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The retries of a store call that failed for a passing reason (a dropped connection, a
/// server restarting, a serialization failure): 8 attempts, backoff from 100 ms to 5 s, about
/// 6 to 11 s in all, which covers a server's restart.
pub fn default_retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(8)
        .with_backoff(Duration::from_millis(100), Duration::from_secs(5))
}

/// How to reach the database and keep the journal: made by
/// [`PostgresStore::builder`](crate::PostgresStore::builder) from a `postgres://` URL, then
/// [`open`](Self::open)ed (or [`build`](Self::build) without connecting, to
/// [`migrate`](crate::PostgresStore::migrate) first).
///
/// # Credentials
/// The password comes from, in this order (as `libpq` reads it): the URL
/// (`postgres://user:password@host/db`), [`with_password`](Self::with_password), the
/// `PGPASSWORD` environment variable, then a password file in the `~/.pgpass` format
/// (`host:port:database:user:password` lines, `*` matching anything): the URL's `passfile`
/// parameter, [`with_passfile`](Self::with_passfile), the `PGPASSFILE` environment variable,
/// or `~/.pgpass`. A password file readable by group or others is refused. No password at
/// all is fine for a server that trusts the connection.
///
/// The password is never shown: `Debug` of the builder and of the store redacts it, and
/// [`Display`](fmt::Display) (what every message of the store names) leaves it out.
#[derive(Clone)]
pub struct PostgresStoreBuilder {
    pub(crate) pg: tokio_postgres::Config,
    passfile: Option<PathBuf>,
    pub(crate) schema: String,
    pub(crate) pool_size: usize,
    pub(crate) retention: Retention,
    pub(crate) retry: RetryPolicy,
}

impl fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // tokio-postgres's `Config` prints its password as `_`.
        f.debug_struct("PostgresStoreBuilder")
            .field("pg", &self.pg)
            .field("passfile", &self.passfile)
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("retention", &self.retention)
            .field("retry", &self.retry)
            .finish()
    }
}

impl fmt::Display for PostgresStoreBuilder {
    /// `postgres://user@host:port/database`, and the schema when it is not the default: never
    /// the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Redacted(&self.pg))?;
        if self.schema != DEFAULT_SCHEMA {
            write!(f, " (schema {})", self.schema)?;
        }
        Ok(())
    }
}

impl PostgresStoreBuilder {
    /// A builder for the database `url` names: `postgres://user[:password]@host[:port]/database`
    /// (or `postgresql://`), with the parameters tokio-postgres takes (`connect_timeout`,
    /// `application_name`, `sslmode=disable` or `prefer`, ...), `passfile` (a password file)
    /// and `schema` (as [`with_schema`](Self::with_schema)).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `url` (its password left out) when it is not such a URL,
    /// names no user, host or database, or asks for TLS (`sslmode=require`), which this build
    /// does not speak; naming `schema` for a bad schema.
    pub(crate) fn from_url(url: &str) -> Result<Self> {
        let shown = crate::url::redact(url);
        let invalid = |reason: String| Error::invalid("url", format!("{shown}: {reason}"));
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid(
                "expected postgres://user@host:port/database".into(),
            ));
        }
        let (rest, own) = split_params(url).map_err(invalid)?;
        let mut pg: tokio_postgres::Config = rest.parse().map_err(|e| Error::InvalidInput {
            field: "url".into(),
            reason: format!("{shown}: {e}"),
            source: Some(Box::new(e)),
        })?;
        if pg.get_user().is_none() {
            return Err(invalid(
                "names no user: write postgres://USER@host/database".into(),
            ));
        }
        if pg.get_dbname().is_none() {
            return Err(invalid(
                "names no database: write postgres://user@host/DATABASE".into(),
            ));
        }
        if pg.get_hosts().is_empty() {
            return Err(invalid(
                "names no host: write postgres://user@HOST/database".into(),
            ));
        }
        if pg.get_ssl_mode() == SslMode::Require {
            return Err(invalid(
                "asks for TLS (sslmode=require), which this build does not speak: reach the \
                 server over a trusted network or a tunnel, with sslmode=disable or prefer"
                    .into(),
            ));
        }
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if pg.get_application_name().is_none() {
            pg.application_name("immutable");
        }
        let builder = PostgresStoreBuilder {
            pg,
            passfile: own.passfile,
            schema: DEFAULT_SCHEMA.into(),
            pool_size: DEFAULT_POOL_SIZE,
            retention: Retention::default(),
            retry: default_retry(),
        };
        match own.schema {
            Some(schema) => builder.with_schema(schema),
            None => Ok(builder),
        }
    }

    /// Uses `password` unless the URL holds one.
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        if self.pg.get_password().is_none() {
            self.pg.password(password.into());
        }
        self
    }

    /// Reads the password from `path` (the `~/.pgpass` format) unless the URL names a
    /// password file itself.
    pub fn with_passfile(mut self, path: impl Into<PathBuf>) -> Self {
        self.passfile.get_or_insert(path.into());
        self
    }

    /// Keeps the tables in `schema` (a lowercase SQL identifier: letters, digits and `_`, 1 to
    /// 63 long, starting with a letter or `_`) instead of [`DEFAULT_SCHEMA`]: several
    /// journals in one database, one per schema.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `schema`.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Result<Self> {
        let schema = schema.into();
        let ok = (1..=63).contains(&schema.len())
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !schema.starts_with(|c: char| c.is_ascii_digit())
            && !schema.starts_with("pg_");
        if !ok {
            return Err(Error::invalid(
                "schema",
                format!(
                    "{schema:?} is not a schema this store uses: 1 to 63 lowercase letters, \
                     digits and '_', starting with a letter or '_', not `pg_`"
                ),
            ));
        }
        self.schema = schema;
        Ok(self)
    }

    /// Keeps at most `size` connections open (at least 1; [`DEFAULT_POOL_SIZE`] otherwise).
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Keeps records as `retention` says ([`Retention::default`] otherwise).
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Retries calls that fail for a passing reason under `retry` ([`default_retry`]
    /// otherwise; [`RetryPolicy::none`] reports the first failure).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Names the store's connections `name` on the server (`pg_stat_activity`), unless the
    /// URL's `application_name` does; `immutable` otherwise.
    pub fn with_application_name(mut self, name: impl Into<String>) -> Self {
        self.pg.application_name(name.into());
        self
    }

    /// The password's sources, applied: the URL's or the one given, else `PGPASSWORD`, else
    /// a password file's matching line.
    fn resolve_password(&mut self) -> Result<()> {
        if self.pg.get_password().is_some() {
            return Ok(());
        }
        if let Some(p) = std::env::var_os("PGPASSWORD") {
            self.pg.password(p.to_string_lossy().into_owned());
            return Ok(());
        }
        let (path, named) = match self.passfile.clone() {
            Some(p) => (p, true),
            None => match std::env::var_os("PGPASSFILE") {
                Some(p) => (PathBuf::from(p), true),
                None => match std::env::var_os("HOME") {
                    Some(home) => (PathBuf::from(home).join(".pgpass"), false),
                    None => return Ok(()),
                },
            },
        };
        let host = match self.pg.get_hosts().first() {
            Some(Host::Tcp(name)) => name.clone(),
            _ => "localhost".to_owned(),
        };
        let port = self.pg.get_ports().first().copied().unwrap_or(5432);
        let key = crate::passfile::Key {
            host: &host,
            port,
            database: self.pg.get_dbname().unwrap_or_default(),
            user: self.pg.get_user().unwrap_or_default(),
        };
        if let Some(password) = crate::passfile::lookup(&path, &key, named)? {
            self.pg.password(password);
        }
        Ok(())
    }

    /// The store, with its connections opened as they are needed: nothing is read yet, so
    /// a store whose schema is not migrated can be [`migrate`](crate::PostgresStore::migrate)d.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `passfile` for a password file that cannot be read or
    /// is readable by group or others.
    pub fn build(mut self) -> Result<crate::PostgresStore> {
        self.resolve_password()?;
        crate::PostgresStore::from_builder(self)
    }

    /// [`build`](Self::build), then checks that the schema is migrated to this version.
    ///
    /// # Errors
    /// [`build`](Self::build)'s, the connection's (retryable while the server is away), and
    /// [`Error::Store`] whose source is a [`SchemaError`](crate::SchemaError) when the schema
    /// is not migrated (run `immutable store migrate`, or
    /// [`migrate`](crate::PostgresStore::migrate)) or was migrated by a newer version.
    pub async fn open(self) -> Result<crate::PostgresStore> {
        let store = self.build()?;
        store.check_schema().await?;
        Ok(store)
    }
}
