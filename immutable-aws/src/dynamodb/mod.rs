//! A [`StateStore`] on DynamoDB, for deploy runners on many machines (feature `dynamodb`).

mod commands;
mod halts;
mod import;
mod item;
mod lease;
mod records;
mod retention;
mod table;
mod waves;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use immutable_core::{
    CommandRecord, DeploymentId, DeploymentRecord, Halt, HaltScope, HaltStore, HistoryPage, Lease,
    LeaseGrant, Page, Result, Retention, ServiceName, StateStore, WaveId, WaveRecord, WaveStore,
};

use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;

use crate::AwsClients;
use crate::error::{Call, MapAws};

/// Deployment records, service leases, halts and wave plans in one DynamoDB table, laid out so
/// that a deployment's reads do not grow with the history behind it.
///
/// # Layout
/// The table has a string partition key `pk` and a string sort key `sk`:
///
/// | item | `pk` | `sk` | other attributes |
/// |---|---|---|---|
/// | record | `service#<service>` | `deployment#<id>` | `version`, `body` (JSON); `open_pk`, `open_sk` while unfinished |
/// | lease | `service#<service>` | `lease` | `holder`, `expires_at`, `body` |
/// | record count | `service#<service>` | `meta` | `records` |
/// | pointer | `deployment#<id>` | `pointer` | `service` |
/// | command | `deployment#<id>` | `command#<command id>` | `body` |
/// | halt | `halts` | `all`, or `service#<service>` ([`HaltScope::key`]) | `body` |
/// | wave plan | `wave#<id>` | `wave` | `version`, `body` |
/// | open wave plan | `waves-open` | `<id>` | none: a marker while the plan has not ended |
///
/// A service's records are one partition sorted by deployment id, a ULID, so by time. The
/// global secondary index `open` (partition `open_pk`, always `"open"`; sort `open_sk`,
/// `<service>#<id>`; keys only) is sparse: a record is in it only while it is unfinished, so
/// it holds the few deployments under way, not the history. The pointer finds a record by id
/// alone; the count drives retention. Halts sit in one small partition, one item per scope,
/// so a second halt of a scope replaces the first. A wave plan's record and its marker change
/// in one transaction, so the markers name exactly the plans that have not ended.
///
/// # Cost of each operation
/// - [`save`](StateStore::save): one conditional `PutItem` (the first save: two conditional
///   `PutItem`s, the pointer then the record, and an `UpdateItem` of the count). A save that
///   records a success also reads the count (`GetItem`), and when the service is above its
///   [`Retention`], the oldest records (`Query`, at most 49) and deletes them with the
///   count's decrement (`TransactWriteItems`).
/// - [`latest`](StateStore::latest): one `Query`, newest first, limit 1.
/// - [`unfinished`](StateStore::unfinished): one `Query` of the `open` index, then one
///   consistent `GetItem` per unfinished deployment (the index may lag behind the table).
/// - [`history`](StateStore::history): one `Query` of at most `limit + 2` items.
/// - [`load`](StateStore::load): two `GetItem`s (pointer, record).
/// - [`list`](StateStore::list): a `Query` of the whole partition for a service, and a `Scan`
///   of the table for all services: for tools, never on a deployment's path.
/// - [`services`](StateStore::services): a `Scan` of the table's keys that keeps one
///   record-count item per service (no record body is read or returned): it grows with the
///   table, for dashboards and tools, never on a deployment's path.
/// - [`halts`](HaltStore::halts) of a service, which a running deployment reads at every
///   poll: one `BatchGetItem` of two keys (its own halt and the global one), two strongly
///   consistent reads whether halts stand or not. Of every service: one `Query` of the
///   `halts` partition, as large as the halts that stand.
/// - [`set_halt`](HaltStore::set_halt): one `PutItem`; [`lift_halt`](HaltStore::lift_halt):
///   one `DeleteItem` that returns the halt.
/// - [`save_wave`](WaveStore::save_wave): one `TransactWriteItems` of the record (conditional
///   on its version) and its marker, at twice the write units of two plain writes;
///   a refused save reads the stored version (`GetItem`) to say why.
/// - [`load_wave`](WaveStore::load_wave): one `GetItem`.
/// - [`add_command`](StateStore::add_command): one `PutItem`, conditional on the command's id
///   being new, so commands given at once never overwrite each other and a retried one is
///   stored once. [`commands`](StateStore::commands), which a running deployment reads at
///   every poll: one consistent `Query` of the deployment's command items.
/// - [`unfinished_waves`](WaveStore::unfinished_waves): one `Query` of the markers, then one
///   `GetItem` per plan that has not ended; plans that ended are not read.
///
/// No `Scan` is made on a deployment's path. Table reads are strongly consistent.
///
/// # Guarantees
/// Every write is conditional: a record is saved only if its stored version is the one the
/// writer read (versioned compare-and-swap), and a lease is taken only if it is free, expired
/// or the taker's own. Lease expiry uses the caller's clock, so the runners' clocks must
/// agree to within a small fraction of the lease time-to-live.
///
/// The `open` index is eventually consistent: a deployment opened within its propagation
/// delay (usually well under a second) may be missing from
/// [`unfinished`](StateStore::unfinished), and one closed meanwhile is dropped when it is read
/// again from the table. The lease guards the service during that window.
///
/// Retention deletes up to 49 records per success, so a table that held more than `keep`
/// records of a service when retention was turned on is trimmed over several successes.
///
/// # IAM
/// `dynamodb:GetItem`, `PutItem`, `UpdateItem`, `DeleteItem`, `Query` (on the table and its
/// `open` index), `TransactWriteItems` (retention, wave plans), `BatchGetItem` (halts);
/// `BatchWriteItem` for
/// [`import`](Self::import); `Scan` only for [`list`](StateStore::list) of all services;
/// `CreateTable` and `DescribeTable` for [`create_table`](Self::create_table) and
/// [`check_table`](Self::check_table).
///
/// ```no_run
/// # async fn demo() -> immutable_core::Result<()> {
/// use immutable_aws::{AwsConfig, AwsFleet, AwsImageStore, AwsRouter, DynamoStore, EntryPoint};
/// use immutable_core::Engine;
///
/// let clients = AwsConfig::from_env().load().await;
/// let store = DynamoStore::new(&clients, "immutable-deployments");
/// store.create_table().await?; // once
/// let engine = Engine::builder()
///     .images(AwsImageStore::new(&clients))
///     .fleet(AwsFleet::builder(&clients).instance_type("t3.small").build()?)
///     .router(AwsRouter::builder(&clients).service("web", EntryPoint::listener("arn:...")).build()?)
///     .store(store)
///     .build()?;
/// // Any runner may now resume what another left unfinished.
/// for (id, result) in engine.resume_unfinished().await? {
///     println!("{id}: {:?}", result.map(|r| r.outcome));
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retention: Retention,
}

impl DynamoStore {
    /// A store in `table`, over the clients' AWS configuration.
    pub fn new(clients: &AwsClients, table: impl Into<String>) -> Self {
        Self::from_client(aws_sdk_dynamodb::Client::new(&clients.sdk), table)
    }

    /// A store in `table`, over one DynamoDB client.
    pub fn from_client(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            retention: Retention::default(),
        }
    }

    /// Keeps records as `retention` says ([`Retention::default`] otherwise).
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }
}

#[async_trait]
impl StateStore for DynamoStore {
    async fn services(
        &self,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> Result<Vec<ServiceName>> {
        Page::first(limit)?;
        let mut names = self.service_names().await?;
        names.sort();
        Ok(names
            .into_iter()
            .filter(|n| after.is_none_or(|a| n > a))
            .take(limit)
            .collect())
    }

    async fn save(&self, record: &mut DeploymentRecord) -> Result<()> {
        let mut next = record.clone();
        next.version += 1;
        if record.version == 0 {
            self.save_first(&next).await?;
        } else {
            self.save_next(&next).await?;
        }
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
        match service {
            Some(service) => self.records_of(service, false, None).await,
            None => self.scan_records().await,
        }
    }

    async fn unfinished(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
        self.open_records(service).await
    }

    async fn latest(&self, service: &ServiceName) -> Result<Option<DeploymentRecord>> {
        Ok(self.records_of(service, true, Some(1)).await?.pop())
    }

    async fn history(&self, service: &ServiceName, page: &Page) -> Result<HistoryPage> {
        page.check()?;
        self.history_page(service, page).await
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
        self.read_lease(service).await
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
impl HaltStore for DynamoStore {
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
impl WaveStore for DynamoStore {
    async fn save_wave(&self, record: &mut WaveRecord) -> Result<()> {
        let mut next = record.clone();
        next.version += 1;
        self.put_wave(&next).await?;
        record.version = next.version;
        Ok(())
    }

    async fn load_wave(&self, id: &WaveId) -> Result<WaveRecord> {
        self.get_wave(id).await
    }

    async fn unfinished_waves(&self) -> Result<Vec<WaveRecord>> {
        self.open_waves().await
    }
}

impl DynamoStore {
    /// Every record of every service: a `Scan`, for tools.
    async fn scan_records(&self) -> Result<Vec<DeploymentRecord>> {
        let items = self
            .scan_items(|scan| {
                scan.filter_expression("#kind = :d")
                    .expression_attribute_names("#kind", "kind")
                    .expression_attribute_values(":d", item::s("deployment"))
                    .consistent_read(true)
            })
            .await?;
        let mut records = items
            .iter()
            .map(|i| item::parse(i, "deployment record", &self.table))
            .collect::<Result<Vec<DeploymentRecord>>>()?;
        records.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(records)
    }

    /// Every service with records: the partitions that hold a record-count item (their keys
    /// only).
    async fn service_names(&self) -> Result<Vec<ServiceName>> {
        let items = self
            .scan_items(|scan| {
                scan.filter_expression("sk = :meta")
                    .expression_attribute_values(":meta", item::s(item::META_SK))
                    .projection_expression("pk")
            })
            .await?;
        Ok(items
            .iter()
            .filter_map(|i| i.get("pk")?.as_s().ok()?.strip_prefix("service#"))
            .filter_map(|n| ServiceName::new(n).ok())
            .collect())
    }

    /// Every item of a `Scan` of the table that `shape` filters, page after page.
    async fn scan_items(
        &self,
        shape: impl Fn(ScanFluentBuilder) -> ScanFluentBuilder,
    ) -> Result<Vec<item::Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = shape(self.client.scan().table_name(&self.table))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .aws(Call::new(
                    "Scan",
                    immutable_core::ResourceKind::Deployment,
                    &self.table,
                ))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(items)
    }
}
