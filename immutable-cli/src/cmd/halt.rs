//! `halt`, `lift-halt` and `halts`: the switch, kept in the store, that stops every process
//! sharing it from deploying a service (or any service). Like the commands to a deployment,
//! they need no backend options: a halt set from a laptop holds a deploy running in CI.

use immutable_core::{HaltScope, ServiceName};

use crate::backend::Ctx;
use crate::cli::{Global, HaltArgs, ScopeArgs};
use crate::exit::{Code, Failure, age, row, scope_row, scope_words};
use crate::output::{Document, HaltDoc, HaltsDoc, LiftHaltDoc};

/// `immutable halt [--service NAME|--all] --reason TEXT [--by NAME]`.
pub(crate) async fn halt(ctx: &Ctx, args: &HaltArgs) -> Result<Code, Failure> {
    let scope = scope(ctx, &args.scope)?;
    let by = args.by.clone().or_else(operator);
    let operator = ctx.operator_as(by);
    let halt = operator.halt(scope.clone(), args.reason.clone()).await?;
    if ctx.json {
        Document::Halt(HaltDoc {
            result: Code::Succeeded.word(),
            exit_code: Code::Succeeded as i32,
            halt: row(&halt),
        })
        .print();
    } else {
        println!(
            "{} halted by {}: {}. Running deployments hold (or roll back) at their next poll; \
             new ones are refused until `{}`",
            halt.scope,
            halt.by,
            halt.reason,
            ctx.cli.command("lift-halt", &scope_words(&scope))
        );
    }
    Ok(Code::Succeeded)
}

/// `immutable lift-halt [--service NAME|--all]`.
pub(crate) async fn lift_halt(ctx: &Ctx, args: &ScopeArgs) -> Result<Code, Failure> {
    let scope = scope(ctx, args)?;
    let lifted = ctx.operator().lift_halt(&scope).await?;
    if ctx.json {
        Document::LiftHalt(LiftHaltDoc {
            result: Code::Succeeded.word(),
            exit_code: Code::Succeeded as i32,
            scope: scope_row(&scope),
            lifted: lifted.as_ref().map(row),
        })
        .print();
        return Ok(Code::Succeeded);
    }
    match lifted {
        Some(h) => println!(
            "lifted the halt of {} (set by {} {} ago: {}); held deployments go on at their \
             next poll",
            h.scope,
            h.by,
            age(&h),
            h.reason
        ),
        None => println!("no halt of {scope} stood"),
    }
    Ok(Code::Succeeded)
}

/// `immutable halts [--service NAME]`.
pub(crate) async fn halts(ctx: &Ctx) -> Result<Code, Failure> {
    let service = match ctx.config.service.as_deref() {
        Some(name) => Some(ServiceName::new(name)?),
        None => None,
    };
    let halts = ctx.operator().halts(service.as_ref()).await?;
    if ctx.json {
        Document::Halts(HaltsDoc {
            service: service.as_ref().map(ToString::to_string),
            halts: halts.iter().map(row).collect(),
        })
        .print();
        return Ok(Code::Succeeded);
    }
    if halts.is_empty() {
        match &service {
            Some(s) => println!("no halt covers {s}"),
            None => println!("no halt stands"),
        }
    }
    for h in &halts {
        println!(
            "{:<24} by {:<20} {} ago ({})  {}",
            h.scope.to_string(),
            h.by,
            age(h),
            humantime::format_rfc3339_seconds(h.at),
            h.reason
        );
    }
    Ok(Code::Succeeded)
}

/// Refuses `--all` beside `--service` given before the subcommand (clap refuses it after).
pub(crate) fn one_scope(global: &Global, args: &ScopeArgs) -> Result<(), Failure> {
    match (&global.service, args.all) {
        (Some(service), true) => Err(Failure::refused(format!(
            "--all and --service {service} name different scopes: give one"
        ))),
        _ => Ok(()),
    }
}

/// The scope named: `--all`, or the service (`--service`, or the service file's).
fn scope(ctx: &Ctx, args: &ScopeArgs) -> Result<HaltScope, Failure> {
    if args.all {
        return Ok(HaltScope::All);
    }
    match ctx.config.service.as_deref() {
        Some(name) => Ok(HaltScope::service(name)?),
        None => Err(Failure::refused(
            "which service? pass --service NAME (or `service` in --service-file), or --all for \
             every service",
        )),
    }
}

/// The operator's name from the environment, if it gives one.
fn operator() -> Option<String> {
    ["USER", "LOGNAME"]
        .into_iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}
