//! [`PostgresStore`] and the store traits, each method handing over to the file of its
//! concern.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use immutable_core::{
    CommandRecord, DeploymentId, DeploymentRecord, Halt, HaltScope, HaltStore, HistoryPage, Lease,
    LeaseGrant, Page, ResourceKind, Result, Retention, ServiceName, StateStore, WaveId, WaveRecord,
    WaveStore,
};

use crate::PostgresStoreBuilder;
use crate::db::{Db, PostgresStoreStats};
use crate::url::Redacted;

/// Deployment records, service leases, commands, halts and wave plans in PostgreSQL, for
/// deploy runners and operators on many machines that share one database.
///
/// Clones share the connection pool and the counters.
///
/// # Layout
/// Tables in one schema ([`DEFAULT_SCHEMA`](crate::DEFAULT_SCHEMA) unless
/// [`with_schema`](PostgresStoreBuilder::with_schema) names another), created and upgraded by
/// [`migrate`](Self::migrate): see [`schema`](crate::schema) for the tables and indexes.
/// Records, commands, halts and wave plans are kept whole as `jsonb`, so a record type that
/// gains a field needs no migration.
///
/// # Cost of each operation
/// - [`save`](StateStore::save): one statement: a conditional `UPDATE` of the record (`WHERE
///   id = $1 AND version = $2`), or for a first save one `INSERT` of the record and its
///   service's count together. A refused save reads the stored version to say why. A save
///   that records a success also reads the service's count, and when the service holds more
///   than its [`Retention`] keeps, deletes up to 100 of its oldest finished records (and their
///   commands) in one statement.
/// - [`load`](StateStore::load): one read by primary key.
/// - [`latest`](StateStore::latest): one read of the `(service, id)` index, newest first,
///   limit 1.
/// - [`unfinished`](StateStore::unfinished): one read of the partial index of unfinished
///   records: it holds the few deployments under way, not the history.
/// - [`history`](StateStore::history): one read of the `(service, id)` index, at most
///   `limit + 1` records.
/// - [`services`](StateStore::services): one read of the `services` table's key, a page.
/// - [`list`](StateStore::list): every record (of a service, through its index): for tools,
///   never on a deployment's path.
/// - leases: one conditional upsert to take one, one `UPDATE` to renew, one `DELETE` to
///   release; a refusal reads the lease to name its holder.
/// - [`add_command`](StateStore::add_command): one `INSERT ... ON CONFLICT DO NOTHING`;
///   [`commands`](StateStore::commands), which a runner reads every poll: one read of the
///   deployment's command rows.
/// - [`halts`](HaltStore::halts) of a service, read every poll: one read of two keys.
/// - wave plans: one conditional statement to save, one read to load, one read of the partial
///   index of plans not ended.
///
/// No statement on a deployment's path reads the finished history: a deployment costs the
/// same with ten records behind it or a hundred thousand. [`stats`](Self::stats) counts what
/// was sent.
///
/// # Guarantees
/// Every write that can conflict is conditional, decided by the server on the row it locks: a
/// record is saved only from the version stored (a second writer gets
/// [`StaleVersion`](immutable_core::Error::StaleVersion)); a lease is taken only if it is
/// free, expired or the taker's, so two runners never both hold one. Each write is one
/// statement, so it is applied whole or not at all: a connection lost mid-write leaves the
/// old row or the new, never part of either.
///
/// A call that fails for a passing reason (the connection lost, the server restarting, a
/// serialization failure, no connection in time) is made again under the store's
/// [`RetryPolicy`](immutable_core::RetryPolicy) ([`default_retry`](crate::default_retry)),
/// then reported as retryable ([`Error::Transient`](immutable_core::Error::Transient)). A
/// retried save or command that finds its own earlier write committed reports success.
///
/// # Assumptions
/// Lease expiry uses the caller's clock (the engine's), not the server's, as every bundled
/// store does: the runners' clocks must agree to within a small fraction of the lease
/// time-to-live.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) db: Arc<Db>,
    pub(crate) retention: Retention,
    shown: Arc<str>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.shown)
            .field("schema", &self.db.schema)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PostgresStore {
    /// `postgres://user@host:port/database (schema s)`: never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (schema {})", self.shown, self.db.schema)
    }
}

impl PostgresStore {
    /// A builder for the database `url` names (`postgres://user@host:port/database`, with
    /// `?schema=<name>` for another schema than [`DEFAULT_SCHEMA`](crate::DEFAULT_SCHEMA)):
    /// see [`PostgresStoreBuilder`] for the password's sources and the settings.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](immutable_core::Error::InvalidInput) naming `url` (without its
    /// password) when it is not such a URL.
    pub fn builder(url: &str) -> Result<PostgresStoreBuilder> {
        PostgresStoreBuilder::from_url(url)
    }

    pub(crate) fn from_builder(b: PostgresStoreBuilder) -> Result<PostgresStore> {
        let shown: Arc<str> = Redacted(&b.pg).to_string().into();
        let db = Db::new(b.pg, b.schema, b.pool_size, b.retry)?;
        Ok(PostgresStore {
            db: Arc::new(db),
            retention: b.retention,
            shown,
        })
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &str {
        &self.db.schema
    }

    /// What this store (and its clones) has sent so far.
    pub fn stats(&self) -> PostgresStoreStats {
        self.db.stats()
    }
}

#[async_trait]
impl StateStore for PostgresStore {
    async fn save(&self, record: &mut DeploymentRecord) -> Result<()> {
        let mut next = record.clone();
        next.version += 1;
        self.save_record(&next).await?;
        record.version = next.version;
        if self.retention.trims_after(&next)
            && let Err(error) = self.trim(next.service(), &next.id).await
        {
            // The save stands; the next success trims again.
            tracing::warn!(service = %next.service(), %error, "retention could not trim");
        }
        Ok(())
    }

    async fn load(&self, id: &DeploymentId) -> Result<DeploymentRecord> {
        self.load_record(id).await
    }

    async fn list(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
        self.records(service, false).await
    }

    async fn unfinished(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
        self.records(service, true).await
    }

    async fn latest(&self, service: &ServiceName) -> Result<Option<DeploymentRecord>> {
        self.newest(service).await
    }

    async fn history(&self, service: &ServiceName, page: &Page) -> Result<HistoryPage> {
        page.check()?;
        self.history_page(service, page).await
    }

    async fn services(
        &self,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> Result<Vec<ServiceName>> {
        Page::first(limit)?;
        self.service_names(after, limit).await
    }

    async fn acquire_lease(
        &self,
        service: &ServiceName,
        deployment: &DeploymentId,
        holder: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<LeaseGrant> {
        self.take_lease(service, deployment, holder, ttl, now).await
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration, now: SystemTime) -> Result<Lease> {
        self.extend_lease(lease, ttl, now).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        self.drop_lease(lease).await
    }

    async fn lease(&self, service: &ServiceName) -> Result<Option<Lease>> {
        let doing = self.db.doing("read", ResourceKind::Lease, service.as_str());
        self.stored_lease(service, &doing).await
    }

    async fn add_command(&self, command: &CommandRecord) -> Result<()> {
        self.append_command(command).await
    }

    async fn commands(&self, deployment: &DeploymentId) -> Result<Vec<CommandRecord>> {
        self.read_commands(deployment).await
    }

    fn halt_store(&self) -> Option<&dyn HaltStore> {
        Some(self)
    }

    fn wave_store(&self) -> Option<&dyn WaveStore> {
        Some(self)
    }
}

#[async_trait]
impl HaltStore for PostgresStore {
    async fn set_halt(&self, halt: &Halt) -> Result<()> {
        self.put_halt(halt).await
    }

    async fn lift_halt(&self, scope: &HaltScope) -> Result<Option<Halt>> {
        self.delete_halt(scope).await
    }

    async fn halts(&self, service: Option<&ServiceName>) -> Result<Vec<Halt>> {
        self.read_halts(service).await
    }
}

#[async_trait]
impl WaveStore for PostgresStore {
    async fn save_wave(&self, record: &mut WaveRecord) -> Result<()> {
        let mut next = record.clone();
        next.version += 1;
        self.save_plan(&next).await?;
        record.version = next.version;
        Ok(())
    }

    async fn load_wave(&self, id: &WaveId) -> Result<WaveRecord> {
        self.load_plan(id).await
    }

    async fn unfinished_waves(&self) -> Result<Vec<WaveRecord>> {
        self.open_plans().await
    }
}
