//! Wave plans: one item per plan, saved with a versioned condition, and a marker per plan
//! that has not ended in the partition `waves-open`, written and removed in the same
//! transaction as the record, so the markers name exactly the unfinished plans.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use immutable_core::{Error, ResourceKind, Result, WaveId, WaveRecord, check_wave_version};

use super::DynamoStore;
use super::item::{Item, built, encode, key, n, number, parse, s, text};
use super::records::KeyQuery;
use crate::error::{Call, MapAws};

/// Sort key of a plan's record, in the partition `wave#<id>`.
const WAVE_SK: &str = "wave";
/// The partition of the markers of plans that have not ended, sorted by plan id.
const WAVES_OPEN_PK: &str = "waves-open";

fn wave_key(id: &WaveId) -> Item {
    key(format!("wave#{id}"), WAVE_SK)
}

fn marker_key(id: &WaveId) -> Item {
    key(WAVES_OPEN_PK, id.as_str())
}

fn wave_item(record: &WaveRecord) -> Result<Item> {
    let mut item = wave_key(&record.id);
    item.extend([
        ("kind".to_owned(), s("wave")),
        ("version".to_owned(), n(record.version)),
        ("body".to_owned(), s(encode(record)?)),
    ]);
    Ok(item)
}

impl DynamoStore {
    fn wave_call<'a>(&self, operation: &'static str, id: &'a WaveId) -> Call<'a> {
        Call::new(operation, ResourceKind::WavePlan, id.as_str())
    }

    /// One `TransactWriteItems` of two actions: the record, if its stored version is the one
    /// the writer read (absent for a first save), and its marker, put while the plan has not
    /// ended and deleted once it has.
    pub(super) async fn put_wave(&self, next: &WaveRecord) -> Result<()> {
        let mut record = Put::builder()
            .table_name(&self.table)
            .set_item(Some(wave_item(next)?));
        record = if next.version == 1 {
            record.condition_expression("attribute_not_exists(pk)")
        } else {
            record
                .condition_expression("#version = :v")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":v", n(next.version - 1))
        };
        let marker = if next.state.is_terminal() {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(marker_key(&next.id)));
            TransactWriteItem::builder()
                .delete(built(delete.build())?)
                .build()
        } else {
            let mut item = marker_key(&next.id);
            item.insert("kind".to_owned(), s("wave-marker"));
            let put = Put::builder().table_name(&self.table).set_item(Some(item));
            TransactWriteItem::builder()
                .put(built(put.build())?)
                .build()
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .put(built(record.build())?)
                    .build(),
            )
            .transact_items(marker)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if cancelled(&e) => Err(self.wave_refusal(next, &e).await),
            Err(e) => Err(e).aws(self.wave_call("TransactWriteItems", &next.id)),
        }
    }

    /// Why a save of `next` was cancelled: the shared version rule, applied to the version
    /// stored now; if the versions agree, the transaction met another one on the same items,
    /// which is worth retrying.
    async fn wave_refusal<E: ProvideErrorMetadata, R>(
        &self,
        next: &WaveRecord,
        cancellation: &SdkError<E, R>,
    ) -> Error {
        let stored = match self.get_wave_item(&next.id).await {
            Ok(item) => item.and_then(|i| number(&i, "version")),
            Err(e) => return e,
        };
        let mut ours = next.clone();
        ours.version -= 1;
        match check_wave_version(stored, &ours) {
            Err(refusal) => refusal,
            Ok(()) => Error::transient(format!(
                "TransactWriteItems of wave plan {} was cancelled: {}",
                next.id,
                cancellation
                    .as_service_error()
                    .and_then(ProvideErrorMetadata::message)
                    .unwrap_or("no reason given")
            )),
        }
    }

    async fn get_wave_item(&self, id: &WaveId) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(wave_key(id)))
            .consistent_read(true)
            .send()
            .await
            .aws(self.wave_call("GetItem", id))?;
        Ok(out.item)
    }

    /// One consistent `GetItem`.
    pub(super) async fn get_wave(&self, id: &WaveId) -> Result<WaveRecord> {
        match self.get_wave_item(id).await? {
            Some(item) => parse(&item, "wave plan", &self.table),
            None => Err(Error::not_found(ResourceKind::WavePlan, id.as_str())),
        }
    }

    /// One consistent `Query` of the markers, then one consistent `GetItem` per plan that has
    /// not ended.
    pub(super) async fn open_waves(&self) -> Result<Vec<WaveRecord>> {
        let markers = self
            .query(KeyQuery {
                kind: ResourceKind::WavePlan,
                index: None,
                condition: "#pk = :p",
                values: HashMap::from([(":p".to_owned(), s(WAVES_OPEN_PK))]),
                newest_first: false,
                limit: None,
            })
            .await?;
        let mut waves = Vec::with_capacity(markers.len());
        for marker in &markers {
            let id = WaveId::new(text(marker, "sk").unwrap_or_default());
            // The marker and the record change together; a record deleted by hand is skipped.
            if let Some(item) = self.get_wave_item(&id).await? {
                let record: WaveRecord = parse(&item, "wave plan", &self.table)?;
                if !record.state.is_terminal() {
                    waves.push(record);
                }
            }
        }
        waves.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(waves)
    }
}

/// Whether a transaction was cancelled (a condition failed, or it met another transaction).
fn cancelled<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
        == Some("TransactionCanceledException")
}
