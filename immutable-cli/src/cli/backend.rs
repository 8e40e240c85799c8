//! The option groups of the commands that call a backend or run an engine: which backend
//! (`--backend`), the AWS and local backends' options, and the engine's tuning. Each command
//! flattens only the groups it uses, so `approve ID --subnets x` is refused.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use super::{BackendKind, FleetKind, duration};

/// Where the service runs, for the commands that call a backend: `--backend` and both
/// backends' options.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct BackendArgs {
    #[command(flatten)]
    pub(crate) choice: BackendChoice,
    #[command(flatten)]
    pub(crate) aws: AwsFlags,
    #[command(flatten)]
    pub(crate) local: LocalFlags,
}

/// Which backend.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct BackendChoice {
    /// Where the service runs.
    #[arg(long, value_enum)]
    pub(crate) backend: Option<BackendKind>,
}

/// What a command that runs the engine on a backend takes: the backend, how often it polls,
/// and the engine's other settings.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct OnBackend {
    #[command(flatten)]
    pub(crate) backend: BackendArgs,
    #[command(flatten)]
    pub(crate) poll: PollFlag,
    #[command(flatten)]
    pub(crate) engine: EngineFlags,
}

/// The AWS backend's options.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "AWS backend")]
pub(crate) struct AwsFlags {
    /// AWS region; default from the AWS chain (AWS_REGION, profile).
    #[arg(long)]
    pub(crate) region: Option<String>,
    /// Send every AWS call here (an emulator); default AWS_ENDPOINT_URL, if set.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub(crate) endpoint_url: Option<String>,
    /// The ALB listener whose default action routes the service.
    #[arg(long, value_name = "ARN")]
    pub(crate) listener_arn: Option<String>,
    /// An ALB listener rule that routes the service (instead of a listener).
    #[arg(long, value_name = "ARN")]
    pub(crate) rule_arn: Option<String>,
    /// A second listener for preview steps.
    #[arg(long, value_name = "ARN")]
    pub(crate) preview_listener_arn: Option<String>,
    /// A launch template, by name or by id (lt-...).
    #[arg(long)]
    pub(crate) launch_template: Option<String>,
    /// The instance type, when there is no launch template (or to override it).
    #[arg(long)]
    pub(crate) instance_type: Option<String>,
    /// Subnets to spread instances over (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) subnets: Vec<String>,
    /// Security groups of new instances (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) security_groups: Vec<String>,
    /// The VPC of new target groups, for a first deployment (later ones copy the live group).
    #[arg(long)]
    pub(crate) vpc_id: Option<String>,
    /// The port instances serve on, for a first deployment. Default 80.
    #[arg(long)]
    pub(crate) port: Option<i32>,
    /// The health check path of new target groups, for a first deployment.
    #[arg(long)]
    pub(crate) health_check_path: Option<String>,
    /// What a fleet is: bare EC2 instances, or an Auto Scaling group (`asg`, which needs
    /// --launch-template). Default instances.
    #[arg(long, value_enum)]
    pub(crate) fleet: Option<FleetKind>,
    /// Minimum size of a first deployment's Auto Scaling group (later ones copy it).
    #[arg(long)]
    pub(crate) min_size: Option<i32>,
    /// Maximum size of a first deployment's Auto Scaling group (later ones copy it).
    #[arg(long)]
    pub(crate) max_size: Option<i32>,
    /// Leave each Auto Scaling fleet's launch template version in place when it is retired
    /// (for endpoints without DeleteLaunchTemplateVersions, such as moto).
    #[arg(long)]
    pub(crate) keep_template_versions: bool,
}

/// The local backend's options.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Local backend")]
pub(crate) struct LocalFlags {
    /// The store root of images and process fleets.
    #[arg(long, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,
    /// HAProxy's admin socket (stats socket ... level admin).
    #[arg(long, value_name = "PATH")]
    pub(crate) haproxy_socket: Option<PathBuf>,
    /// Where the router keeps each service's routing; default `<root>/router`.
    #[arg(long, value_name = "DIR")]
    pub(crate) router_state: Option<PathBuf>,
    /// How often HAProxy checks each instance's health. Default 500ms.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    #[serde(deserialize_with = "crate::cli::opt_duration")]
    pub(crate) health_check_interval: Option<Duration>,
}

/// How often waits poll: taken by every command that waits on the backends or the store.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Engine")]
pub(crate) struct PollFlag {
    /// How often waits poll the backends (and `watch` the store). Default 5s (500ms on the
    /// local backend).
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub(crate) poll_interval: Option<Duration>,
}

/// The engine's settings, for the commands that run it on a backend.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Engine")]
pub(crate) struct EngineFlags {
    /// How long a service lease outlives a dead runner. Default 60s.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub(crate) lease_ttl: Option<Duration>,
    /// How long new instances may take to reach running. Default 10m.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub(crate) launch_timeout: Option<Duration>,
    /// Images of the service kept by retention. Default 3.
    #[arg(long)]
    pub(crate) keep_images: Option<usize>,
}
