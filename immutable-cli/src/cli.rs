//! The command line: global options (where the service runs, where its deployments are
//! journaled) and one subcommand per operation.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

mod args;
pub(crate) use args::{
    AdoptArgs, GcArgs, HaltArgs, HaltsArgs, HistoryArgs, IdArg, MaybeIdArg, ReasonArgs,
    RestoreArgs, RollbackArgs, ScopeArgs,
};
pub(crate) use args::{duration, opt_duration, service_name};

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

/// Blue-green swaps of immutable server fleets, on AWS (EC2 + ALB) or on this machine
/// (processes behind HAProxy).
#[derive(Debug, Parser)]
#[command(name = "immutable", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every subcommand takes: they name the service and say where it runs.
#[derive(Debug, Clone, Args)]
pub(crate) struct Global {
    /// A TOML file describing the service (backend, store, deployment settings); flags
    /// override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) service_file: Option<PathBuf>,
    /// The service: 1 to 63 lowercase letters, digits, '-', '_' and '.', starting with a
    /// letter or digit.
    #[arg(long, global = true, value_parser = service_name)]
    pub(crate) service: Option<String>,
    /// Where the service runs.
    #[arg(long, global = true, value_enum)]
    pub(crate) backend: Option<BackendKind>,
    /// Where deployments are journaled and services locked: `file:<dir>` or
    /// `dynamodb:<table>`. Default: `file:<root>/journal` when a local --root is given, else
    /// `file:$XDG_STATE_HOME/immutable/journal` (`~/.local/state/immutable/journal`); never
    /// the working directory.
    #[arg(long, global = true, value_name = "STORE")]
    pub(crate) store: Option<String>,
    /// `text` for people, `json` for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub(crate) output: Output,
    #[command(flatten)]
    pub(crate) aws: AwsFlags,
    #[command(flatten)]
    pub(crate) local: LocalFlags,
    #[command(flatten)]
    pub(crate) engine: EngineFlags,
}

/// The backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BackendKind {
    /// EC2 AMIs, EC2 instances, an ALB listener.
    Aws,
    /// Artifact directories, OS processes, HAProxy.
    Local,
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

/// The AWS backend's options.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "AWS backend")]
pub(crate) struct AwsFlags {
    /// AWS region; default from the AWS chain (AWS_REGION, profile).
    #[arg(long, global = true)]
    pub(crate) region: Option<String>,
    /// Send every AWS call here (an emulator); default AWS_ENDPOINT_URL, if set.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub(crate) endpoint_url: Option<String>,
    /// The ALB listener whose default action routes the service.
    #[arg(long, global = true, value_name = "ARN")]
    pub(crate) listener_arn: Option<String>,
    /// An ALB listener rule that routes the service (instead of a listener).
    #[arg(long, global = true, value_name = "ARN")]
    pub(crate) rule_arn: Option<String>,
    /// A second listener for preview steps.
    #[arg(long, global = true, value_name = "ARN")]
    pub(crate) preview_listener_arn: Option<String>,
    /// A launch template, by name or by id (lt-...).
    #[arg(long, global = true)]
    pub(crate) launch_template: Option<String>,
    /// The instance type, when there is no launch template (or to override it).
    #[arg(long, global = true)]
    pub(crate) instance_type: Option<String>,
    /// Subnets to spread instances over (comma-separated).
    #[arg(long, global = true, value_delimiter = ',')]
    pub(crate) subnets: Vec<String>,
    /// Security groups of new instances (comma-separated).
    #[arg(long, global = true, value_delimiter = ',')]
    pub(crate) security_groups: Vec<String>,
    /// The VPC of new target groups, for a first deployment (later ones copy the live group).
    #[arg(long, global = true)]
    pub(crate) vpc_id: Option<String>,
    /// The port instances serve on, for a first deployment. Default 80.
    #[arg(long, global = true)]
    pub(crate) port: Option<i32>,
    /// The health check path of new target groups, for a first deployment.
    #[arg(long, global = true)]
    pub(crate) health_check_path: Option<String>,
    /// What a fleet is: bare EC2 instances, or an Auto Scaling group (`asg`, which needs
    /// --launch-template). Default instances.
    #[arg(long, global = true, value_enum)]
    pub(crate) fleet: Option<FleetKind>,
    /// Minimum size of a first deployment's Auto Scaling group (later ones copy it).
    #[arg(long, global = true)]
    pub(crate) min_size: Option<i32>,
    /// Maximum size of a first deployment's Auto Scaling group (later ones copy it).
    #[arg(long, global = true)]
    pub(crate) max_size: Option<i32>,
    /// Leave each Auto Scaling fleet's launch template version in place when it is retired
    /// (for endpoints without DeleteLaunchTemplateVersions, such as moto).
    #[arg(long, global = true)]
    pub(crate) keep_template_versions: bool,
}

/// The local backend's options.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Local backend")]
pub(crate) struct LocalFlags {
    /// The store root of images and process fleets.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,
    /// HAProxy's admin socket (stats socket ... level admin).
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) haproxy_socket: Option<PathBuf>,
    /// Where the router keeps each service's routing; default `<root>/router`.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) router_state: Option<PathBuf>,
    /// How often HAProxy checks each instance's health. Default 500ms.
    #[arg(long, global = true, value_parser = duration, value_name = "DURATION")]
    #[serde(deserialize_with = "crate::cli::opt_duration")]
    pub(crate) health_check_interval: Option<Duration>,
}

/// The engine's settings.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Engine")]
pub(crate) struct EngineFlags {
    /// How often waits poll the backends. Default 5s.
    #[arg(long, global = true, value_parser = duration, value_name = "DURATION")]
    #[serde(deserialize_with = "crate::cli::opt_duration")]
    pub(crate) poll_interval: Option<Duration>,
    /// How long a service lease outlives a dead runner. Default 60s.
    #[arg(long, global = true, value_parser = duration, value_name = "DURATION")]
    #[serde(deserialize_with = "crate::cli::opt_duration")]
    pub(crate) lease_ttl: Option<Duration>,
    /// How long new instances may take to reach running. Default 10m.
    #[arg(long, global = true, value_parser = duration, value_name = "DURATION")]
    #[serde(deserialize_with = "crate::cli::opt_duration")]
    pub(crate) launch_timeout: Option<Duration>,
    /// Images of the service kept by retention. Default 3.
    #[arg(long, global = true)]
    pub(crate) keep_images: Option<usize>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// What `deploy` would do, with read calls only: refusals, steps, ETA, API-call budget.
    Plan(RequestArgs),
    /// Deploy an image, following it with progress bars until it ends.
    Deploy(RequestArgs),
    /// Continue an unfinished deployment (after a crash, a kill or Ctrl-C).
    Resume(IdArg),
    /// Where a deployment is: the service's latest, or one by id.
    Status(MaybeIdArg),
    /// Follow a deployment from the store until it ends.
    Watch(MaybeIdArg),
    /// Approve the current (or next) approval gate of a deployment.
    Approve(IdArg),
    /// Reject a deployment at its approval gate: it rolls back.
    Reject(ReasonArgs),
    /// Skip the remaining pauses, approval gates and bake of a deployment.
    Promote(IdArg),
    /// Roll a running deployment back at once.
    Abort(ReasonArgs),
    /// Go back to what served before the service's latest deployment.
    Rollback(RollbackArgs),
    /// List (and with --remove, remove) the service's orphan fleets and targets.
    Gc(GcArgs),
    /// The service's deployments, newest first.
    History(HistoryArgs),
    /// Halt a service (or with --all every service) in every process that shares the store:
    /// running deployments hold (or roll back) at their next poll, and new ones are refused
    /// (exit 2) until the halt is lifted. Rollbacks still run. Needs no backend options.
    Halt(HaltArgs),
    /// Lift the halt of a service (or with --all the one of every service): held deployments
    /// go on at their next poll, and deploys run again.
    LiftHalt(ScopeArgs),
    /// The halts that stand (those that cover SERVICE, or every one): who set each, why, when.
    Halts(HaltsArgs),
    /// Hand a fleet that serves without the SDK's tags (made by hand or by another tool) to
    /// the SDK: show what would be tagged, and with --apply tag it.
    Adopt(AdoptArgs),
    /// Local backend: put the service's routing (with --service; else every service the
    /// router state directory holds) back into an HAProxy that restarted or reloaded and lost
    /// its servers; with --watch, keep doing it. `deploy`, `resume` and `rollback` do it
    /// themselves while they run.
    Restore(RestoreArgs),
    /// Build a demo world: on an AWS emulator a VPC, an ALB, a launch template and two AMIs;
    /// on the local backend two images of a demo app.
    DemoSetup,
    /// The demo app that `demo-setup --backend local` imports (an HTTP server on $PORT).
    #[command(hide = true)]
    DemoApp,
}

/// What to deploy.
#[derive(Debug, Clone, Args)]
pub(crate) struct RequestArgs {
    /// The image: an id (ami-..., img-...) or a name.
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
