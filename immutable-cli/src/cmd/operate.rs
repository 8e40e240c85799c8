//! Operating a deployment from any process that shares the store: `approve`, `reject`,
//! `promote`, `abort` (durable commands the runner picks up at its next poll), `status` and
//! `watch` (read from the store). None of them needs the backend's options.

use std::time::SystemTime;

use futures::StreamExt;
use immutable_core::{Command as EngineCommand, DeploymentId, Status, Waiting};

use crate::backend::Ctx;
use crate::exit::{Code, Failure, explain, human};
use crate::invocation::{Invocation, sh};
use crate::output::{CommandDoc, CommandWord, Document, core};

/// `immutable approve <id>`.
pub(crate) async fn approve(ctx: &Ctx, id: &str) -> Result<Code, Failure> {
    send(ctx, id, EngineCommand::Approve, CommandWord::Approved).await
}

/// `immutable reject <id>`.
pub(crate) async fn reject(ctx: &Ctx, id: &str, reason: &str) -> Result<Code, Failure> {
    let command = EngineCommand::Reject {
        reason: reason.to_owned(),
    };
    send(ctx, id, command, CommandWord::Rejected).await
}

/// `immutable promote <id>`.
pub(crate) async fn promote(ctx: &Ctx, id: &str) -> Result<Code, Failure> {
    send(ctx, id, EngineCommand::Promote, CommandWord::Promoted).await
}

/// `immutable abort <id>`.
pub(crate) async fn abort(ctx: &Ctx, id: &str, reason: &str) -> Result<Code, Failure> {
    let command = EngineCommand::Abort {
        reason: reason.to_owned(),
    };
    send(ctx, id, command, CommandWord::Aborted).await
}

async fn send(
    ctx: &Ctx,
    id: &str,
    command: EngineCommand,
    done: CommandWord,
) -> Result<Code, Failure> {
    let id = ctx.deployment(id).await?.id;
    let operator = ctx.operator();
    if let Err(e) = operator.command(&id, command).await {
        return Err(explain(e, ctx.store.as_ref(), &ctx.cli).await);
    }
    if ctx.json {
        Document::Command(CommandDoc {
            result: Code::Succeeded.word(),
            exit_code: Code::Succeeded as i32,
            deployment: id.to_string(),
            command: done,
        })
        .print();
    } else {
        let done = done.as_str();
        println!(
            "{done}: deployment {id} applies it at its next poll (or when it is resumed); \
             follow it with `{}`",
            ctx.cli.command("watch", &[&sh(id.as_str())])
        );
    }
    Ok(Code::Succeeded)
}

/// The status asked for: by id, else the service's latest deployment.
async fn status_for(ctx: &Ctx, id: Option<&str>) -> Result<Status, Failure> {
    let operator = ctx.operator();
    let found = match id {
        Some(id) => operator
            .status(&ctx.deployment(id).await?.id)
            .await
            .map(Some),
        None => operator.status_of(ctx.config.service()?).await,
    };
    match found {
        Ok(Some(status)) => Ok(status),
        Ok(None) => Err(Failure::refused(format!(
            "service {} has no deployment in the journal {}{}",
            ctx.config.service.as_deref().unwrap_or_default(),
            ctx.config.store,
            crate::config::store_hint(&ctx.config)
        ))),
        Err(e) => Err(explain(e, ctx.store.as_ref(), &ctx.cli).await),
    }
}

/// `immutable status [id]`.
pub(crate) async fn status(ctx: &Ctx, id: Option<&str>) -> Result<Code, Failure> {
    let status = status_for(ctx, id).await?;
    print_status(ctx, &status);
    Ok(Code::Succeeded)
}

/// `immutable watch [id]`: a line per change until the deployment ends; exits with the
/// deployment's code.
pub(crate) async fn watch(ctx: &Ctx, id: Option<&str>) -> Result<Code, Failure> {
    let first = status_for(ctx, id).await?;
    let operator = ctx.operator();
    let mut stream = Box::pin(operator.watch(&first.deployment));
    let mut last = None;
    while let Some(next) = stream.next().await {
        let status = match next {
            Ok(s) => s,
            Err(e) => return Err(explain(e, ctx.store.as_ref(), &ctx.cli).await),
        };
        print_status(ctx, &status);
        last = Some(status);
    }
    Ok(last
        .and_then(|s| s.outcome)
        .map_or(Code::Error, |o| Code::of(&o)))
}

fn print_status(ctx: &Ctx, status: &Status) {
    if ctx.json {
        let status = core(status);
        Document::Status { status }.print();
    } else {
        println!("{}", text(status, &ctx.cli));
    }
}

/// One paragraph on where a deployment is.
fn text(s: &Status, cli: &Invocation) -> String {
    let mut out = format!(
        "deployment {} of {}: {}, {} % on {}",
        s.deployment, s.service, s.phase, s.weight, s.image
    );
    if let Some((healthy, total)) = s.healthy {
        out.push_str(&format!(", {healthy}/{total} healthy"));
    }
    if let Some((index, step)) = &s.step {
        out.push_str(&format!(", step {index} ({step})"));
    }
    if let Some(w) = &s.waiting {
        out.push_str(&format!("\n  waiting: {}", waiting(w, &s.deployment, cli)));
    }
    if let Some(o) = &s.outcome {
        out.push_str(&format!("\n  {o}"));
    }
    if let Some(h) = &s.halt {
        out.push_str(&format!(
            "\n  {h}: no further weight change until it is lifted"
        ));
    }
    if !s.notifications.is_empty() {
        out.push_str(&notifications(&s.notifications));
    }
    if s.outcome.is_none() {
        match &s.lease {
            Some(l) => out.push_str(&format!(
                "\n  runner {} holds the lease for {}",
                l.holder,
                human(until(l.expires_at))
            )),
            None => out.push_str(&format!(
                "\n  no runner holds the lease: continue with `{}`",
                cli.command("resume", &[&sh(s.deployment.as_str())])
            )),
        }
    }
    out
}

/// A line with the counts, and one per delivery that failed.
fn notifications(outbox: &immutable_core::notify::Outbox) -> String {
    let (mut sent, mut pending, mut failed) = (0, 0, Vec::new());
    for (name, out, d) in outbox.deliveries() {
        match d {
            immutable_core::notify::Delivery::Sent { .. } => sent += 1,
            immutable_core::notify::Delivery::Failed { .. } => failed.push(format!(
                "\n  notification `{}` of \"{}\" {d}",
                name, out.event
            )),
            _ => pending += 1,
        }
    }
    let mut line = format!(
        "\n  notifications: {sent} delivered, {} failed, {pending} pending",
        failed.len()
    );
    for f in failed {
        line.push_str(&f);
    }
    line
}

fn until(t: SystemTime) -> std::time::Duration {
    t.duration_since(SystemTime::now()).unwrap_or_default()
}

fn waiting(w: &Waiting, id: &DeploymentId, cli: &Invocation) -> String {
    let id = sh(id.as_str());
    match w {
        Waiting::Launch { until: t } => format!("instances to run ({} left)", human(until(*t))),
        Waiting::Health { until: t } => format!("health checks ({} left)", human(until(*t))),
        Waiting::Pause { until: t } => format!("a pause ({} left)", human(until(*t))),
        Waiting::Bake { until: t } => format!("the bake ({} left)", human(until(*t))),
        Waiting::Approval {
            index,
            deadline,
            rolls_back,
        } => {
            let then = if *rolls_back {
                "then it rolls back"
            } else {
                "then it keeps waiting"
            };
            format!(
                "approval at step {index} ({} left, {then}): `{}` or `{}`",
                human(until(*deadline)),
                cli.command("approve", &[&id]),
                cli.command("reject", &[&id])
            )
        }
        _ => "something this version of immutable cannot name (upgrade it)".to_owned(),
    }
}
