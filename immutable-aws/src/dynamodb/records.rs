//! Deployment records: the conditional save, and the reads a deployment needs, each a
//! `GetItem` or a `Query` with a limit.

use std::collections::HashMap;

use immutable_core::{
    DeploymentId, DeploymentRecord, Error, HistoryPage, Page, ResourceKind, Result, ServiceName,
    check_version,
};

use super::DynamoStore;
use super::item::{
    Item, OPEN, OPEN_INDEX, RECORD_PREFIX, condition_failed, meta_key, n, number, parse,
    pointer_item, pointer_key, record_item, record_key, record_sk, s, service_pk, text,
};
use crate::error::{Call, MapAws};

/// A `Query` on the table or the `open` index.
pub(super) struct KeyQuery<'a> {
    /// What the items are, for the errors of the call.
    pub(super) kind: ResourceKind,
    pub(super) index: Option<&'static str>,
    pub(super) condition: &'a str,
    pub(super) values: Item,
    pub(super) newest_first: bool,
    /// Stop once this many items are read.
    pub(super) limit: Option<usize>,
}

impl DynamoStore {
    /// The first save, in three conditional writes, each safe to repeat and ordered so that
    /// an interruption loses nothing: the pointer from the id to the service (unless another
    /// service's record has that id), the record (unless it exists), then one more in the
    /// service's record count. An interruption before the count leaves it one short, so
    /// retention keeps one record more than it would.
    ///
    /// (One `TransactWriteItems` would make the three atomic, at twice the write cost.)
    pub(super) async fn save_first(&self, next: &DeploymentRecord) -> Result<()> {
        let exists = || Error::already_exists(ResourceKind::Deployment, next.id.to_string());
        let pointer = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(pointer_item(next)))
            .condition_expression("attribute_not_exists(pk) OR #service = :s")
            .expression_attribute_names("#service", "service")
            .expression_attribute_values(":s", s(next.service().as_str()))
            .send()
            .await;
        match pointer {
            Ok(_) => {}
            Err(e) if condition_failed(&e) => return Err(exists()),
            Err(e) => return Err(e).aws(self.call("PutItem", &next.id)),
        }
        let record = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record_item(next)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match record {
            Ok(_) => {}
            Err(e) if condition_failed(&e) => return Err(exists()),
            Err(e) => return Err(e).aws(self.call("PutItem", &next.id)),
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(meta_key(next.service())))
            .update_expression("ADD #records :one")
            .expression_attribute_names("#records", "records")
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .aws(self.call("UpdateItem", &next.id))?;
        Ok(())
    }

    /// A later save: the record, if its stored version is the one the writer read.
    pub(super) async fn save_next(&self, next: &DeploymentRecord) -> Result<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record_item(next)?))
            .condition_expression("#version = :v")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":v", n(next.version - 1))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(self.refusal(next).await),
            Err(e) => Err(e).aws(self.call("PutItem", &next.id)),
        }
    }

    /// Why a conditional save of `next` was refused: the shared version rule, applied to the
    /// version stored now.
    async fn refusal(&self, next: &DeploymentRecord) -> Error {
        let mut ours = next.clone();
        ours.version -= 1;
        let stored = match self
            .get(record_key(next.service(), &next.id), &next.id)
            .await
        {
            Ok(item) => item.and_then(|i| number(&i, "version")),
            Err(e) => return e,
        };
        check_version(stored, &ours)
            .err()
            .unwrap_or(Error::StaleVersion {
                deployment: next.id.clone(),
                stored: stored.unwrap_or_default(),
                ours: ours.version,
            })
    }

    pub(super) fn call<'a>(&self, operation: &'static str, id: &'a DeploymentId) -> Call<'a> {
        Call::new(operation, ResourceKind::Deployment, id.as_str())
    }

    /// One item, read consistently.
    pub(super) async fn get(&self, key: Item, id: &DeploymentId) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .aws(self.call("GetItem", id))?;
        Ok(out.item)
    }

    /// A record by id: its pointer, then the record (two reads).
    pub(super) async fn load_record(&self, id: &DeploymentId) -> Result<DeploymentRecord> {
        let service = self
            .get(pointer_key(id), id)
            .await?
            .and_then(|p| text(&p, "service").and_then(|s| ServiceName::new(s).ok()));
        let Some(service) = service else {
            return Err(Error::not_found(ResourceKind::Deployment, id.to_string()));
        };
        match self.get(record_key(&service, id), id).await? {
            Some(item) => parse(&item, "deployment record", &self.table),
            None => Err(Error::not_found(ResourceKind::Deployment, id.to_string())),
        }
    }

    /// Items of a key condition, in key order, until `limit` or the end.
    pub(super) async fn query(&self, q: KeyQuery<'_>) -> Result<Vec<Item>> {
        // DynamoDB refuses names the expression does not use.
        let names: HashMap<String, String> = [
            ("#pk", "pk"),
            ("#sk", "sk"),
            ("#opk", "open_pk"),
            ("#osk", "open_sk"),
        ]
        .into_iter()
        .filter(|(alias, _)| q.condition.contains(alias))
        .map(|(a, n)| (a.to_owned(), n.to_owned()))
        .collect();
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let left = q.limit.map(|l| l.saturating_sub(items.len()));
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(q.index.map(str::to_owned))
                .key_condition_expression(q.condition)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(q.values.clone()))
                .scan_index_forward(!q.newest_first)
                // Global secondary indexes cannot be read consistently; what they return is
                // read again from the table.
                .consistent_read(q.index.is_none())
                .set_limit(left.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .aws(Call::new("Query", q.kind, &self.table))?;
            items.extend(out.items.unwrap_or_default());
            let full = q.limit.is_some_and(|l| items.len() >= l);
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() && !full => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// The service's records in key order: newest first with a limit, or all oldest first.
    pub(super) async fn records_of(
        &self,
        service: &ServiceName,
        newest_first: bool,
        limit: Option<usize>,
    ) -> Result<Vec<DeploymentRecord>> {
        let items = self
            .query(KeyQuery {
                kind: ResourceKind::Deployment,
                index: None,
                condition: "#pk = :p AND begins_with(#sk, :d)",
                values: HashMap::from([
                    (":p".to_owned(), s(service_pk(service))),
                    (":d".to_owned(), s(RECORD_PREFIX)),
                ]),
                newest_first,
                limit,
            })
            .await?;
        items
            .iter()
            .map(|i| parse(i, "deployment record", &self.table))
            .collect()
    }

    /// A page of the service's history: one `Query`, newest first, from below `page.before`.
    pub(super) async fn history_page(
        &self,
        service: &ServiceName,
        page: &Page,
    ) -> Result<HistoryPage> {
        let Some(before) = &page.before else {
            let records = self.records_of(service, true, Some(page.limit + 1)).await?;
            return Ok(HistoryPage::from_newest(records, page));
        };
        // BETWEEN includes its bound: read one more, and drop `before` itself.
        let items = self
            .query(KeyQuery {
                kind: ResourceKind::Deployment,
                index: None,
                condition: "#pk = :p AND #sk BETWEEN :lo AND :hi",
                values: HashMap::from([
                    (":p".to_owned(), s(service_pk(service))),
                    (":lo".to_owned(), s(RECORD_PREFIX)),
                    (":hi".to_owned(), s(record_sk(before))),
                ]),
                newest_first: true,
                limit: Some(page.limit + 2),
            })
            .await?;
        let mut records = Vec::with_capacity(items.len());
        for item in &items {
            let record: DeploymentRecord = parse(item, "deployment record", &self.table)?;
            if &record.id != before {
                records.push(record);
            }
        }
        Ok(HistoryPage::from_newest(records, page))
    }

    /// Unfinished records: a `Query` of the sparse `open` index, then each one read again
    /// from the table (consistently), since the index may lag behind it.
    pub(super) async fn open_records(
        &self,
        service: Option<&ServiceName>,
    ) -> Result<Vec<DeploymentRecord>> {
        let mut values = HashMap::from([(":o".to_owned(), s(OPEN))]);
        let condition = match service {
            Some(svc) => {
                values.insert(":s".to_owned(), s(format!("{svc}#")));
                "#opk = :o AND begins_with(#osk, :s)"
            }
            None => "#opk = :o",
        };
        let keys = self
            .query(KeyQuery {
                kind: ResourceKind::Deployment,
                index: Some(OPEN_INDEX),
                condition,
                values,
                newest_first: false,
                limit: None,
            })
            .await?;
        let mut records = Vec::with_capacity(keys.len());
        for key in keys {
            let key: Item = key
                .into_iter()
                .filter(|(k, _)| k == "pk" || k == "sk")
                .collect();
            let id = DeploymentId::new(text(&key, "sk").unwrap_or_default());
            if let Some(item) = self.get(key, &id).await? {
                let record: DeploymentRecord = parse(&item, "deployment record", &self.table)?;
                if !record.phase.is_terminal() {
                    records.push(record);
                }
            }
        }
        records.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(records)
    }
}
