//! What operators write beside the records: commands (one row each, never overwritten) and
//! halts (one row per scope).

use immutable_core::{
    CommandRecord, DeploymentId, Error, Halt, HaltScope, ResourceKind, Result, ServiceName,
};
use tokio_postgres::types::Json;

use crate::PostgresStore;
use crate::db::Count;
use crate::records::bodies;

impl PostgresStore {
    /// Inserts the command unless its id is taken: a second command of that id is
    /// [`Error::AlreadyExists`], the same command again (a retry) is a no-op.
    pub(crate) async fn append_command(&self, command: &CommandRecord) -> Result<()> {
        let db = &self.db;
        let doing = &db.doing("add", ResourceKind::Command, &command.id);
        let (d, id, body) = (
            command.deployment.as_str(),
            command.id.as_str(),
            &Json(command),
        );
        let written = db
            .retrying(doing, move |_| async move {
                db.execute(&db.sql.add_command, &[&d, &id, body], doing)
                    .await
            })
            .await?;
        if written == 1 {
            return Ok(());
        }
        let same = db
            .retrying(doing, move |_| async move {
                db.query(&db.sql.command_state, &[&d, &id, body], Count::Read, doing)
                    .await
            })
            .await?
            .first()
            .is_some_and(|r| r.get::<_, bool>(0));
        if same {
            Ok(())
        } else {
            Err(Error::already_exists(
                ResourceKind::Command,
                command.id.clone(),
            ))
        }
    }

    /// A deployment's commands, oldest first: one read of its rows, a poll.
    pub(crate) async fn read_commands(
        &self,
        deployment: &DeploymentId,
    ) -> Result<Vec<CommandRecord>> {
        let db = &self.db;
        let doing = &db.doing(
            "read the commands of",
            ResourceKind::Deployment,
            deployment.as_str(),
        );
        let d = deployment.as_str();
        db.retrying(doing, move |_| async move {
            let rows = db
                .query(&db.sql.commands, &[&d], Count::Poll, doing)
                .await?;
            bodies(&rows, doing)
        })
        .await
    }

    pub(crate) async fn put_halt(&self, halt: &Halt) -> Result<()> {
        let db = &self.db;
        let key = halt.scope.key();
        let doing = &db.doing("set", ResourceKind::Halt, &key);
        let (k, body) = (key.as_str(), &Json(halt));
        db.retrying(doing, move |_| async move {
            db.execute(&db.sql.set_halt, &[&k, body], doing).await
        })
        .await?;
        Ok(())
    }

    pub(crate) async fn delete_halt(&self, scope: &HaltScope) -> Result<Option<Halt>> {
        let db = &self.db;
        let key = scope.key();
        let doing = &db.doing("lift", ResourceKind::Halt, &key);
        let k = key.as_str();
        db.retrying(doing, move |_| async move {
            let rows = db.write_returning(&db.sql.lift_halt, &[&k], doing).await?;
            Ok(bodies(&rows, doing)?.pop())
        })
        .await
    }

    /// The halts that cover `service` (two keys: its own and every service's), or all: a
    /// poll when it is a service's.
    pub(crate) async fn read_halts(&self, service: Option<&ServiceName>) -> Result<Vec<Halt>> {
        let db = &self.db;
        let what = service.map_or("every service", ServiceName::as_str);
        let doing = &db.doing("read the halts of", ResourceKind::Halt, what);
        let key = service.map(|s| HaltScope::Service(s.clone()).key());
        let key = key.as_deref();
        db.retrying(doing, move |_| async move {
            let rows = match key {
                Some(k) => {
                    db.query(&db.sql.halts_of, &[&k], Count::Poll, doing)
                        .await?
                }
                None => db.query(&db.sql.halts_all, &[], Count::Read, doing).await?,
            };
            bodies(&rows, doing)
        })
        .await
    }
}
