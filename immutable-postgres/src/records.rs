//! Deployment records: the conditional save (one statement, retried safely), the reads a
//! deployment makes (each through an index, with a limit), retention and import.

use std::collections::BTreeSet;

use immutable_core::{
    DeploymentId, DeploymentRecord, Error, HistoryPage, Page, ResourceKind, Result, Retention,
    ServiceName, check_version,
};
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use crate::PostgresStore;
use crate::db::Count;
use crate::error::{Doing, unreadable};

/// Records deleted by one trim at most: a store that held many more than it keeps when
/// retention was turned on is trimmed over several successes.
pub(crate) const TRIM_BATCH: i64 = 100;

/// Records written by one statement of an import.
const IMPORT_BATCH: usize = 500;

/// The records in `rows`' `body` column.
pub(crate) fn bodies<T: serde::de::DeserializeOwned>(
    rows: &[Row],
    doing: &Doing<'_>,
) -> Result<Vec<T>> {
    rows.iter()
        .map(|r| {
            r.try_get::<_, Json<T>>(0)
                .map(|j| j.0)
                .map_err(|e| unreadable(e, doing))
        })
        .collect()
}

pub(crate) fn version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// Saves `next` (the record with its version bumped) if the stored version is the one
    /// before. After an attempt that failed with its connection, the next one first asks
    /// whether that attempt was committed all the same (the stored record is `next`, to the
    /// byte), so a retried save never reports its own write as a conflict.
    pub(crate) async fn save_record(&self, next: &DeploymentRecord) -> Result<()> {
        let db = &self.db;
        let doing = db.doing("save", ResourceKind::Deployment, next.id.as_str());
        let (id, service) = (next.id.as_str(), next.service().as_str());
        let finished = next.phase.is_terminal();
        let body = &Json(next);
        let doing = &doing;
        let (ours, new) = (version(next.version - 1), version(next.version));
        db.retrying(doing, move |retried| async move {
            let written = if next.version == 1 {
                let rows = db
                    .write_returning(
                        &db.sql.insert_record,
                        &[&id, &service, &new, &finished, body],
                        doing,
                    )
                    .await?;
                rows.first().map_or(0, |r| r.get::<_, i64>(0))
            } else {
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
                    [&id, &ours, &new, &finished, body];
                db.execute(&db.sql.update_record, &params, doing)
                    .await
                    .map(|n| n as i64)?
            };
            if written == 1 {
                return Ok(());
            }
            let Some(stored) = db
                .unwritten(&db.sql.record_state, &[&id, body], new, retried, doing)
                .await?
            else {
                return Ok(());
            };
            let mut ours = next.clone();
            ours.version -= 1;
            Err(check_version(stored, &ours)
                .err()
                .unwrap_or(Error::StaleVersion {
                    deployment: next.id.clone(),
                    stored: stored.unwrap_or_default(),
                    ours: ours.version,
                }))
        })
        .await
    }

    /// Deletes the service's finished records older than `succeeded` beyond the newest kept:
    /// a read of its count, then (when it is above what is kept) one statement that deletes
    /// up to [`TRIM_BATCH`] of the oldest, their commands, and lowers the count.
    pub(crate) async fn trim(&self, service: &ServiceName, succeeded: &DeploymentId) -> Result<()> {
        let Some(keep) = self.retention.kept() else {
            return Ok(());
        };
        let db = &self.db;
        let doing = db.doing(
            "trim the history of",
            ResourceKind::Deployment,
            service.as_str(),
        );
        let name = service.as_str();
        let count = format!("SELECT records FROM {}.services WHERE name = $1", db.quoted);
        let (doing, count) = (&doing, &count);
        let total = db
            .retrying(doing, move |_| async move {
                let rows = db.query(count, &[&name], Count::Read, doing).await?;
                Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0)))
            })
            .await?;
        let excess = Retention::keep(keep).excess(usize::try_from(total).unwrap_or_default());
        if excess == 0 {
            return Ok(());
        }
        let limit = i64::try_from(excess).unwrap_or(i64::MAX).min(TRIM_BATCH);
        let succeeded = succeeded.as_str();
        db.retrying(doing, move |_| async move {
            db.write_returning(&db.sql.trim, &[&name, &succeeded, &limit], doing)
                .await
        })
        .await?;
        Ok(())
    }

    /// Reads records with `sql`, retried.
    pub(crate) async fn read_records(
        &self,
        sql: &str,
        params: crate::db::Params<'_>,
        doing: &Doing<'_>,
    ) -> Result<Vec<DeploymentRecord>> {
        let db = &self.db;
        db.retrying(doing, move |_| async move {
            let rows = db.query(sql, params, Count::Read, doing).await?;
            bodies(&rows, doing)
        })
        .await
    }

    pub(crate) async fn load_record(&self, id: &DeploymentId) -> Result<DeploymentRecord> {
        let doing = self.db.doing("load", ResourceKind::Deployment, id.as_str());
        let id_text = id.as_str();
        self.read_records(&self.db.sql.load, &[&id_text], &doing)
            .await?
            .pop()
            .ok_or_else(|| Error::not_found(ResourceKind::Deployment, id.to_string()))
    }

    pub(crate) async fn records(
        &self,
        service: Option<&ServiceName>,
        unfinished: bool,
    ) -> Result<Vec<DeploymentRecord>> {
        let sql = &self.db.sql;
        let what = service.map_or("every service", ServiceName::as_str);
        let doing = self.db.doing("list", ResourceKind::Deployment, what);
        match (service.map(ServiceName::as_str), unfinished) {
            (None, false) => self.read_records(&sql.list_all, &[], &doing).await,
            (None, true) => self.read_records(&sql.unfinished_all, &[], &doing).await,
            (Some(s), false) => self.read_records(&sql.list_service, &[&s], &doing).await,
            (Some(s), true) => {
                self.read_records(&sql.unfinished_service, &[&s], &doing)
                    .await
            }
        }
    }

    pub(crate) async fn newest(&self, service: &ServiceName) -> Result<Option<DeploymentRecord>> {
        let doing = self.db.doing(
            "read the latest of",
            ResourceKind::Deployment,
            service.as_str(),
        );
        let s = service.as_str();
        Ok(self
            .read_records(&self.db.sql.latest, &[&s], &doing)
            .await?
            .pop())
    }

    /// One page, newest first: `limit + 1` records at most, the one past the page telling
    /// whether there is more.
    pub(crate) async fn history_page(
        &self,
        service: &ServiceName,
        page: &Page,
    ) -> Result<HistoryPage> {
        let doing = self.db.doing(
            "read the history of",
            ResourceKind::Deployment,
            service.as_str(),
        );
        let (s, limit) = (service.as_str(), page.limit as i64 + 1);
        let sql = &self.db.sql;
        let records = match &page.before {
            None => {
                self.read_records(&sql.history_first, &[&s, &limit], &doing)
                    .await?
            }
            Some(before) => {
                let before = before.as_str();
                self.read_records(&sql.history_before, &[&s, &before, &limit], &doing)
                    .await?
            }
        };
        Ok(HistoryPage::from_newest(records, page))
    }

    pub(crate) async fn service_names(
        &self,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> Result<Vec<ServiceName>> {
        let db = &self.db;
        let doing = db.doing("list the services of", ResourceKind::Deployment, &db.schema);
        let limit = limit as i64;
        let after = after.map(ServiceName::as_str);
        let doing = &doing;
        let rows = db
            .retrying(doing, move |_| async move {
                match after {
                    None => {
                        db.query(&db.sql.services_first, &[&limit], Count::Read, doing)
                            .await
                    }
                    Some(a) => {
                        db.query(&db.sql.services_after, &[&a, &limit], Count::Read, doing)
                            .await
                    }
                }
            })
            .await?;
        rows.iter()
            .map(|r| ServiceName::new(r.get::<_, String>(0)))
            .collect()
    }

    /// Writes `records` as they are (versions unchanged, a record of the same id replaced),
    /// 500 per statement, then recounts each service written to (a count of its records
    /// through the service index). For seeding history and copying a journal (from a
    /// [`FileStore`](immutable_core::FileStore), say): not for records a runner may be
    /// advancing meanwhile.
    ///
    /// Ends with `ANALYZE` of the records' table, so that the planner knows of them at once.
    ///
    /// # Errors
    /// The connection's and the server's; a batch that failed is not applied (each is one
    /// statement), the batches before it are.
    pub async fn import(&self, records: &[DeploymentRecord]) -> Result<()> {
        let db = &self.db;
        let doing = &db.doing("import", ResourceKind::Deployment, &db.schema);
        for chunk in records.chunks(IMPORT_BATCH) {
            let ids: Vec<&str> = chunk.iter().map(|r| r.id.as_str()).collect();
            let services: Vec<&str> = chunk.iter().map(|r| r.service().as_str()).collect();
            let versions: Vec<i64> = chunk.iter().map(|r| version(r.version)).collect();
            let finished: Vec<bool> = chunk.iter().map(|r| r.phase.is_terminal()).collect();
            let bodies: Vec<Json<&DeploymentRecord>> = chunk.iter().map(Json).collect();
            let columns = (&ids, &services, &versions, &finished, &bodies);
            db.retrying(doing, move |_| async move {
                let (ids, services, versions, finished, bodies) = columns;
                db.write_returning(
                    &db.sql.import,
                    &[ids, services, versions, finished, bodies],
                    doing,
                )
                .await
            })
            .await?;
        }
        let services: BTreeSet<&str> = records.iter().map(|r| r.service().as_str()).collect();
        for service in services {
            db.retrying(doing, move |_| async move {
                db.execute(&db.sql.recount, &[&service], doing).await
            })
            .await?;
        }
        // So the planner knows the rows at once, rather than at autovacuum's next pass.
        let analyze = format!("ANALYZE {}.deployments", db.quoted);
        if let Err(error) = db.execute(&analyze, &[], doing).await {
            tracing::warn!(%error, "could not analyze the imported records");
        }
        Ok(())
    }
}
