//! `deploy` and `resume`: run a deployment in this process, with progress, until it ends or
//! a signal suspends it.

use std::future::Future;

use immutable_core::{DeploymentId, Engine, Error, Outcome, Report, Result};
use tokio::sync::watch;

use crate::backend::Ctx;
use crate::cli::RequestArgs;
use crate::exit::{Code, Failure, explain};
use crate::invocation::sh;
use crate::output::{Document, ResultDoc, core};
use crate::progress::{Progress, View};
use crate::request;

/// `immutable deploy`.
pub(crate) async fn deploy(ctx: &Ctx, args: &RequestArgs) -> Result<Code, Failure> {
    let request = request::build(&ctx.config, args)?;
    let engine = ctx.engine().await?;
    let view = view(ctx, request.bake_time);
    let progress = Progress::start(&engine, view, None);
    let run = engine.deploy(request);
    follow(ctx, &engine, run, progress).await
}

/// `immutable resume <id>`.
pub(crate) async fn resume(ctx: &Ctx, id: &str) -> Result<Code, Failure> {
    let record = ctx.deployment(id).await?;
    let id = record.id.clone();
    let engine = ctx.engine_for(record.service().as_str()).await?;
    let view = view(ctx, record.spec.bake_time);
    let progress = Progress::start(&engine, view, Some(id.clone()));
    let run = engine.resume(&id);
    follow(ctx, &engine, run, progress).await
}

fn view(ctx: &Ctx, bake: std::time::Duration) -> View {
    View {
        json: ctx.json,
        quiet: ctx.quiet,
        bake,
        cli: ctx.cli.clone(),
    }
}

/// Drives `run` to its end; on Ctrl-C or SIGTERM suspends it at its next safe point.
async fn follow(
    ctx: &Ctx,
    engine: &Engine,
    run: impl Future<Output = Result<Report>>,
    progress: Progress,
) -> Result<Code, Failure> {
    let mut id = progress.id.clone();
    tokio::pin!(run);
    let result = tokio::select! {
        result = &mut run => result,
        () = shutdown() => suspend(ctx, engine, &mut id, run).await,
    };
    progress.finish().await;
    let known = id.borrow().clone();
    match result {
        Ok(report) => Ok(print_report(ctx, &report)),
        Err(Error::Suspended { deployment, .. }) => Ok(print_suspended(ctx, &deployment)),
        Err(e) => {
            let mut failure = explain(e, ctx.store.as_ref(), &ctx.cli).await;
            if failure.next.is_none()
                && let Some(id) = known
            {
                failure = failure.next(ctx.cli.command("resume", &[&sh(id.as_str())]));
            }
            Err(failure)
        }
    }
}

/// Asks the engine to stop the deployment at its next safe point (record saved, lease
/// released), then waits for the run to return.
async fn suspend(
    ctx: &Ctx,
    engine: &Engine,
    id: &mut watch::Receiver<Option<DeploymentId>>,
    run: std::pin::Pin<&mut impl Future<Output = Result<Report>>>,
) -> Result<Report> {
    if !ctx.json {
        eprintln!("interrupted: stopping at the next safe point (interrupt again to quit now)");
    }
    let mut run = run;
    // Before its first event the deployment has no record yet: wait for it (planning is
    // short), unless the run ends first.
    let deployment = tokio::select! {
        result = &mut run => return result,
        known = id.wait_for(Option::is_some) => known.ok().and_then(|k| k.clone()),
    };
    if let Some(deployment) = &deployment {
        // Not running here any more means it just ended: its result is on its way.
        let _ = engine.suspend(deployment);
    }
    tokio::select! {
        result = &mut run => result,
        () = shutdown() => {
            let id = deployment.map_or_else(String::new, |d| sh(d.as_str()));
            eprintln!(
                "quit before a safe point: the service's lease lapses after its TTL; then \
                 continue with `{}`",
                ctx.cli.command("resume", &[&id])
            );
            std::process::exit(Code::Error as i32)
        }
    }
}

/// Ctrl-C or SIGTERM, whichever comes first.
pub(crate) async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn print_report(ctx: &Ctx, report: &Report) -> Code {
    let code = Code::of(&report.outcome);
    let rec = &report.record;
    if ctx.json {
        Document::Result(ResultDoc {
            result: code.word(),
            exit_code: code as i32,
            deployment: rec.id.to_string(),
            service: Some(rec.service().to_string()),
            outcome: Some(core(&report.outcome)),
            record: Some(core(rec)),
            continue_with: None,
        })
        .print();
        return code;
    }
    match &report.outcome {
        Outcome::Succeeded => println!(
            "deployment {} succeeded: fleet {} of {} serves",
            rec.id,
            rec.green
                .fleet
                .as_ref()
                .map_or_else(String::new, ToString::to_string),
            rec.image.id
        ),
        Outcome::RolledBack { .. } => println!(
            "deployment {} {}: the old fleet serves, nothing of the new one remains",
            rec.id, report.outcome
        ),
        other => println!(
            "deployment {} {other}; see `{}`",
            rec.id,
            ctx.cli.command("status", &[&sh(rec.id.as_str())])
        ),
    }
    code
}

fn print_suspended(ctx: &Ctx, deployment: &DeploymentId) -> Code {
    let next = ctx.cli.command("resume", &[&sh(deployment.as_str())]);
    if ctx.json {
        Document::Result(ResultDoc {
            result: Code::Suspended.word(),
            exit_code: Code::Suspended as i32,
            deployment: deployment.to_string(),
            service: None,
            outcome: None,
            record: None,
            continue_with: Some(next),
        })
        .print();
    } else {
        println!(
            "deployment {deployment} suspended: its record is saved and the service's lease \
             released"
        );
        println!("continue with: {next}");
    }
    Code::Suspended
}
