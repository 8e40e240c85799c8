//! `immutable adopt [--apply]`: a fleet that serves without the SDK's ownership tags
//! is shown (what would be tagged) and, with `--apply`, tagged as the service's fleet, so the
//! next `deploy` replaces it. The local backend cannot adopt (it answers "not supported").

use immutable_core::{AdoptMode, AdoptRefusal, Adoption, Error};

use crate::backend::Ctx;
use crate::cli::AdoptArgs;
use crate::exit::{Code, Failure, explain};

/// `immutable adopt [--apply]`.
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
            if let Some((command, args)) = &next {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                failure = failure.next(ctx.cli.command(command, &args));
            }
            return Err(failure);
        }
        Err(e) => return Err(explain(e, ctx.store.as_ref(), &ctx.cli).await),
    };
    if ctx.json {
        let adoption = crate::output::core(&adoption);
        crate::output::Document::Adopt { adoption }.print();
        return Ok(Code::Succeeded);
    }
    print_adoption(&adoption);
    if !adoption.applied() {
        println!(
            "nothing was tagged; continue with: {}",
            ctx.cli.command("adopt", &["--apply"])
        );
    }
    Ok(Code::Succeeded)
}

/// The command (and its arguments) that continues after a refusal, when there is one.
fn refusal_next(refusal: &AdoptRefusal) -> Option<(&'static str, Vec<String>)> {
    match refusal {
        AdoptRefusal::AlreadyManaged { .. }
        | AdoptRefusal::NothingServed
        | AdoptRefusal::NoLiveInstances { .. } => {
            Some(("deploy", vec!["--image".into(), "<image>".into()]))
        }
        AdoptRefusal::Unfinished { deployment, .. } => {
            Some(("resume", vec![crate::invocation::sh(deployment.as_str())]))
        }
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

    use crate::cli::{Cli, Command};

    #[test]
    fn adopt_takes_the_service_as_every_command_does_and_applies_only_when_asked() {
        let cli = Cli::try_parse_from(["immutable", "adopt", "--service", "web"]).unwrap();
        let Command::Adopt { args, .. } = cli.command else {
            panic!("not adopt")
        };
        assert_eq!(
            (cli.global.service.as_deref(), args.apply),
            (Some("web"), false)
        );
        assert!(Cli::try_parse_from(["immutable", "adopt", "web"]).is_err());
    }
}
