//! `immutable adopt [SERVICE] [--apply]`: a fleet that serves without the SDK's ownership tags
//! is shown (what would be tagged) and, with `--apply`, tagged as the service's fleet, so the
//! next `deploy` replaces it. The local backend cannot adopt (it answers "not supported").

use immutable_core::{AdoptMode, AdoptRefusal, Adoption, Error};
use serde_json::json;

use crate::backend::Ctx;
use crate::cli::{AdoptArgs, Global};
use crate::exit::{Code, Failure, explain};

/// Puts the service named after `adopt` where every command reads it, refusing a second,
/// different name.
pub(crate) fn name_service(args: &AdoptArgs, global: &mut Global) -> Result<(), Failure> {
    match (&args.service, &global.service) {
        (Some(named), Some(flag)) if named != flag => Err(Failure::refused(format!(
            "`adopt {named}` and `--service {flag}` name different services; name one"
        ))),
        (Some(named), _) => {
            global.service = Some(named.clone());
            Ok(())
        }
        (None, _) => Ok(()),
    }
}

/// `immutable adopt [SERVICE] [--apply]`.
pub(crate) async fn adopt(ctx: &Ctx, args: &AdoptArgs) -> Result<Code, Failure> {
    let service = ctx.config.service()?;
    let engine = ctx.engine().await?;
    let mode = if args.apply {
        AdoptMode::Apply
    } else {
        AdoptMode::DryRun
    };
    let adoption = match engine.adopt(service, mode).await {
        Ok(a) => a,
        Err(Error::AdoptionRefused { service, refusal }) => {
            let next = refusal_next(&refusal);
            let mut failure = Failure::from(Error::AdoptionRefused { service, refusal });
            if let Some(next) = next {
                failure = failure.next(format!("{} {next}", ctx.cli));
            }
            return Err(failure);
        }
        Err(e) => return Err(explain(e, ctx.store.as_ref(), &ctx.cli).await),
    };
    if ctx.json {
        println!("{}", json!({ "type": "adopt", "adoption": adoption }));
        return Ok(Code::Succeeded);
    }
    print_adoption(&adoption);
    if !adoption.applied() {
        println!(
            "nothing was tagged; continue with: {} adopt --apply",
            ctx.cli
        );
    }
    Ok(Code::Succeeded)
}

/// The command that continues after a refusal, when there is one.
fn refusal_next(refusal: &AdoptRefusal) -> Option<String> {
    match refusal {
        AdoptRefusal::AlreadyManaged { .. }
        | AdoptRefusal::NothingServed
        | AdoptRefusal::NoLiveInstances { .. } => Some("deploy --image <image>".to_owned()),
        AdoptRefusal::Unfinished { deployment, .. } => Some(format!("resume {deployment}")),
        _ => None,
    }
}

fn print_adoption(a: &Adoption) {
    let (verb, tag) = if a.applied() {
        ("adopted", "tagged")
    } else {
        ("would adopt", "would tag")
    };
    let fleet = &a.fleet;
    let image = a.image.as_ref().map_or_else(
        || fleet.image.to_string(),
        |i| format!("{} ({})", i.id, i.name),
    );
    println!("{}: {verb} what serves it", a.service);
    println!("  {tag} target {}", a.target);
    println!(
        "  {tag} fleet  {} ({} instance(s) of image {image})",
        fleet.id,
        fleet.instances.len()
    );
    for i in &fleet.instances {
        println!("  {tag} instance {} ({})", i.id, i.state);
    }
    if a.applied() {
        println!(
            "the next deploy replaces this fleet and retires it (adoption {})",
            a.id
        );
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn adopt_takes_the_service_first_and_applies_only_when_asked() {
        let Command::Adopt(a) = parse(&["immutable", "adopt", "web"]).command else {
            panic!("not adopt")
        };
        assert_eq!((a.service.as_deref(), a.apply), (Some("web"), false));
        let mut cli = parse(&["immutable", "--service", "web", "adopt", "--apply"]);
        let Command::Adopt(a) = &cli.command else {
            panic!("not adopt")
        };
        assert_eq!((a.service.as_deref(), a.apply), (None, true));
        name_service(a, &mut cli.global).unwrap();
        assert_eq!(cli.global.service.as_deref(), Some("web"));
    }

    #[test]
    fn two_different_service_names_are_refused() {
        let mut cli = parse(&["immutable", "--service", "web", "adopt", "billing"]);
        let Command::Adopt(a) = cli.command else {
            panic!("not adopt")
        };
        let failure = name_service(&a, &mut cli.global).unwrap_err();
        assert_eq!(failure.code, Code::Refused);
        let mut cli = parse(&["immutable", "adopt", "billing"]);
        let Command::Adopt(a) = cli.command else {
            panic!("not adopt")
        };
        name_service(&a, &mut cli.global).unwrap();
        assert_eq!(cli.global.service.as_deref(), Some("billing"));
    }
}
