//! The dashboard's rollback: as `immutable rollback` does it, on the backend given at start.
//! A latest deployment that runs in another process is aborted through the store instead
//! (its runner rolls it back at its next poll).

use immutable_core::{Command, Error, RollbackMode, RollbackReport, ServiceName};

use super::error::Problem;
use crate::backend::Ctx;

/// Rolls `service` back as `who`; says what came of it.
pub(crate) async fn run(ctx: &Ctx, service: &ServiceName, who: String) -> Result<String, Problem> {
    let engine = ctx
        .engine_as(service.as_str(), who)
        .await
        .map_err(|f| Problem::Conflict(f.message.clone()))?;
    match engine
        .rollback_with(service.as_str(), RollbackMode::Auto)
        .await
    {
        Ok(RollbackReport::RoutedBack(r)) => Ok(format!(
            "{service}: routed back to the old fleet (deployment {}: {})",
            r.record.id, r.outcome
        )),
        Ok(RollbackReport::Redeployed(r)) => Ok(format!(
            "{service}: redeployed the previous image (deployment {}: {})",
            r.record.id, r.outcome
        )),
        Ok(RollbackReport::Stopped(r)) => Ok(format!(
            "{service}: stopped without a way back (deployment {}: {})",
            r.record.id, r.outcome
        )),
        Ok(_) => Ok(format!("{service}: rolled back")),
        Err(Error::NotRunningHere { deployment, .. }) => {
            let abort = Command::Abort {
                reason: "rollback requested from the dashboard".into(),
            };
            engine.command(&deployment, abort).await?;
            Ok(format!(
                "deployment {deployment} runs elsewhere: the abort is recorded, and its \
                 runner rolls it back at its next poll"
            ))
        }
        Err(e) => {
            tracing::warn!(service = %service, error = %e, "dashboard rollback failed");
            Err(e.into())
        }
    }
}
