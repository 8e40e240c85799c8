//! `plan`: what `deploy` would do, found with read calls only.

use std::fmt::Write as _;
use std::time::Duration;

use immutable_core::{Calls, PlannedDeployment, Refusal, Step};

use crate::backend::Ctx;
use crate::cli::RequestArgs;
use crate::exit::{Code, Failure, human, lease_left};
use crate::invocation::sh;
use crate::output::{Document, PlanDoc, PlanResult, core};
use crate::request;

/// `immutable plan`: exits 0 when `deploy` would run, 2 when it would be refused.
pub(crate) async fn plan(ctx: &Ctx, args: &RequestArgs) -> Result<Code, Failure> {
    let request = request::build(&ctx.config, args)?;
    let engine = ctx.reading_engine().await?;
    let plan = engine.plan(request).await?;
    let code = if plan.would_run() {
        Code::Succeeded
    } else {
        Code::Refused
    };
    let next = next_steps(ctx, &plan).await;
    if ctx.json {
        Document::Plan(PlanDoc {
            result: if plan.would_run() {
                PlanResult::WouldRun
            } else {
                PlanResult::Refused
            },
            exit_code: code as i32,
            plan: core(&plan),
            continue_with: next,
        })
        .print();
    } else {
        print!("{}", text(&plan));
        for line in next {
            println!("continue with: {line}");
        }
    }
    Ok(code)
}

/// The commands that clear the plan's refusals.
async fn next_steps(ctx: &Ctx, plan: &PlannedDeployment) -> Vec<String> {
    let mut next = Vec::new();
    for r in &plan.refusals {
        match r {
            Refusal::Unfinished { deployment, .. } => {
                next.push(ctx.cli.command("resume", &[&sh(deployment.as_str())]));
            }
            Refusal::Locked { deployment, .. } => {
                let left = match immutable_core::ServiceName::new(plan.service.clone()) {
                    Ok(s) => lease_left(ctx.store.as_ref(), &s).await,
                    Err(_) => None,
                };
                let when = left.map_or_else(String::new, |d| {
                    format!(" (if its runner died: its lease expires in {})", human(d))
                });
                let resume = ctx.cli.command("resume", &[&sh(deployment.as_str())]);
                next.push(format!("{resume}{when}"));
            }
            _ => {}
        }
    }
    next
}

fn text(plan: &PlannedDeployment) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "service {}", plan.service);
    match &plan.image {
        Some(i) => {
            let _ = writeln!(t, "image   {} ({})", i.id, i.name);
        }
        None => t.push_str("image   (does not resolve)\n"),
    }
    match &plan.blue {
        Some(b) => {
            let _ = writeln!(
                t,
                "replaces fleet {} of {} (target {})",
                b.fleet, b.image, b.target
            );
        }
        None if plan.would_run() => t.push_str("first deployment: no fleet serves now\n"),
        None => {}
    }
    if let Some(steps) = &plan.steps {
        t.push_str("steps:\n");
        for (i, s) in steps.iter().enumerate() {
            let _ = writeln!(t, "  {i}. {}", step_text(s));
        }
    }
    if let Some(eta) = &plan.eta {
        let most = eta.most.map_or_else(
            || "unknown (an approval gate that keeps waiting, or an undeclared drain time)".into(),
            human_d,
        );
        let _ = writeln!(t, "takes   at least {}, at most {most}", human_d(eta.least));
    }
    if let Some(b) = &plan.budget {
        t.push_str("provider calls:\n");
        for (phase, calls) in &b.phases {
            let _ = writeln!(t, "  {phase:<14} {}", calls_text(calls));
        }
        let _ = writeln!(t, "  {:<14} {}", "total", calls_text(&b.total));
        if !b.unknown.is_empty() {
            let _ = writeln!(t, "  not counted: {}", b.unknown.join(", "));
        }
    }
    if plan.would_run() {
        t.push_str("deploy would run\n");
    } else {
        t.push_str("deploy would be refused:\n");
        for r in &plan.refusals {
            let _ = writeln!(t, "  - {r}");
        }
    }
    t
}

fn human_d(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn calls_text(c: &Calls) -> String {
    match c.most {
        Some(m) if m == c.least => format!("{}", c.least),
        Some(m) => format!("{} to {m}", c.least),
        None => format!("at least {}", c.least),
    }
}

fn step_text(s: &Step) -> String {
    match s {
        Step::Shift { percent } => format!("shift {percent} % to the new fleet"),
        Step::Pause { duration } => format!("pause {}", human_d(*duration)),
        Step::Checks { names } => format!("checks {}", names.join(", ")),
        Step::Approval { timeout, .. } => format!("approval (timeout {})", human_d(*timeout)),
        Step::Preview => "preview".into(),
        other => other.to_string(),
    }
}
