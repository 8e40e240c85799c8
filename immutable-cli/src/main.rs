//! `immutable`: blue-green swaps of immutable server fleets from the command line, over the
//! AWS backend (EC2 + ALB), the local backend (processes behind HAProxy) or the Docker backend
//! (containers behind HAProxy).
//!
//! A thin layer over `immutable_core::Engine`: `plan`, `deploy`, `resume`, `status`, `watch`,
//! `approve`, `reject`, `promote`, `abort`, `rollback`, `gc`, `history`, `halt`, `lift-halt`,
//! `halts`, `adopt`, `restore`; and to set a service up, `image`, `proxy` and `init`. Commands
//! reach a deployment through the state store, so a deployment running in one process (a CI
//! job) is approved, aborted or halted from another (a terminal, a chat bot). Exit codes: see
//! [`cli::EXIT_CODES`].
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod backend;
mod cli;
mod cmd;
mod config;
mod dashboard;
mod exit;
mod invocation;
mod output;
mod progress;
mod report;
mod request;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::backend::Ctx;
use crate::cli::{Cli, Command, Global, Output};
use crate::config::Config;
use crate::exit::{Code, Failure};
use crate::invocation::Invocation;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    install_subscriber(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(Code::Error as u8);
        }
    };
    let json = cli.global.output == Output::Json;
    let code = match runtime.block_on(run(cli, Invocation::new(&matches))) {
        Ok(code) => code,
        Err(failure) => {
            failure.print(json);
            failure.code
        }
    };
    ExitCode::from(code as u8)
}

fn json_of(global: &Global) -> bool {
    global.output == Output::Json
}

/// Diagnostics on stderr: the SDK's warnings by default (other crates' errors only: the AWS
/// SDK warns, in its own words, of every source of settings it tried), `-v` the SDK's debug
/// and others' warnings, `-vv` trace, `-q` errors only; `RUST_LOG`, when set, wins.
fn install_subscriber(global: &Global) {
    const OURS: [&str; 5] = [
        "immutable",
        "immutable_core",
        "immutable_aws",
        "immutable_local",
        "immutable_docker",
    ];
    let filter = |ours: &str, others: &str| {
        let mut f = others.to_owned();
        for krate in OURS {
            f.push_str(&format!(",{krate}={ours}"));
        }
        f
    };
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error".to_owned(),
        (false, 0) => filter("warn", "error"),
        (false, 1) => filter("debug", "warn"),
        (false, _) => "trace".to_owned(),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()),
        )
        .init();
}

async fn run(cli: Cli, invocation: Invocation) -> Result<Code, Failure> {
    match cli.command {
        Command::DemoApp => return cmd::demo::demo_app().await,
        Command::Schema => {
            print!("{}", output::schema());
            return Ok(Code::Succeeded);
        }
        Command::Init(args) => {
            return cmd::init::init(cli.global.service.as_deref(), json_of(&cli.global), &args);
        }
        _ => {}
    }
    if let Command::Halt(cli::HaltArgs { scope, .. }) | Command::LiftHalt(scope) = &cli.command {
        cmd::halt::one_scope(&cli.global, scope)?;
    }
    let config = Config::load(&cli.global, cli.command.flags())?;
    // The catalog and proxy commands use no store: they neither open nor create one.
    match &cli.command {
        Command::Image { command } => {
            let out = cmd::image::Out {
                json: json_of(&cli.global),
            };
            return cmd::image::image(&config, out, command).await;
        }
        Command::Proxy { command } => {
            return cmd::proxy::proxy(&config, json_of(&cli.global), command).await;
        }
        Command::Notify {
            command: cli::NotifyCommand::Test,
        } => return cmd::notify::test(&config, json_of(&cli.global)).await,
        // It readies the store that every other command opens.
        Command::Store { command } => {
            return cmd::store::store(&config, json_of(&cli.global), command).await;
        }
        _ => {}
    }
    if let Command::DemoSetup {
        packer_manifest: Some(_),
        ..
    } = &cli.command
        && config.backend != Some(cli::BackendKind::Aws)
    {
        return Err(Failure::refused(
            "--packer-manifest registers an AMI: it is for --backend aws",
        ));
    }
    if let Command::Dashboard { args, .. } = &cli.command {
        // An address others reach without a token is refused before the store is opened.
        dashboard::check(args)?;
    }
    if let Command::Deploy { request, .. } = &cli.command {
        // Bad input is refused before the store is opened (and created): nothing is made.
        request::build(&config, request)?.validate()?;
    }
    let invocation = if config.store_from_root {
        invocation.naming_store(&config.store.to_string())
    } else {
        invocation
    };
    let ctx = Ctx::new(config, &cli.global, invocation).await?;
    match &cli.command {
        Command::Plan { request, .. } => cmd::plan::plan(&ctx, request).await,
        Command::Deploy { request, .. } => cmd::deploy::deploy(&ctx, request).await,
        Command::Resume { id, .. } => cmd::deploy::resume(&ctx, &id.id).await,
        Command::Status(args) => cmd::operate::status(&ctx, args.id.as_deref()).await,
        Command::Watch { id, .. } => cmd::operate::watch(&ctx, id.id.as_deref()).await,
        Command::Approve(args) => cmd::operate::approve(&ctx, &args.id).await,
        Command::Reject(args) => cmd::operate::reject(&ctx, &args.id, &args.reason).await,
        Command::Promote(args) => cmd::operate::promote(&ctx, &args.id).await,
        Command::Abort(args) => cmd::operate::abort(&ctx, &args.id, &args.reason).await,
        Command::Rollback { args, .. } => cmd::service::rollback(&ctx, args).await,
        Command::Gc { args, .. } => cmd::service::gc(&ctx, args).await,
        Command::History(args) => cmd::service::history(&ctx, args).await,
        Command::Report(args) => cmd::report::report(&ctx, args).await,
        Command::Halt(args) => cmd::halt::halt(&ctx, args).await,
        Command::LiftHalt(args) => cmd::halt::lift_halt(&ctx, args).await,
        Command::Halts => cmd::halt::halts(&ctx).await,
        Command::Adopt { args, .. } => cmd::adopt::adopt(&ctx, args).await,
        Command::Restore { args, .. } => cmd::restore::restore(&ctx, args).await,
        Command::DemoSetup {
            packer_manifest, ..
        } => cmd::demo::demo_setup(&ctx, packer_manifest.as_deref()).await,
        Command::Dashboard { args, .. } => dashboard::serve(ctx, args).await,
        Command::DemoApp
        | Command::Schema
        | Command::Init(_)
        | Command::Image { .. }
        | Command::Proxy { .. }
        | Command::Notify { .. }
        | Command::Store { .. } => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Property: whatever stands where a deployment id or a service name goes, parsing the
    /// command line never panics; what it accepts follows the grammars, and a deployment id it
    /// accepts is one word of a shell command as it is.
    #[test]
    #[allow(clippy::print_stdout)] // the tally, for the test's output
    fn hostile_ids_and_names_on_the_command_line_are_refused_or_safe() {
        use immutable_core::conformance::hostile::{Tally, hostile_string, runner};

        let tally = Tally::default();
        runner()
            .run(&(hostile_string(), 0..4usize), |(word, at)| {
                let args: Vec<&str> = match at {
                    0 => vec!["immutable", "--service", "web", "resume", &word],
                    1 => vec!["immutable", "--service", &word, "status"],
                    2 => vec!["immutable", "halt", "--service", &word, "--reason", "r"],
                    _ => vec!["immutable", "approve", &word],
                };
                let parsed = <Cli as clap::Parser>::try_parse_from(&args);
                if let Ok(cli) = &parsed {
                    if let Some(s) = &cli.global.service {
                        proptest::prop_assert!(immutable_core::ServiceName::check(s).is_ok());
                    }
                    if let Command::Resume { id: a, .. } | Command::Approve(a) = &cli.command {
                        proptest::prop_assert_eq!(crate::invocation::sh(&a.id), a.id.clone());
                    }
                }
                tally.record(parsed.is_ok());
                Ok(())
            })
            .unwrap();
        println!("{}", tally.summary("command-line ids and service names"));
        assert!(tally.refused() > 0);
    }
}
