//! Halts: one item per scope in the partition `halts`, so a service's read is two keys and the
//! read of every halt one `Query` of a small partition.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnValue};
use immutable_core::{Error, Halt, HaltScope, ResourceKind, Result, ServiceName};

use super::DynamoStore;
use super::item::{Item, built, encode, key, parse, s};
use super::records::KeyQuery;
use crate::error::{Call, MapAws};

/// The partition of every halt.
const HALTS_PK: &str = "halts";

/// Rounds of `UnprocessedKeys` retried before a read of halts gives up as throttled.
const BATCH_ROUNDS: u32 = 8;

fn halt_key(scope: &HaltScope) -> Item {
    key(HALTS_PK, scope.key())
}

impl DynamoStore {
    fn halt_call(&self, operation: &'static str) -> Call<'_> {
        Call::new(operation, ResourceKind::Halt, &self.table)
    }

    /// One `PutItem`, replacing the halt of the same scope.
    pub(super) async fn put_halt(&self, halt: &Halt) -> Result<()> {
        let mut item = halt_key(&halt.scope);
        item.insert("kind".to_owned(), s("halt"));
        item.insert("body".to_owned(), s(encode(halt)?));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .aws(self.halt_call("PutItem"))?;
        Ok(())
    }

    /// One `DeleteItem` that returns what it deleted.
    pub(super) async fn delete_halt(&self, scope: &HaltScope) -> Result<Option<Halt>> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(halt_key(scope)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .aws(self.halt_call("DeleteItem"))?;
        match out.attributes {
            Some(item) if !item.is_empty() => Ok(Some(parse(&item, "halt", &self.table)?)),
            _ => Ok(None),
        }
    }

    /// A service's halts: one consistent `BatchGetItem` of its own halt and the global one.
    /// Every halt: one consistent `Query` of the `halts` partition.
    pub(super) async fn read_halts(&self, service: Option<&ServiceName>) -> Result<Vec<Halt>> {
        let items = match service {
            Some(service) => {
                let keys = [HaltScope::Service(service.clone()), HaltScope::All]
                    .iter()
                    .map(halt_key)
                    .collect();
                self.batch_get(keys).await?
            }
            None => {
                self.query(KeyQuery {
                    kind: ResourceKind::Halt,
                    index: None,
                    condition: "#pk = :p",
                    values: HashMap::from([(":p".to_owned(), s(HALTS_PK))]),
                    newest_first: false,
                    limit: None,
                })
                .await?
            }
        };
        let mut halts: Vec<Halt> = items
            .iter()
            .map(|i| parse(i, "halt", &self.table))
            .collect::<Result<_>>()?;
        halts.sort_by(|a, b| a.scope.cmp(&b.scope));
        Ok(halts)
    }

    /// The items of `keys` that exist, read consistently; keys DynamoDB leaves unprocessed
    /// are asked for again, with a growing pause.
    async fn batch_get(&self, mut keys: Vec<Item>) -> Result<Vec<Item>> {
        let mut items = Vec::with_capacity(keys.len());
        for round in 0..BATCH_ROUNDS {
            let request = built(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build(),
            )?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .aws(self.halt_call("BatchGetItem"))?;
            items.extend(
                out.responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            keys = out
                .unprocessed_keys
                .and_then(|mut left| left.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if keys.is_empty() {
                return Ok(items);
            }
            tokio::time::sleep(Duration::from_millis(50) * 2u32.pow(round)).await;
        }
        Err(Error::throttled(format!(
            "BatchGetItem left {} halts of table {} unprocessed",
            keys.len(),
            self.table
        )))
    }
}
