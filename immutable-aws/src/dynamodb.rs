//! A [`StateStore`] on DynamoDB, for deploy runners on many machines (feature `dynamodb`).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ScalarAttributeType,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use immutable_core::{
    CommandRecord, DeploymentId, DeploymentRecord, Error, Lease, LeaseGrant, ResourceKind, Result,
    ServiceName, StateStore,
};

use crate::AwsClients;
use crate::error::{Call, MapAws};

type Item = HashMap<String, AttributeValue>;

/// Deployment records and service leases in one DynamoDB table with a string partition key
/// `pk`: `deployment#<id>` and `lease#<service>` items.
///
/// Every write is conditional: a record is saved only if its stored version is the one the
/// writer read (versioned compare-and-swap), and a lease is taken only if it is free, expired
/// or the taker's own. Reads are strongly consistent. Lease expiry uses the system clock, so
/// the runners' clocks must agree to within a small fraction of the lease time-to-live.
///
/// The table needs only its key; [`create_table`](DynamoStore::create_table) makes one with
/// on-demand billing. IAM actions: `dynamodb:GetItem`, `PutItem`, `DeleteItem`, `Scan`
/// (and `CreateTable`, `DescribeTable` for `create_table`).
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
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Whether a conditional write was refused because its condition did not hold.
fn condition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

fn millis(t: SystemTime) -> u128 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

fn text<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn parse<T: serde::de::DeserializeOwned>(item: &Item, what: &str, table: &str) -> Result<T> {
    let pk = text(item, "pk").unwrap_or("?");
    let body = text(item, "body").ok_or_else(|| {
        Error::store(
            format!("item {pk} of table {table} has no body; it was left untouched"),
            None,
        )
    })?;
    serde_json::from_str(body).map_err(|e| {
        Error::store(
            format!("{what} {pk} in table {table} is corrupted ({e}); it was left untouched"),
            Some(Box::new(e) as _),
        )
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::store("cannot encode", Some(Box::new(e) as _)))
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
        }
    }

    /// Creates the table (on-demand billing) if it does not exist, and waits until it is
    /// active, for at most a minute.
    ///
    /// # Errors
    /// AWS errors, and [`Error::Timeout`] if the table does not become active.
    pub async fn create_table(&self) -> Result<()> {
        let call = Call::new("CreateTable", ResourceKind::Deployment, &self.table);
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(|e| Error::provider(e.to_string()))?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(|e| Error::provider(e.to_string()))?,
            )
            .send()
            .await;
        match created.aws(call) {
            Ok(_) | Err(Error::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let d = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .aws(Call::new(
                    "DescribeTable",
                    ResourceKind::Deployment,
                    &self.table,
                ))?;
            let active = d
                .table()
                .and_then(|t| t.table_status())
                .is_some_and(|s| s.as_str() == "ACTIVE");
            if active {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("table {} to become active", self.table),
                    after: Duration::from_secs(60),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn get(&self, pk: &str, kind: ResourceKind) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .consistent_read(true)
            .send()
            .await
            .aws(Call::new("GetItem", kind, pk))?;
        Ok(out.item)
    }

    async fn scan(&self, filter: &str, values: Item) -> Result<Vec<DeploymentRecord>> {
        let mut records = Vec::new();
        let mut start = None;
        // DynamoDB refuses names the expression does not use.
        let names: HashMap<String, String> =
            [("#kind", "kind"), ("#svc", "service"), ("#open", "open")]
                .into_iter()
                .filter(|(alias, _)| filter.contains(alias))
                .map(|(a, n)| (a.to_owned(), n.to_owned()))
                .collect();
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(filter)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .aws(Call::new("Scan", ResourceKind::Deployment, &self.table))?;
            for item in out.items() {
                records.push(parse(item, "deployment record", &self.table)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        records.sort_by(|a: &DeploymentRecord, b| a.id.cmp(&b.id));
        Ok(records)
    }

    fn lease_item(&self, lease: &Lease) -> Result<Item> {
        Ok(HashMap::from([
            ("pk".to_owned(), s(format!("lease#{}", lease.service))),
            ("kind".to_owned(), s("lease")),
            ("holder".to_owned(), s(&lease.holder)),
            ("expires_at".to_owned(), n(millis(lease.expires_at))),
            ("body".to_owned(), s(encode(lease)?)),
        ]))
    }

    fn locked(&self, service: &ServiceName, item: Option<Item>) -> Result<Error> {
        Ok(match item {
            Some(item) => {
                let held: Lease = parse(&item, "lease", &self.table)?;
                Error::Locked {
                    service: service.clone(),
                    holder: held.holder,
                    deployment: held.deployment,
                }
            }
            None => Error::not_found(ResourceKind::Lease, service.to_string()),
        })
    }
}

#[async_trait]
impl StateStore for DynamoStore {
    async fn save(&self, record: &mut DeploymentRecord) -> Result<()> {
        let pk = format!("deployment#{}", record.id);
        let mut next = record.clone();
        next.version += 1;
        let item = HashMap::from([
            ("pk".to_owned(), s(&pk)),
            ("kind".to_owned(), s("deployment")),
            ("service".to_owned(), s(next.service().as_str())),
            (
                "open".to_owned(),
                AttributeValue::Bool(!next.phase.is_terminal()),
            ),
            ("version".to_owned(), n(next.version)),
            ("body".to_owned(), s(encode(&next)?)),
        ]);
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let req = if record.version == 0 {
            req.condition_expression("attribute_not_exists(pk)")
        } else {
            req.condition_expression("version = :v")
                .expression_attribute_values(":v", n(record.version))
        };
        match req.send().await {
            Ok(_) => {
                record.version = next.version;
                Ok(())
            }
            Err(e) if condition_failed(&e) => {
                match self.get(&pk, ResourceKind::Deployment).await? {
                    Some(_) if record.version == 0 => Err(Error::AlreadyExists {
                        kind: ResourceKind::Deployment,
                        id: record.id.to_string(),
                    }),
                    Some(item) => Err(Error::StaleVersion {
                        deployment: record.id.clone(),
                        stored: item
                            .get("version")
                            .and_then(|v| v.as_n().ok())
                            .and_then(|v| v.parse().ok())
                            .unwrap_or_default(),
                        ours: record.version,
                    }),
                    None => Err(Error::not_found(
                        ResourceKind::Deployment,
                        record.id.to_string(),
                    )),
                }
            }
            Err(e) => Err(e).aws(Call::new("PutItem", ResourceKind::Deployment, &pk)),
        }
    }

    async fn load(&self, id: &DeploymentId) -> Result<DeploymentRecord> {
        let pk = format!("deployment#{id}");
        match self.get(&pk, ResourceKind::Deployment).await? {
            Some(item) => parse(&item, "deployment record", &self.table),
            None => Err(Error::not_found(ResourceKind::Deployment, id.to_string())),
        }
    }

    async fn list(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
        let mut values = HashMap::from([(":d".to_owned(), s("deployment"))]);
        let filter = match service {
            Some(svc) => {
                values.insert(":s".to_owned(), s(svc.as_str()));
                "#kind = :d AND #svc = :s"
            }
            None => "#kind = :d",
        };
        self.scan(filter, values).await
    }

    async fn unfinished(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
        let mut values = HashMap::from([
            (":d".to_owned(), s("deployment")),
            (":t".to_owned(), AttributeValue::Bool(true)),
        ]);
        let filter = match service {
            Some(svc) => {
                values.insert(":s".to_owned(), s(svc.as_str()));
                "#kind = :d AND #open = :t AND #svc = :s"
            }
            None => "#kind = :d AND #open = :t",
        };
        self.scan(filter, values).await
    }

    async fn acquire_lease(
        &self,
        service: &ServiceName,
        deployment: &DeploymentId,
        holder: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<LeaseGrant> {
        let lease = Lease {
            service: service.clone(),
            deployment: deployment.clone(),
            holder: holder.to_owned(),
            expires_at: now + ttl,
        };
        let pk = format!("lease#{service}");
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.lease_item(&lease)?))
            .condition_expression("attribute_not_exists(pk) OR holder = :h OR expires_at < :now")
            .expression_attribute_values(":h", s(holder))
            .expression_attribute_values(":now", n(millis(now)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let replaced = match out.attributes {
                    Some(old) if text(&old, "holder") != Some(holder) && !old.is_empty() => {
                        Some(parse(&old, "lease", &self.table)?)
                    }
                    _ => None,
                };
                Ok(LeaseGrant { lease, replaced })
            }
            Err(e) if condition_failed(&e) => {
                Err(self.locked(service, self.get(&pk, ResourceKind::Lease).await?)?)
            }
            Err(e) => Err(e).aws(Call::new("PutItem", ResourceKind::Lease, &pk)),
        }
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration, now: SystemTime) -> Result<Lease> {
        let renewed = Lease {
            expires_at: now + ttl,
            ..lease.clone()
        };
        let pk = format!("lease#{}", lease.service);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.lease_item(&renewed)?))
            .condition_expression("holder = :h")
            .expression_attribute_values(":h", s(&lease.holder))
            .send()
            .await;
        match result {
            Ok(_) => Ok(renewed),
            Err(e) if condition_failed(&e) => {
                Err(self.locked(&lease.service, self.get(&pk, ResourceKind::Lease).await?)?)
            }
            Err(e) => Err(e).aws(Call::new("PutItem", ResourceKind::Lease, &pk)),
        }
    }

    /// One item per deployment holds its commands as a list; an append is one atomic
    /// `UpdateItem`, so commands given at once are all kept. A retried append may store a
    /// command twice; readers drop the repeat by its id.
    async fn add_command(&self, command: &CommandRecord) -> Result<()> {
        let pk = format!("cmds#{}", command.deployment);
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("SET #c = list_append(if_not_exists(#c, :empty), :new)")
            .expression_attribute_names("#c", "commands")
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":new", AttributeValue::L(vec![s(encode(command)?)]))
            .send()
            .await
            .aws(Call::new("UpdateItem", ResourceKind::Command, &pk))?;
        Ok(())
    }

    async fn commands(&self, deployment: &DeploymentId) -> Result<Vec<CommandRecord>> {
        let pk = format!("cmds#{deployment}");
        let Some(item) = self.get(&pk, ResourceKind::Command).await? else {
            return Ok(Vec::new());
        };
        let mut seen = std::collections::BTreeSet::new();
        let mut commands = Vec::new();
        for value in item
            .get("commands")
            .and_then(|v| v.as_l().ok())
            .into_iter()
            .flatten()
        {
            let body = value.as_s().map_err(|_| {
                Error::store(
                    format!(
                        "item {pk} of table {} holds a command that is not text",
                        self.table
                    ),
                    None,
                )
            })?;
            let command: CommandRecord = serde_json::from_str(body).map_err(|e| {
                Error::store(
                    format!(
                        "a command in item {pk} of table {} is corrupted ({e})",
                        self.table
                    ),
                    Some(Box::new(e) as _),
                )
            })?;
            if seen.insert(command.id.clone()) {
                commands.push(command);
            }
        }
        commands.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(commands)
    }

    async fn lease(&self, service: &ServiceName) -> Result<Option<Lease>> {
        let pk = format!("lease#{service}");
        match self.get(&pk, ResourceKind::Lease).await? {
            Some(item) => Ok(Some(parse(&item, "lease", &self.table)?)),
            None => Ok(None),
        }
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        let pk = format!("lease#{}", lease.service);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .condition_expression("holder = :h")
            .expression_attribute_values(":h", s(&lease.holder))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(e).aws(Call::new("DeleteItem", ResourceKind::Lease, &pk)),
        }
    }
}
