//! The arguments of the commands that steer one deployment or one service.

use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Deserializer};

/// A deployment id.
#[derive(Debug, Clone, Args)]
pub(crate) struct IdArg {
    /// The deployment's id (printed by `deploy`, listed by `history`). Its service is
    /// read from the store; --service, when given, must name the same one.
    #[arg(value_parser = deployment_id)]
    pub(crate) id: String,
}

/// An optional deployment id.
#[derive(Debug, Clone, Args)]
pub(crate) struct MaybeIdArg {
    /// The deployment's id; default the service's latest deployment.
    #[arg(value_parser = deployment_id)]
    pub(crate) id: Option<String>,
}

/// A deployment id and a reason.
#[derive(Debug, Clone, Args)]
pub(crate) struct ReasonArgs {
    /// The deployment's id.
    #[arg(value_parser = deployment_id)]
    pub(crate) id: String,
    /// Why, for the record.
    #[arg(long, default_value = "operator request")]
    pub(crate) reason: String,
}

/// How to roll back.
#[derive(Debug, Clone, Args)]
pub(crate) struct RollbackArgs {
    /// Deploy the previous image as a new fleet instead of routing back to the old one.
    #[arg(long)]
    pub(crate) redeploy: bool,
}

/// Garbage collection.
#[derive(Debug, Clone, Args)]
pub(crate) struct GcArgs {
    /// Remove the orphans: fleets and targets of deployments the store shows ended (without
    /// it, only list them). Foreign ones, whose deployment the store does not know, stay.
    #[arg(long, conflicts_with_all = ["remove_fleet", "remove_target"])]
    pub(crate) remove: bool,
    /// Remove this fleet and nothing else unnamed (repeatable): an orphan, or a foreign fleet
    /// you know to be abandoned, as `gc` lists them; never one that serves.
    #[arg(long, value_name = "ID")]
    pub(crate) remove_fleet: Vec<String>,
    /// Remove this target and nothing else unnamed (repeatable), likewise.
    #[arg(long, value_name = "ID")]
    pub(crate) remove_target: Vec<String>,
}

/// Putting a local service's routing back into HAProxy.
#[derive(Debug, Clone, Args)]
pub(crate) struct RestoreArgs {
    /// Keep watching, putting servers back within an interval of every HAProxy restart or
    /// reload, until interrupted (for a systemd unit, say).
    #[arg(long)]
    pub(crate) watch: bool,
    /// How often --watch looks. Default 250ms.
    #[arg(long, value_parser = duration, value_name = "DURATION", default_value = "250ms")]
    pub(crate) every: Duration,
}

/// Adoption.
#[derive(Debug, Clone, Args)]
pub(crate) struct AdoptArgs {
    /// Tag the serving target group, its instances and the fleet they form (without it,
    /// only show what would be tagged).
    #[arg(long)]
    pub(crate) apply: bool,
}

/// What a halt covers: the service, or every service.
#[derive(Debug, Clone, Args)]
pub(crate) struct ScopeArgs {
    /// Every service, instead of the one --service (or the service file) names.
    #[arg(long, conflicts_with = "service")]
    pub(crate) all: bool,
}

/// A halt to set.
#[derive(Debug, Clone, Args)]
pub(crate) struct HaltArgs {
    #[command(flatten)]
    pub(crate) scope: ScopeArgs,
    /// Why, for whoever finds the service halted.
    #[arg(long)]
    pub(crate) reason: String,
    /// Who halts it, as `halts` and refused deploys show. Default: $USER (without it, the
    /// host name and process id).
    #[arg(long, value_name = "NAME")]
    pub(crate) by: Option<String>,
}

/// History.
#[derive(Debug, Clone, Args)]
pub(crate) struct HistoryArgs {
    /// How many deployments to show.
    #[arg(long, default_value_t = 20)]
    pub(crate) limit: usize,
}

/// `immutable dashboard`: where it listens, whether it acts, who may act.
#[derive(Debug, Clone, Args)]
pub(crate) struct DashboardArgs {
    /// The address to listen on. An address other than loopback is refused without
    /// --token-file.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8480")]
    pub(crate) listen: std::net::SocketAddr,
    /// Show the buttons that approve, reject, promote, abort, roll back, halt and lift halts,
    /// and accept their requests (each needs the token). Without it the dashboard only reads.
    #[arg(long)]
    pub(crate) actions: bool,
    /// Read the token that actions need from this file (it is not printed); default a new
    /// random token, printed once on stderr at start.
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<std::path::PathBuf>,
    /// Also accept requests whose Host header names this host (a name behind a proxy, as
    /// `dash.example.com` or `dash.example.com:8443`); repeatable. The listen address,
    /// localhost, 127.0.0.1 and [::1] at the listen port are always accepted.
    #[arg(long, value_name = "HOST")]
    pub(crate) allowed_host: Vec<String>,
    /// How often the store is read for live updates.
    #[arg(long, value_parser = duration, value_name = "DURATION", default_value = "2s")]
    pub(crate) poll: Duration,
}

/// A service name that follows the grammar (`immutable_core::ServiceName`).
pub(crate) fn service_name(s: &str) -> Result<String, String> {
    immutable_core::ServiceName::check(s)
        .map(|()| s.to_owned())
        .map_err(|e| match e {
            immutable_core::Error::InvalidInput { reason, .. } => {
                format!("`{s}` is not a service name: it {reason}")
            }
            other => other.to_string(),
        })
}

/// A deployment id as ids are made: letters, digits, `-` and `_`.
pub(crate) fn deployment_id(s: &str) -> Result<String, String> {
    immutable_core::DeploymentId::parse(s)
        .map(|id| id.to_string())
        .map_err(|e| match e {
            immutable_core::Error::InvalidInput { reason, .. } => reason,
            other => other.to_string(),
        })
}

/// Parses `30s`, `5m`, `1h 30m`, `500ms`.
pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration like 30s or 5m: {e}"))
}

/// Reads `"30s"`, `"5m"` and the like in the service file.
pub(crate) fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    duration(&s).map(Some).map_err(serde::de::Error::custom)
}

/// `immutable report`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ReportArgs {
    /// The deployment's id (printed by `deploy`, listed by `history`).
    #[arg(value_parser = deployment_id)]
    pub(crate) id: String,
    /// `svg`: the timeline chart; `html`: a standalone page with the chart, the steps and the
    /// events, which opens offline.
    #[arg(long, value_enum, default_value = "html")]
    pub(crate) format: crate::output::ReportFormat,
    /// The file to write. Default: `immutable-report-<ID>.<svg|html>` in the current
    /// directory.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<std::path::PathBuf>,
}
