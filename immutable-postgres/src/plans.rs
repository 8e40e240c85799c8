//! The plans PostgreSQL chooses for the statements of a deployment's path: what shows that
//! none of them reads the history.

use immutable_core::{DeploymentId, ResourceKind, Result, ServiceName};

use crate::PostgresStore;

/// One statement of a deployment's path and the plan PostgreSQL chooses for it (`EXPLAIN`,
/// not run).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryPlan {
    /// What the statement does: `load`, `latest`, `unfinished`, ...
    pub statement: &'static str,
    /// The plan, as `EXPLAIN` prints it.
    pub plan: String,
}

impl QueryPlan {
    /// Whether the plan reads a whole table (a sequential scan).
    pub fn scans_a_table(&self) -> bool {
        self.plan.contains("Seq Scan")
    }
}

impl PostgresStore {
    /// The plans of the statements a deployment of `service` sends (each read and write of
    /// the records, its lease, its commands and halts), for the database as it is now:
    /// `EXPLAIN` of each, nothing run. On a journal of some size none should read a whole
    /// table ([`QueryPlan::scans_a_table`]); on a tiny one PostgreSQL may rightly prefer to.
    ///
    /// # Errors
    /// The connection's and the server's.
    pub async fn query_plans(&self, service: &ServiceName) -> Result<Vec<QueryPlan>> {
        let db = &self.db;
        let sql = &db.sql;
        let doing = db.doing(
            "explain the statements of",
            ResourceKind::Deployment,
            service.as_str(),
        );
        let s = service.as_str();
        let some_id = DeploymentId::generate();
        let id = some_id.as_str();
        let (v, limit, yes, body) = (1_i64, 21_i64, true, tokio_postgres::types::Json(()));
        let key = format!("service#{s}");
        let statements: Vec<(
            &'static str,
            &str,
            Vec<&(dyn tokio_postgres::types::ToSql + Sync)>,
        )> = vec![
            ("save", &sql.update_record, vec![&id, &v, &v, &yes, &body]),
            ("save refused", &sql.record_state, vec![&id, &body]),
            ("load", &sql.load, vec![&id]),
            ("latest", &sql.latest, vec![&s]),
            (
                "unfinished of the service",
                &sql.unfinished_service,
                vec![&s],
            ),
            ("unfinished", &sql.unfinished_all, vec![]),
            ("history", &sql.history_first, vec![&s, &limit]),
            ("history before", &sql.history_before, vec![&s, &id, &limit]),
            ("services", &sql.services_first, vec![&limit]),
            ("lease", &sql.read_lease, vec![&s]),
            ("renew lease", &sql.renew_lease, vec![&s, &id, &v]),
            ("commands", &sql.commands, vec![&id]),
            ("halts", &sql.halts_of, vec![&key]),
        ];
        let client = db.client(&doing).await?;
        let mut plans = Vec::with_capacity(statements.len());
        for (statement, text, params) in statements {
            let rows = client
                .query(&format!("EXPLAIN {text}"), &params)
                .await
                .map_err(|e| crate::error::db(e, &doing))?;
            let plan = rows
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n");
            plans.push(QueryPlan { statement, plan });
        }
        Ok(plans)
    }
}
