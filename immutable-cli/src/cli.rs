//! The command line: the options every command takes (the service, its store, the output)
//! and one subcommand per operation, each taking only the option groups it uses.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

mod args;
mod backend;
mod flags;
mod setup;
mod store;
pub(crate) use args::{
    AdoptArgs, DashboardArgs, GcArgs, HaltArgs, HistoryArgs, IdArg, MaybeIdArg, ReasonArgs,
    ReportArgs, RestoreArgs, RollbackArgs, ScopeArgs,
};
pub(crate) use args::{duration, opt_duration, service_name};
pub(crate) use backend::{
    AwsFlags, BackendArgs, BackendChoice, DockerFlags, DockerNetwork, EngineFlags, LocalFlags,
    OnBackend, PollFlag, cpus, memory,
};
pub(crate) use flags::Flags;
pub(crate) use setup::{
    ImageCommand, ImportArgs, InitArgs, ProxyArgs, ProxyCommand, ProxyStartArgs, ProxyTable,
};
pub(crate) use store::StoreCommand;

/// The text after `--help`: the exit codes scripts branch on.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  succeeded (or the command did what it was asked)
  1  an error (a provider, the store, the network)
  2  refused: bad input, the service is locked or halted, an unfinished deployment must be
     resumed first, nothing to roll back, a command to a finished deployment, nothing to
     adopt; the message names the command that continues
  3  the deployment rolled back: the old fleet serves, nothing of the new one remains
  4  the deployment stopped without a way back: both fleets are kept (see `immutable status`)
  5  suspended (Ctrl-C or SIGTERM): the record is saved and the lease released; the message
     names the command that continues";

/// Blue-green swaps of immutable server fleets, on AWS (EC2 + ALB), on this machine
/// (processes behind HAProxy) or on Docker hosts (containers behind HAProxy).
#[derive(Debug, Parser)]
#[command(name = "immutable", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes: which service, where its deployments are journaled, how
/// results are printed. The options of a backend and of the engine belong to the commands
/// that use them.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Options of every command")]
pub(crate) struct Global {
    /// A TOML file describing the service (backend, store, deployment settings); flags
    /// override it. A command reads from it only what it uses.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) service_file: Option<PathBuf>,
    /// The service: 1 to 63 lowercase letters, digits, '-', '_' and '.', starting with a
    /// letter or digit. Default: `service` in --service-file.
    #[arg(long, global = true, value_name = "NAME", value_parser = service_name)]
    pub(crate) service: Option<String>,
    /// Where deployments are journaled and services locked: `file:<dir>`,
    /// `dynamodb:<table>` or `postgres://user@host:port/database` (the password from
    /// PGPASSWORD or a password file, ~/.pgpass or `?passfile=`; never shown). Default: `file:<root>/journal` when a local --root is given, else
    /// `file:$XDG_STATE_HOME/immutable/journal` (`~/.local/state/immutable/journal`); never
    /// the working directory.
    #[arg(long, global = true, value_name = "STORE")]
    pub(crate) store: Option<String>,
    /// `text` for people, `json` for scripts (the documents of `immutable-cli/docs/output.schema.json`).
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub(crate) output: Output,
    /// More diagnostics on stderr: -v debug, -vv trace (RUST_LOG, when set, wins).
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub(crate) verbose: u8,
    /// Errors only: no progress lines, no warnings (the result is still printed).
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
}

/// The backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BackendKind {
    /// EC2 AMIs, EC2 instances, an ALB listener.
    Aws,
    /// Artifact directories, OS processes, HAProxy.
    Local,
    /// Docker images, containers on one Docker host or several, HAProxy.
    Docker,
}

/// What an AWS fleet is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FleetKind {
    /// EC2 instances launched by the SDK, tagged as one fleet.
    #[default]
    Instances,
    /// One EC2 Auto Scaling group per fleet, its settings copied from the serving group.
    Asg,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// Lines and progress bars for people.
    Text,
    /// JSON: one document, or one object per line for `deploy`, `resume` and `watch`.
    Json,
}

/// The subcommands, each with the option groups it uses.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// What `deploy` would do, with read calls only: refusals, steps, ETA, API-call budget.
    Plan {
        #[command(flatten)]
        request: RequestArgs,
        #[command(flatten)]
        on: OnBackend,
    },
    /// Deploy an image, following it with progress bars until it ends.
    Deploy {
        #[command(flatten)]
        request: RequestArgs,
        #[command(flatten)]
        on: OnBackend,
    },
    /// Continue an unfinished deployment (after a crash, a kill or Ctrl-C).
    Resume {
        #[command(flatten)]
        id: IdArg,
        #[command(flatten)]
        on: OnBackend,
    },
    /// Where a deployment is: the service's latest, or one by id.
    Status(MaybeIdArg),
    /// Follow a deployment from the store until it ends.
    Watch {
        #[command(flatten)]
        id: MaybeIdArg,
        #[command(flatten)]
        poll: PollFlag,
    },
    /// Approve the current (or next) approval gate of a deployment.
    Approve(IdArg),
    /// Reject a deployment at its approval gate: it rolls back.
    Reject(ReasonArgs),
    /// Skip the remaining pauses, approval gates and bake of a deployment.
    Promote(IdArg),
    /// Roll a running deployment back at once.
    Abort(ReasonArgs),
    /// Go back to what served before the service's latest deployment.
    Rollback {
        #[command(flatten)]
        args: RollbackArgs,
        #[command(flatten)]
        on: OnBackend,
    },
    /// List (and with --remove, remove) the service's orphan fleets and targets.
    Gc {
        #[command(flatten)]
        args: GcArgs,
        #[command(flatten)]
        on: OnBackend,
    },
    /// The service's deployments, newest first.
    History(HistoryArgs),
    /// Draw one deployment (weights, healthy instances of both fleets, checks, operator
    /// actions, the rollback) on one time axis, into an SVG image or a standalone HTML
    /// report, for CI artifacts and incident reviews. Reads the store only.
    Report(ReportArgs),
    /// Halt the service (or with --all every service) in every process that shares the store:
    /// running deployments hold (or roll back) at their next poll, and new ones are refused
    /// (exit 2) until the halt is lifted. Rollbacks still run. Needs no backend options.
    Halt(HaltArgs),
    /// Lift the halt of the service (or with --all the one of every service): held deployments
    /// go on at their next poll, and deploys run again.
    LiftHalt(ScopeArgs),
    /// The halts that stand (with --service, those that cover it): who set each, why, when.
    Halts,
    /// Hand a fleet that serves without the SDK's tags (made by hand or by another tool) to
    /// the SDK: show what would be tagged, and with --apply tag it.
    Adopt {
        #[command(flatten)]
        args: AdoptArgs,
        #[command(flatten)]
        on: OnBackend,
    },
    /// Local and Docker backends: put the service's routing (with --service; else every service the
    /// router state directory holds) back into an HAProxy that restarted or reloaded and lost
    /// its servers; with --watch, keep doing it. `deploy`, `resume` and `rollback` do it
    /// themselves while they run.
    Restore {
        #[command(flatten)]
        args: RestoreArgs,
        #[command(flatten)]
        choice: BackendChoice,
        #[command(flatten)]
        local: LocalFlags,
        #[command(flatten)]
        docker: DockerFlags,
    },
    /// The service's images: list, show, label, retire, import (a directory on the local
    /// backend, a Docker image or `docker save` archive on Docker, the AMIs of a Packer
    /// manifest on AWS).
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Local and Docker backends: an HAProxy run for you under `<root>/proxy` (start,
    /// status, stop).
    Proxy {
        #[command(subcommand)]
        command: ProxyCommand,
    },
    /// Notifications: `notify test` sends a test message to each notifier of the service
    /// file's `[[notify]]` tables.
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// Write a commented service file for a backend, so that a first deploy is `immutable
    /// --service-file web.toml deploy --image v1`.
    Init(InitArgs),
    /// Build a demo world: on an AWS emulator a VPC, an ALB, a launch template and two AMIs;
    /// on the local backend two images of a demo app; on Docker two `FROM scratch` images of
    /// it, built on the first host.
    DemoSetup {
        #[command(flatten)]
        backend: BackendArgs,
        /// AWS: also register an untagged AMI, as a Packer build would, and write the
        /// manifest Packer's `manifest` post-processor would (for `image import
        /// --packer-manifest`).
        #[arg(long, value_name = "FILE")]
        packer_manifest: Option<PathBuf>,
    },
    /// A web dashboard over the store: services, deployments with their timeline, halts, live;
    /// with --actions, buttons that steer them (each needs the token printed at start).
    /// Backend options are needed only for its rollback button.
    Dashboard {
        #[command(flatten)]
        args: DashboardArgs,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// The demo app that `demo-setup` imports on the local and Docker backends (an HTTP
    /// server on 127.0.0.1:$PORT).
    #[command(hide = true)]
    DemoApp,
    /// The journal itself: `store migrate` creates or upgrades a PostgreSQL journal's
    /// schema (--store postgres://...).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// The JSON Schema of what `--output json` prints (`docs/output.schema.json`).
    #[command(hide = true)]
    Schema,
}

/// `immutable notify ...`.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum NotifyCommand {
    /// Send a test message to each notifier the service file configures, and say how each
    /// answered (exit 1 when one could not be reached).
    Test,
}

/// What to deploy.
#[derive(Debug, Clone, Args)]
pub(crate) struct RequestArgs {
    /// The image: an id (ami-..., img-..., sha256:...) or a name.
    #[arg(long)]
    pub(crate) image: String,
    #[command(flatten)]
    pub(crate) settings: DeploySettings,
}

/// How to deploy: flags, or the `[deploy]` table of the service file.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct DeploySettings {
    /// Instances in the new fleet. Default 2.
    #[arg(long)]
    pub(crate) capacity: Option<u32>,
    /// Healthy instances needed before traffic moves. Default: the capacity.
    #[arg(long)]
    pub(crate) min_healthy: Option<u32>,
    /// How long the new fleet may take to become healthy. Default 10m.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    #[serde(deserialize_with = "crate::cli::opt_duration")]
    pub(crate) health_timeout: Option<Duration>,
    /// How long the old fleet is kept after the switch. Default 15m.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    #[serde(deserialize_with = "crate::cli::opt_duration")]
    pub(crate) bake_time: Option<Duration>,
    /// How traffic moves. Default blue-green.
    #[arg(long, value_enum)]
    pub(crate) strategy: Option<StrategyKind>,
    /// Canary weights in percent (comma-separated), e.g. 10,50.
    #[arg(long, value_delimiter = ',')]
    pub(crate) weights: Vec<u32>,
    /// The percent a linear rollout adds at each step.
    #[arg(long)]
    pub(crate) linear_step: Option<u32>,
    /// The pause between canary or linear steps. Default 5m.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    #[serde(deserialize_with = "crate::cli::opt_duration")]
    pub(crate) pause: Option<Duration>,
    /// Add an approval gate before the first shift, waiting this long.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    #[serde(deserialize_with = "crate::cli::opt_duration")]
    pub(crate) approval_timeout: Option<Duration>,
    /// What an approval gate does when its time runs out. Default roll-back.
    #[arg(long, value_enum)]
    pub(crate) on_approval_timeout: Option<OnTimeoutKind>,
}

/// Strategy presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum StrategyKind {
    /// Preview, then 100 % at once.
    BlueGreen,
    /// Preview, then each of --weights with --pause between them, then 100 %.
    Canary,
    /// Preview, then --linear-step percent more every --pause.
    Linear,
}

/// What an approval timeout does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum OnTimeoutKind {
    /// Roll the deployment back.
    RollBack,
    /// Say so, and keep waiting.
    KeepWaiting,
}

#[cfg(test)]
mod tests;
