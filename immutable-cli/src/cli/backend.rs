//! The option groups of the commands that call a backend or run an engine: which backend
//! (`--backend`), the AWS, local and Docker backends' options, and the engine's tuning. Each
//! command flattens only the groups it uses, so `approve ID --subnets x` is refused.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Deserialize;

use super::{BackendKind, FleetKind, duration};

/// Where the service runs, for the commands that call a backend: `--backend` and every
/// backend's options.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct BackendArgs {
    #[command(flatten)]
    pub(crate) choice: BackendChoice,
    #[command(flatten)]
    pub(crate) aws: AwsFlags,
    #[command(flatten)]
    pub(crate) local: LocalFlags,
    #[command(flatten)]
    pub(crate) docker: DockerFlags,
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

/// The local backend's options, which the Docker backend takes too: it keeps its catalog
/// and fleets under a root and routes through the same HAProxy.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Local and Docker backends")]
pub(crate) struct LocalFlags {
    /// The store root: images and fleets (process fleets on the local backend; the image
    /// catalog and container fleets' states on Docker), the router's state, the managed
    /// proxy and, by default, the journal.
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

/// The Docker backend's own options (with the root and HAProxy of [`LocalFlags`]).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Docker backend")]
pub(crate) struct DockerFlags {
    /// A Docker host as NAME=URL, URL being unix:///path/to/docker.sock or tcp://HOST:PORT
    /// (repeatable; instance n of a fleet runs on host n mod the number of hosts). HAProxy
    /// reaches a unix host's containers at 127.0.0.1 and a tcp host's at HOST. Default
    /// `local=$DOCKER_HOST` when DOCKER_HOST is set, else local=unix:///var/run/docker.sock.
    #[arg(long, value_name = "NAME=URL")]
    pub(crate) docker_host: Vec<String>,
    /// TLS for tcp:// hosts: the directory of ca.pem, cert.pem and key.pem, as Docker's
    /// DOCKER_CERT_PATH (the default when set). Without it, tcp:// hosts are plain HTTP.
    #[arg(long, value_name = "DIR", env = "DOCKER_CERT_PATH")]
    pub(crate) docker_tls_dir: Option<PathBuf>,
    /// How HAProxy reaches a container. Default host.
    #[arg(long, value_enum, value_name = "NETWORK")]
    pub(crate) docker_network: Option<DockerNetwork>,
    /// Memory limit of each container, as Docker's --memory: a number of bytes with an
    /// optional unit b, k, m or g (512m); at least 6m. Default none.
    #[arg(long, value_parser = memory, value_name = "SIZE")]
    pub(crate) memory: Option<u64>,
    /// CPU limit of each container, as Docker's --cpus: above 0, such as 0.5 (half a CPU).
    /// Default none.
    #[arg(long, value_parser = cpus, value_name = "CPUS")]
    pub(crate) cpus: Option<f64>,
}

/// How HAProxy reaches a Docker container (`immutable_docker::Network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DockerNetwork {
    /// The container shares its host's network; the app listens on 127.0.0.1:$PORT.
    Host,
    /// The container runs on Docker's bridge and $PORT is published on the host's address;
    /// the app listens on 0.0.0.0:$PORT in its container.
    Published,
}

/// A memory size as Docker's `--memory` takes it (`512m`: powers of 1024), at least
/// Docker's minimum; in bytes.
pub(crate) fn memory(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let scale: u64 = match unit {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => {
            return Err(format!(
                "`{s}`: expected a number of bytes with b, k, m or g (512m)"
            ));
        }
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("`{s}`: expected a number of bytes with b, k, m or g (512m)"))?;
    immutable_docker::Limits::none()
        .memory(bytes)
        .map_err(|_| format!("`{s}` is below Docker's minimum of 6 MiB (6m)"))?;
    Ok(bytes)
}

/// A number of CPUs as Docker's `--cpus` takes it (0.5), above 0.
pub(crate) fn cpus(s: &str) -> Result<f64, String> {
    let cpus: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of CPUs: give one above 0, such as 0.5"))?;
    immutable_docker::Limits::none()
        .cpus(cpus)
        .map_err(|_| format!("`{s}` is not a number of CPUs: give one above 0, such as 0.5"))?;
    Ok(cpus)
}

/// How often waits poll: taken by every command that waits on the backends or the store.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Engine")]
pub(crate) struct PollFlag {
    /// How often waits poll the backends (and `watch` the store). Default 5s (500ms on the
    /// local and Docker backends).
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
