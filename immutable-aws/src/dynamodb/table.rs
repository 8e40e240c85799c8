//! The table: its creation with the key layout and the sparse index, and a check of an
//! existing table's layout.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableDescription,
};
use immutable_core::{Error, ResourceKind, Result};

use super::DynamoStore;
use super::item::{OPEN_INDEX, built};
use crate::error::{Call, MapAws};

fn key_element(name: &str, key_type: KeyType) -> Result<KeySchemaElement> {
    built(
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build(),
    )
}

fn string_attribute(name: &str) -> Result<AttributeDefinition> {
    built(
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build(),
    )
}

fn has_key(keys: &[KeySchemaElement], name: &str, key_type: KeyType) -> bool {
    keys.iter()
        .any(|k| k.attribute_name() == name && *k.key_type() == key_type)
}

impl DynamoStore {
    /// Creates the table (on-demand billing) if it does not exist, waits until it is active,
    /// for at most a minute, and checks its layout.
    ///
    /// # Errors
    /// AWS errors, [`Error::Timeout`] if the table does not become active, and
    /// [`Error::InvalidInput`] for an existing table of another layout (see
    /// [`check_table`](Self::check_table)).
    pub async fn create_table(&self) -> Result<()> {
        let open = built(
            GlobalSecondaryIndex::builder()
                .index_name(OPEN_INDEX)
                .key_schema(key_element("open_pk", KeyType::Hash)?)
                .key_schema(key_element("open_sk", KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build(),
        )?;
        let mut request = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key_element("pk", KeyType::Hash)?)
            .key_schema(key_element("sk", KeyType::Range)?)
            .global_secondary_indexes(open);
        for name in ["pk", "sk", "open_pk", "open_sk"] {
            request = request.attribute_definitions(string_attribute(name)?);
        }
        match request.send().await.aws(self.table_call("CreateTable")) {
            Ok(_) | Err(Error::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let table = self.describe().await?;
            if table.table_status().is_some_and(|s| s.as_str() == "ACTIVE") {
                return layout_error(&self.table, &table).map_or(Ok(()), Err);
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

    /// Checks that the table has this store's layout (keys `pk` and `sk`, index `open`): for
    /// tables made by infrastructure code, at a runner's start.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the table when it has another layout, with what it
    /// needs; AWS errors (`NotFound` for a missing table).
    pub async fn check_table(&self) -> Result<()> {
        let table = self.describe().await?;
        layout_error(&self.table, &table).map_or(Ok(()), Err)
    }

    pub(super) fn table_call(&self, operation: &'static str) -> Call<'_> {
        Call::new(operation, ResourceKind::Deployment, &self.table)
    }

    async fn describe(&self) -> Result<TableDescription> {
        let out = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .aws(self.table_call("DescribeTable"))?;
        out.table
            .ok_or_else(|| Error::not_found(ResourceKind::Deployment, self.table.clone()))
    }
}

fn layout_error(name: &str, table: &TableDescription) -> Option<Error> {
    let keys = table.key_schema();
    let open = table
        .global_secondary_indexes()
        .iter()
        .any(|g| g.index_name() == Some(OPEN_INDEX));
    if has_key(keys, "pk", KeyType::Hash) && has_key(keys, "sk", KeyType::Range) && open {
        return None;
    }
    let reason = "is not a DynamoStore table: it needs the keys `pk` (partition) and `sk` \
                  (sort), both strings, and the global secondary index `open` on `open_pk` and \
                  `open_sk`; create it with DynamoStore::create_table";
    Some(Error::invalid("table", format!("table {name} {reason}")))
}
