//! Wave plans' records: the same versioned compare-and-swap as deployments, and a partial
//! index on the plans that have not ended.

use immutable_core::{Error, ResourceKind, Result, WaveId, WaveRecord, check_wave_version};
use tokio_postgres::types::{Json, ToSql};

use crate::PostgresStore;
use crate::db::Count;
use crate::records::{bodies, version};

impl PostgresStore {
    /// Saves `next` (its version bumped) if the stored version is the one before; a retried
    /// save that finds its own write reports success, as [`save_record`](Self::save_record).
    pub(crate) async fn save_plan(&self, next: &WaveRecord) -> Result<()> {
        let db = &self.db;
        let doing = &db.doing("save", ResourceKind::WavePlan, next.id.as_str());
        let id = next.id.as_str();
        let finished = next.state.is_terminal();
        let body = &Json(next);
        let (ours, new) = (version(next.version - 1), version(next.version));
        db.retrying(doing, move |retried| async move {
            let written = if next.version == 1 {
                let params: [&(dyn ToSql + Sync); 4] = [&id, &new, &finished, body];
                db.execute(&db.sql.insert_wave, &params, doing).await?
            } else {
                let params: [&(dyn ToSql + Sync); 5] = [&id, &ours, &new, &finished, body];
                db.execute(&db.sql.update_wave, &params, doing).await?
            };
            if written == 1 {
                return Ok(());
            }
            let Some(stored) = db
                .unwritten(&db.sql.wave_state, &[&id, body], new, retried, doing)
                .await?
            else {
                return Ok(());
            };
            let mut ours = next.clone();
            ours.version -= 1;
            Err(check_wave_version(stored, &ours)
                .err()
                .unwrap_or(Error::StaleWave {
                    wave: next.id.clone(),
                    stored: stored.unwrap_or_default(),
                    ours: ours.version,
                }))
        })
        .await
    }

    pub(crate) async fn load_plan(&self, id: &WaveId) -> Result<WaveRecord> {
        let db = &self.db;
        let doing = &db.doing("load", ResourceKind::WavePlan, id.as_str());
        let key = id.as_str();
        let found: Vec<WaveRecord> = db
            .retrying(doing, move |_| async move {
                let rows = db
                    .query(&db.sql.load_wave, &[&key], Count::Read, doing)
                    .await?;
                bodies(&rows, doing)
            })
            .await?;
        found
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found(ResourceKind::WavePlan, id.as_str()))
    }

    pub(crate) async fn open_plans(&self) -> Result<Vec<WaveRecord>> {
        let db = &self.db;
        let doing = &db.doing("list", ResourceKind::WavePlan, "the plans not ended");
        db.retrying(doing, move |_| async move {
            let rows = db
                .query(&db.sql.unfinished_waves, &[], Count::Read, doing)
                .await?;
            bodies(&rows, doing)
        })
        .await
    }
}
