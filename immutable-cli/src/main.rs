//! `immutable`: blue-green swaps of immutable server fleets from the command line, over the
//! AWS backend (EC2 + ALB) or the local backend (processes behind HAProxy).
//!
//! A thin layer over `immutable_core::Engine`: `plan`, `deploy`, `resume`, `status`, `watch`,
//! `approve`, `reject`, `promote`, `abort`, `rollback`, `gc`, `history`, `halt`, `lift-halt`,
//! `halts`, `adopt`. Commands reach a deployment through the state store, so a deployment
//! running in one process (a CI job) is approved, aborted or halted from another (a terminal, a
//! chat bot). Exit codes: see
//! [`cli::EXIT_CODES`].
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod backend;
mod cli;
mod cmd;
mod config;
mod exit;
mod progress;
mod request;

use std::process::ExitCode;

use clap::{ArgAction, CommandFactory, FromArgMatches, parser::ValueSource};

use crate::backend::Ctx;
use crate::cli::{Cli, Command, Output};
use crate::config::Config;
use crate::exit::{Code, Failure};

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
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
    let code = match runtime.block_on(run(cli, prefix(&matches))) {
        Ok(code) => code,
        Err(failure) => {
            failure.print(json);
            failure.code
        }
    };
    ExitCode::from(code as u8)
}

async fn run(mut cli: Cli, prefix: String) -> Result<Code, Failure> {
    if let Command::DemoApp = cli.command {
        return cmd::demo::demo_app().await;
    }
    if let Command::Adopt(args) = &cli.command {
        cmd::adopt::name_service(args, &mut cli.global)?;
    }
    let config = Config::load(&cli.global)?;
    if let Command::Deploy(args) = &cli.command {
        // Bad input is refused before the store is opened (and created): nothing is made.
        request::build(&config, args)?.validate()?;
    }
    let ctx = Ctx::new(config, cli.global.output == Output::Json, prefix).await?;
    match &cli.command {
        Command::Plan(args) => cmd::plan::plan(&ctx, args).await,
        Command::Deploy(args) => cmd::deploy::deploy(&ctx, args).await,
        Command::Resume(args) => cmd::deploy::resume(&ctx, &args.id).await,
        Command::Status(args) => cmd::operate::status(&ctx, args.id.as_deref()).await,
        Command::Watch(args) => cmd::operate::watch(&ctx, args.id.as_deref()).await,
        Command::Approve(args) => cmd::operate::approve(&ctx, &args.id).await,
        Command::Reject(args) => cmd::operate::reject(&ctx, &args.id, &args.reason).await,
        Command::Promote(args) => cmd::operate::promote(&ctx, &args.id).await,
        Command::Abort(args) => cmd::operate::abort(&ctx, &args.id, &args.reason).await,
        Command::Rollback(args) => cmd::service::rollback(&ctx, args).await,
        Command::Gc(args) => cmd::service::gc(&ctx, args).await,
        Command::History(args) => cmd::service::history(&ctx, args).await,
        Command::Halt(args) => cmd::halt::halt(&ctx, args).await,
        Command::LiftHalt(args) => cmd::halt::lift_halt(&ctx, args).await,
        Command::Halts(args) => cmd::halt::halts(&ctx, args).await,
        Command::Adopt(args) => cmd::adopt::adopt(&ctx, args).await,
        Command::Restore(args) => cmd::restore::restore(&ctx, args).await,
        Command::DemoSetup => cmd::demo::demo_setup(&ctx).await,
        Command::DemoApp => unreachable!("handled above"),
    }
}

/// `immutable` and the global options given on the command line (`--output` aside), so that
/// a printed command that continues (`<prefix> resume <id>`) reaches the same service through
/// the same backend and store. Options from the environment stay there.
fn prefix(matches: &clap::ArgMatches) -> String {
    let mut words = vec!["immutable".to_owned()];
    let command = Cli::command();
    for arg in command.get_arguments().filter(|a| a.is_global_set()) {
        let id = arg.get_id().as_str();
        if id == "output" || matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let Some(long) = arg.get_long() else { continue };
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            words.push(format!("--{long}"));
            continue;
        }
        let values: Vec<String> = matches
            .get_raw(id)
            .into_iter()
            .flatten()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let joined = values.join(&arg.get_value_delimiter().unwrap_or(' ').to_string());
        words.push(format!("--{long}"));
        words.push(exit::sh(&joined));
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_continuing_command_keeps_global_options_wherever_they_were_given() {
        let matches = Cli::command().get_matches_from([
            "immutable",
            "--backend",
            "aws",
            "deploy",
            "--image",
            "web-v2",
            "--subnets",
            "a,b",
            "--output",
            "json",
            "--listener-arn",
            "arn:aws:x/y z",
        ]);
        assert_eq!(
            prefix(&matches),
            "immutable --backend aws --listener-arn 'arn:aws:x/y z' --subnets a,b"
        );
    }

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
                    2 => vec!["immutable", "halt", &word, "--reason", "r"],
                    _ => vec!["immutable", "approve", &word],
                };
                let parsed = <Cli as clap::Parser>::try_parse_from(&args);
                if let Ok(cli) = &parsed {
                    if let Some(s) = &cli.global.service {
                        proptest::prop_assert!(immutable_core::ServiceName::check(s).is_ok());
                    }
                    if let Command::Resume(a) | Command::Approve(a) = &cli.command {
                        proptest::prop_assert_eq!(crate::exit::sh(&a.id), a.id.clone());
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
