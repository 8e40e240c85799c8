//! Commands on a service as a whole: `rollback`, `gc`, `history`.

use std::time::SystemTime;

use futures::StreamExt;
use immutable_core::{
    Command as EngineCommand, DeploymentId, DeploymentRecord, Engine, Error, FleetId, GcMode,
    Outcome, Result as CoreResult, RollbackMode, RollbackReport, ServiceName, StateStore, TargetId,
};

use crate::backend::Ctx;
use crate::cli::{GcArgs, HistoryArgs, RollbackArgs};
use crate::exit::{Code, Failure, explain, human};
use crate::invocation::sh;
use crate::output::{Document, GcDoc, HistoryDoc, HistoryRow, RollbackDoc, core};
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
        Document::History(HistoryDoc {
            service: service.to_string(),
            deployments: records.iter().map(row).collect(),
        })
        .print();
        return Ok(Code::Succeeded);
    }
    if records.is_empty() {
        println!(
            "no deployment of {service} in the journal {}{}",
            ctx.config.store,
            crate::config::store_hint(&ctx.config)
        );
    }
    for r in &records {
        let age = SystemTime::now()
            .duration_since(r.created_at)
            .unwrap_or_default();
        let healthy = r.time_to_healthy().map_or_else(|| "-".to_owned(), human);
        println!(
            "{}  {:<13} {:<24} {:>4} %  healthy in {:<8} took {:<10} {} ago",
            r.id,
            r.phase.to_string(),
            r.image.name,
            r.weight,
            healthy,
            human(r.duration()),
            human(age),
        );
    }
    Ok(Code::Succeeded)
}

fn row(r: &DeploymentRecord) -> HistoryRow {
    HistoryRow {
        deployment: r.id.to_string(),
        phase: core(&r.phase),
        image: core(&r.image),
        weight: r.weight,
        outcome: core(&r.outcome()),
        created_at: core(&r.created_at),
        duration_ms: r.duration().as_millis() as u64,
        launch_to_healthy_ms: r.time_to_healthy().map(|d| d.as_millis() as u64),
    }
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
        quiet: ctx.quiet,
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
        _ => {
            return Err(Failure::error(
                "the engine answered with a kind of rollback this version of immutable cannot \
                 name (upgrade it)",
            ));
        }
    };
    if ctx.json {
        Document::Rollback(RollbackDoc {
            result: code.word(),
            exit_code: code as i32,
            how: how.to_owned(),
            deployment: report.record.id.to_string(),
            outcome: core(&report.outcome),
        })
        .print();
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
        .next(ctx.cli.command("resume", &[&sh(id.as_str())])));
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
        Document::Rollback(RollbackDoc {
            result: code.word(),
            exit_code: code as i32,
            how: "aborted the running deployment".to_owned(),
            deployment: id.to_string(),
            outcome: core(&outcome),
        })
        .print();
    } else if let Some(o) = &outcome {
        println!("deployment {id} {o}");
    }
    Ok(code)
}

/// `immutable gc [--remove | --remove-fleet ID... --remove-target ID...]`.
pub(crate) async fn gc(ctx: &Ctx, args: &GcArgs) -> Result<Code, Failure> {
    let service = ctx.config.service()?;
    let engine = ctx.engine().await?;
    let named = !(args.remove_fleet.is_empty() && args.remove_target.is_empty());
    let mode = match (args.remove, named) {
        (_, true) => GcMode::RemoveNamed {
            fleets: args
                .remove_fleet
                .iter()
                .map(|f| FleetId::new(f.as_str()))
                .collect(),
            targets: args
                .remove_target
                .iter()
                .map(|t| TargetId::new(t.as_str()))
                .collect(),
        },
        (true, false) => GcMode::Remove,
        (false, false) => GcMode::DryRun,
    };
    let report = match engine.gc_with(service, mode).await {
        Ok(r) => r,
        Err(Error::InvalidInput { field, reason, .. })
            if field == "fleets" || field == "targets" =>
        {
            let flag = if field == "fleets" {
                "--remove-fleet"
            } else {
                "--remove-target"
            };
            return Err(Failure::refused(format!("{flag}: {reason}")));
        }
        Err(e) => return Err(explain(e, ctx.store.as_ref(), &ctx.cli).await),
    };
    let ids = |v: &[FleetId]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    let tids = |v: &[TargetId]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    if ctx.json {
        Document::Gc(GcDoc {
            service: service.to_owned(),
            fleets: ids(&report.fleets),
            targets: tids(&report.targets),
            foreign_fleets: ids(&report.foreign_fleets),
            foreign_targets: tids(&report.foreign_targets),
            removed: report.removed,
            removed_fleets: ids(&report.removed_fleets),
            removed_targets: tids(&report.removed_targets),
        })
        .print();
        return Ok(Code::Succeeded);
    }
    let rows = [
        ("removed fleet ", ids(&report.removed_fleets)),
        ("removed target", tids(&report.removed_targets)),
        ("orphan fleet  ", ids(&report.fleets)),
        ("orphan target ", tids(&report.targets)),
        ("foreign fleet ", ids(&report.foreign_fleets)),
        ("foreign target", tids(&report.foreign_targets)),
    ];
    let removed: Vec<&String> = rows[..2].iter().flat_map(|(_, v)| v).collect();
    for (what, list) in &rows {
        for id in list
            .iter()
            .filter(|id| what.starts_with("removed") || !removed.contains(id))
        {
            println!("{what} {id}");
        }
    }
    if rows.iter().all(|(_, v)| v.is_empty()) {
        println!("{service}: no orphan or foreign fleet or target");
    }
    let orphans = !(report.fleets.is_empty() && report.targets.is_empty());
    if orphans && !report.removed {
        println!("continue with: {}", ctx.cli.command("gc", &["--remove"]));
    }
    if !report.foreign_fleets.is_empty() || !report.foreign_targets.is_empty() {
        println!(
            "foreign: their deployment is not in the journal {} (another store's, or a lost \
             record), so gc does not remove them by itself; if you are sure, name them: \
             {}",
            ctx.config.store,
            ctx.cli
                .command("gc", &["--remove-fleet", "ID", "--remove-target", "ID"])
        );
    }
    Ok(Code::Succeeded)
}
