//! How records, pointers, leases and counters are laid out as DynamoDB items.

use std::collections::HashMap;
use std::time::SystemTime;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use immutable_core::{DeploymentId, DeploymentRecord, Error, Result, ServiceName};

pub(super) type Item = HashMap<String, AttributeValue>;

/// The sparse index of unfinished deployments.
pub(super) const OPEN_INDEX: &str = "open";
/// The one value of `open_pk`: every unfinished deployment sits in one index partition.
pub(super) const OPEN: &str = "open";
/// Sort keys of a service partition's singleton items.
pub(super) const LEASE_SK: &str = "lease";
pub(super) const META_SK: &str = "meta";
/// Sort key of a pointer item.
pub(super) const POINTER_SK: &str = "pointer";
/// Prefix of record sort keys; it sorts below `lease` and `meta`.
pub(super) const RECORD_PREFIX: &str = "deployment#";

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The partition of a service: its records, its lease and its record counter.
pub(super) fn service_pk(service: &ServiceName) -> String {
    format!("service#{service}")
}

pub(super) fn record_sk(id: &DeploymentId) -> String {
    format!("{RECORD_PREFIX}{id}")
}

/// The partition of a pointer from a deployment id to its service.
pub(super) fn pointer_pk(id: &DeploymentId) -> String {
    format!("deployment#{id}")
}

pub(super) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

pub(super) fn record_key(service: &ServiceName, id: &DeploymentId) -> Item {
    key(service_pk(service), record_sk(id))
}

pub(super) fn pointer_key(id: &DeploymentId) -> Item {
    key(pointer_pk(id), POINTER_SK)
}

pub(super) fn meta_key(service: &ServiceName) -> Item {
    key(service_pk(service), META_SK)
}

/// A record's item; while it is unfinished it carries the keys of the sparse `open` index.
pub(super) fn record_item(record: &DeploymentRecord) -> Result<Item> {
    let mut item = record_key(record.service(), &record.id);
    item.extend([
        ("kind".to_owned(), s("deployment")),
        ("version".to_owned(), n(record.version)),
        ("body".to_owned(), s(encode(record)?)),
    ]);
    if !record.phase.is_terminal() {
        item.insert("open_pk".to_owned(), s(OPEN));
        item.insert(
            "open_sk".to_owned(),
            s(format!("{}#{}", record.service(), record.id)),
        );
    }
    Ok(item)
}

pub(super) fn pointer_item(record: &DeploymentRecord) -> Item {
    let mut item = pointer_key(&record.id);
    item.insert("kind".to_owned(), s("pointer"));
    item.insert("service".to_owned(), s(record.service().as_str()));
    item
}

/// Whether a conditional write was refused because its condition did not hold.
pub(super) fn condition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

pub(super) fn millis(t: SystemTime) -> u128 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

pub(super) fn text<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(super) fn number(item: &Item, key: &str) -> Option<u64> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn item_name(item: &Item) -> String {
    format!(
        "{}/{}",
        text(item, "pk").unwrap_or("?"),
        text(item, "sk").unwrap_or("-")
    )
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(
    item: &Item,
    what: &str,
    table: &str,
) -> Result<T> {
    let name = item_name(item);
    let body = text(item, "body").ok_or_else(|| {
        Error::store(
            format!("item {name} of table {table} has no body; it was left untouched"),
            None,
        )
    })?;
    serde_json::from_str(body).map_err(|e| {
        Error::store(
            format!("{what} {name} in table {table} is corrupted ({e}); it was left untouched"),
            Some(Box::new(e) as _),
        )
    })
}

pub(super) fn encode<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::store("cannot encode", Some(Box::new(e) as _)))
}

/// A request the SDK refused to build (a missing required field): a bug here, reported.
pub(super) fn built<T>(
    r: std::result::Result<T, aws_smithy_types::error::operation::BuildError>,
) -> Result<T> {
    r.map_err(|e| Error::provider(e.to_string()))
}
