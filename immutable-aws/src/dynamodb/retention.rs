//! Retention: after a success, the service's oldest finished records beyond the newest kept
//! are deleted, with their pointers, in one transaction that also lowers the record counter.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};
use immutable_core::{DeploymentId, DeploymentRecord, Result, Retention, ServiceName};

use super::DynamoStore;
use super::item::{built, meta_key, n, number, pointer_key, record_key};
use crate::error::MapAws;

/// Records deleted by one trim at most: two deletes each, and the counter, fit in one
/// transaction of 100 actions.
pub(super) const TRIM_BATCH: usize = 49;

impl DynamoStore {
    /// Deletes up to [`TRIM_BATCH`] of the service's finished records older than `succeeded`
    /// beyond the newest kept: one `GetItem` of the counter, and when it is above `keep`, one
    /// `Query` of the oldest records and one `TransactWriteItems`.
    pub(super) async fn trim(&self, service: &ServiceName, succeeded: &DeploymentId) -> Result<()> {
        let total = self
            .get(meta_key(service), succeeded)
            .await?
            .and_then(|m| number(&m, "records"))
            .unwrap_or_default();
        let excess = self
            .retention
            .excess(usize::try_from(total).unwrap_or(usize::MAX));
        if excess == 0 {
            return Ok(());
        }
        let oldest = self
            .records_of(service, false, Some(excess.min(TRIM_BATCH)))
            .await?;
        let doomed: Vec<&DeploymentRecord> = oldest
            .iter()
            .filter(|r| Retention::may_delete(r, succeeded))
            .collect();
        if doomed.is_empty() {
            return Ok(());
        }
        let actions = self.deletions(service, &doomed)?;
        self.client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
            .aws(self.call("TransactWriteItems", succeeded))?;
        Ok(())
    }

    /// The deletions of `doomed` and their pointers, and the count's decrement.
    fn deletions(
        &self,
        service: &ServiceName,
        doomed: &[&DeploymentRecord],
    ) -> Result<Vec<TransactWriteItem>> {
        let mut actions = Vec::with_capacity(2 * doomed.len() + 1);
        for r in doomed {
            // Only while it is still finished (no `open_pk`): records never reopen, but a
            // deletion must never take an unfinished one.
            let record = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(record_key(service, &r.id)))
                .condition_expression("attribute_not_exists(open_pk)");
            let pointer = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(pointer_key(&r.id)));
            for delete in [record, pointer] {
                actions.push(
                    TransactWriteItem::builder()
                        .delete(built(delete.build())?)
                        .build(),
                );
            }
        }
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(meta_key(service)))
            .update_expression("ADD #records :minus")
            .set_expression_attribute_names(Some(HashMap::from([(
                "#records".to_owned(),
                "records".to_owned(),
            )])))
            .expression_attribute_values(":minus", n(-(doomed.len() as i64)));
        actions.push(
            TransactWriteItem::builder()
                .update(built(count.build())?)
                .build(),
        );
        Ok(actions)
    }
}
