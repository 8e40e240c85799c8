//! Records copied in whole: an import of finished history, in batches of 25 items.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::{PutRequest, Select, WriteRequest};
use immutable_core::{DeploymentRecord, Error, Result, ServiceName};

use super::DynamoStore;
use super::item::{
    Item, RECORD_PREFIX, built, meta_key, n, pointer_item, record_item, s, service_pk,
};
use crate::error::MapAws;

/// Rounds of `UnprocessedItems` retried before an import gives up as throttled.
const BATCH_ROUNDS: u32 = 8;

impl DynamoStore {
    /// Writes `records` as they are (versions unchanged) with `BatchWriteItem`, 25 items per
    /// request, then recounts each service it touched (a `Query` of the service's partition
    /// that counts, reading each item once). For seeding history and copying journals: not
    /// conditional, so a record of the same id is overwritten, and not for records a runner
    /// may be advancing meanwhile.
    ///
    /// # Errors
    /// AWS errors, and [`Error::Throttled`] when DynamoDB leaves items unprocessed after
    /// several rounds.
    pub async fn import(&self, records: &[DeploymentRecord]) -> Result<()> {
        for service in self.write_records(records).await? {
            self.recount(&service).await?;
        }
        Ok(())
    }

    /// Writes records and their pointers; returns the services written to.
    async fn write_records(&self, records: &[DeploymentRecord]) -> Result<BTreeSet<ServiceName>> {
        let mut writes = Vec::with_capacity(2 * records.len());
        for r in records {
            for item in [record_item(r)?, pointer_item(r)] {
                let put = built(PutRequest::builder().set_item(Some(item)).build())?;
                writes.push(WriteRequest::builder().put_request(put).build());
            }
        }
        for chunk in writes.chunks(25) {
            self.batch_write(chunk.to_vec()).await?;
        }
        Ok(records.iter().map(|r| r.service().clone()).collect())
    }

    async fn batch_write(&self, mut writes: Vec<WriteRequest>) -> Result<()> {
        for round in 0..BATCH_ROUNDS {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, writes)
                .send()
                .await
                .aws(self.table_call("BatchWriteItem"))?;
            writes = out
                .unprocessed_items
                .and_then(|mut left| left.remove(&self.table))
                .unwrap_or_default();
            if writes.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50) * 2u32.pow(round)).await;
        }
        Err(Error::throttled(format!(
            "BatchWriteItem left {} items of table {} unprocessed",
            writes.len(),
            self.table
        )))
    }

    /// Sets the service's record count to the records its partition holds.
    async fn recount(&self, service: &ServiceName) -> Result<()> {
        let values: Item = HashMap::from([
            (":p".to_owned(), s(service_pk(service))),
            (":d".to_owned(), s(RECORD_PREFIX)),
        ]);
        let mut total = 0;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :p AND begins_with(#sk, :d)")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#sk", "sk")
                .set_expression_attribute_values(Some(values.clone()))
                .select(Select::Count)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .aws(self.table_call("Query"))?;
            total += i64::from(out.count);
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        let mut meta = meta_key(service);
        meta.insert("records".to_owned(), n(total));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(meta))
            .send()
            .await
            .aws(self.table_call("PutItem"))?;
        Ok(())
    }
}
