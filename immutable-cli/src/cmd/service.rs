//! Commands on a service as a whole: `rollback`, `gc`, `history`.

use std::time::SystemTime;

use futures::StreamExt;
use immutable_core::{
    Command as EngineCommand, DeploymentId, DeploymentRecord, Engine, Error, GcMode, Outcome,
    Result as CoreResult, RollbackMode, RollbackReport, ServiceName, StateStore,
};
use serde_json::json;

use crate::backend::Ctx;
use crate::cli::{GcArgs, HistoryArgs, RollbackArgs};
use crate::exit::{Code, Failure, explain, human};
use crate::progress::{Progress, View};

/// The service's deployments, newest first.
///
/// One place to swap for the store's paginated history once it has one.
pub(crate) async fn history_of(
    store: &dyn StateStore,
    service: &ServiceName,
    limit: usize,
) -> CoreResult<Vec<DeploymentRecord>> {
    // One bounded read per page: the cost does not grow with the service's history.
    let mut records = Vec::new();
    let mut page = Some(immutable_core::Page::first(
        limit.min(immutable_core::Page::MAX_LIMIT),
    )?);
    while let Some(p) = page.take().filter(|_| records.len() < limit) {
        let got = store.history(service, &p).await?;
        records.extend(got.records);
        page = got.next;
    }
    records.truncate(limit);
    Ok(records)
}

/// `immutable history`.
pub(crate) async fn history(ctx: &Ctx, args: &HistoryArgs) -> Result<Code, Failure> {
    let service = ServiceName::new(ctx.config.service()?)?;
    let records = history_of(ctx.store.as_ref(), &service, args.limit).await?;
    if ctx.json {
        let rows: Vec<_> = records.iter().map(row).collect();
        println!(
            "{}",
            json!({ "type": "history", "service": service.to_string(), "deployments": rows })
        );
        return Ok(Code::Succeeded);
    }
    if records.is_empty() {
        println!("no deployment of {service} yet");
    }
    for r in &records {
        let age = SystemTime::now()
            .duration_since(r.created_at)
            .unwrap_or_default();
        println!(
            "{}  {:<13} {:<24} {:>4} %  took {:<10} {} ago",
            r.id,
            r.phase.to_string(),
            r.image.name,
            r.weight,
            human(r.duration()),
            human(age),
        );
    }
    Ok(Code::Succeeded)
}

fn row(r: &DeploymentRecord) -> serde_json::Value {
    json!({
        "deployment": r.id.to_string(),
        "phase": r.phase,
        "image": r.image,
        "weight": r.weight,
        "outcome": r.outcome(),
        "created_at": r.created_at,
        "duration_ms": r.duration().as_millis() as u64,
    })
}

/// `immutable rollback [--redeploy]`.
pub(crate) async fn rollback(ctx: &Ctx, args: &RollbackArgs) -> Result<Code, Failure> {
    let service = ctx.config.service()?;
    let engine = ctx.engine().await?;
    let name = ServiceName::new(service)?;
    let bake = history_of(ctx.store.as_ref(), &name, 1)
        .await?
        .first()
        .map(|r| r.spec.bake_time)
        .unwrap_or_default();
    let view = View {
        json: ctx.json,
        bake,
        cli: ctx.cli.clone(),
    };
    let progress = Progress::start(&engine, view, None);
    let mode = if args.redeploy {
        RollbackMode::Redeploy
    } else {
        RollbackMode::Auto
    };
    let result = engine.rollback_with(service, mode).await;
    progress.finish().await;
    let report = match result {
        Ok(r) => r,
        Err(Error::NotRunningHere { deployment, .. }) if mode == RollbackMode::Auto => {
            return abort_elsewhere(ctx, &engine, &deployment).await;
        }
        Err(e) => return Err(explain(e, ctx.store.as_ref(), &ctx.cli).await),
    };
    let (how, report, code) = match &report {
        RollbackReport::RoutedBack(r) => ("routed back to the old fleet", r, Code::Succeeded),
        RollbackReport::Redeployed(r) => ("redeployed the previous image", r, Code::of(&r.outcome)),
        RollbackReport::Stopped(r) => ("stopped without a way back", r, Code::Stopped),
        other => return Err(Failure::error(format!("unexpected rollback: {other:?}"))),
    };
    if ctx.json {
        println!(
            "{}",
            json!({
                "type": "rollback",
                "result": code.word(),
                "exit_code": code as i32,
                "how": how,
                "deployment": report.record.id.to_string(),
                "outcome": report.outcome,
            })
        );
    } else {
        println!(
            "{service}: {how} (deployment {}: {})",
            report.record.id, report.outcome
        );
    }
    Ok(code)
}

/// Rolls back a deployment that runs in another process (or in none): the abort is written
/// to the store; with a live runner this waits until it has rolled back, without one it says
/// which command applies it.
async fn abort_elsewhere(ctx: &Ctx, engine: &Engine, id: &DeploymentId) -> Result<Code, Failure> {
    let abort = EngineCommand::Abort {
        reason: "rollback requested".into(),
    };
    if let Err(e) = engine.command(id, abort).await {
        return Err(explain(e, ctx.store.as_ref(), &ctx.cli).await);
    }
    let status = engine.status(id).await?;
    let runner_alive = status
        .lease
        .is_some_and(|l| l.deployment == *id && l.expires_at > SystemTime::now());
    if !runner_alive {
        return Err(Failure::refused(format!(
            "deployment {id} runs nowhere: the abort is recorded and applies when it is resumed"
        ))
        .next(format!("{} resume {id}", ctx.cli)));
    }
    if !ctx.json {
        println!("abort sent to deployment {id}, which runs elsewhere; waiting for its rollback");
    }
    let mut updates = Box::pin(engine.watch(id));
    let mut outcome = None;
    while let Some(next) = updates.next().await {
        outcome = next?.outcome;
    }
    let code = match &outcome {
        Some(Outcome::RolledBack { .. }) => Code::Succeeded,
        Some(o) => Code::of(o),
        None => Code::Error,
    };
    if ctx.json {
        println!(
            "{}",
            json!({ "type": "rollback", "result": code.word(), "exit_code": code as i32,
                    "how": "aborted the running deployment", "deployment": id.to_string(),
                    "outcome": outcome })
        );
    } else if let Some(o) = &outcome {
        println!("deployment {id} {o}");
    }
    Ok(code)
}

/// `immutable gc [--remove]`.
pub(crate) async fn gc(ctx: &Ctx, args: &GcArgs) -> Result<Code, Failure> {
    let service = ctx.config.service()?;
    let engine = ctx.engine().await?;
    let mode = if args.remove {
        GcMode::Remove
    } else {
        GcMode::DryRun
    };
    let report = match engine.gc_with(service, mode).await {
        Ok(r) => r,
        Err(e) => return Err(explain(e, ctx.store.as_ref(), &ctx.cli).await),
    };
    let fleets: Vec<String> = report.fleets.iter().map(ToString::to_string).collect();
    let targets: Vec<String> = report.targets.iter().map(ToString::to_string).collect();
    if ctx.json {
        println!(
            "{}",
            json!({ "type": "gc", "service": service, "fleets": fleets, "targets": targets,
                    "removed": report.removed })
        );
        return Ok(Code::Succeeded);
    }
    if fleets.is_empty() && targets.is_empty() {
        println!("{service}: no orphan fleet or target");
        return Ok(Code::Succeeded);
    }
    let verb = if report.removed { "removed" } else { "orphan" };
    for f in &fleets {
        println!("{verb} fleet  {f}");
    }
    for t in &targets {
        println!("{verb} target {t}");
    }
    if !report.removed {
        println!("continue with: {} gc --remove", ctx.cli);
    }
    Ok(Code::Succeeded)
}
