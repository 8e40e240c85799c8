//! The service file, and what the flags and the file say together (a flag wins).
//!
//! ```toml
//! service = "web"
//! backend = "aws"                # or "local", or "docker"
//! store = "dynamodb:deployments" # or "file:<dir>"; default <root>/journal or the user state dir
//!
//! [aws]
//! listener_arn = "arn:aws:elasticloadbalancing:..."
//! launch_template = "web"
//! subnets = ["subnet-0a1b", "subnet-2c3d"]
//! fleet = "asg"                  # or "instances" (the default)
//! min_size = 2                   # a first Auto Scaling group's limits
//! max_size = 10
//!
//! [engine]
//! lease_ttl = "60s"
//!
//! # On the local backend: [local] (root, haproxy_socket, ...) and [proxy], the managed
//! # proxy's entry points (port, preview_port, health_path); on Docker, [docker] (the same
//! # keys, and docker_host, memory, ...) and [proxy]. `immutable init` writes one.
//!
//! [[notify]]                     # repeatable: see config/notify.rs
//! name = "ops"
//! kind = "slack"                 # or "webhook", or "sns" (topic_arn = "arn:aws:sns:...")
//! url_env = "OPS_SLACK_WEBHOOK"  # the variable holding the address (a secret)
//!
//! [deploy]
//! capacity = 3
//! strategy = "canary"
//! weights = [10, 50]
//! pause = "5m"
//! approval_timeout = "30m"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use std::time::Duration;

use crate::cli::{AwsFlags, BackendKind, DeploySettings, Flags, Global, LocalFlags, ProxyTable};
use crate::exit::Failure;

mod docker;
mod merge;
mod notify;
mod postgres;

use docker::DockerTable;
pub(crate) use docker::{DockerConfig, HostSpec};
pub(crate) use merge::merge_deploy;
use merge::{merge_aws, merge_engine, merge_local};
pub(crate) use notify::{NotifyKind, NotifyTable};
pub(crate) use postgres::PgUrl;

/// A service described in TOML: the tables `[aws]`, `[local]`, `[docker]`, `[engine]` and
/// `[deploy]` take the flags of the same names, in snake case (`[docker]` the root and
/// HAProxy flags too, which the Docker backend shares with the local one); `[proxy]` takes
/// the managed proxy's ports and health path (`proxy start`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ServiceFile {
    service: Option<String>,
    backend: Option<BackendKind>,
    store: Option<String>,
    aws: AwsFlags,
    local: LocalFlags,
    docker: DockerTable,
    engine: EngineTable,
    deploy: DeploySettings,
    proxy: ProxyTable,
    notify: Vec<NotifyTable>,
}

/// The engine's settings: the `[engine]` table, under `--poll-interval`, `--lease-ttl`,
/// `--launch-timeout` and `--keep-images` of the commands that take them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct EngineTable {
    #[serde(deserialize_with = "crate::cli::opt_duration")]
    pub(crate) poll_interval: Option<Duration>,
    #[serde(deserialize_with = "crate::cli::opt_duration")]
    pub(crate) lease_ttl: Option<Duration>,
    #[serde(deserialize_with = "crate::cli::opt_duration")]
    pub(crate) launch_timeout: Option<Duration>,
    pub(crate) keep_images: Option<usize>,
}

/// Where deployments are journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreSpec {
    /// A `FileStore` directory.
    File(PathBuf),
    /// A `DynamoStore` table.
    Dynamo(String),
    /// A `PostgresStore`'s database.
    Postgres(PgUrl),
}

impl std::fmt::Display for StoreSpec {
    /// As `--store` takes it: `file:<dir>` or `dynamodb:<table>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSpec::File(dir) => write!(f, "file:{}", dir.display()),
            StoreSpec::Dynamo(table) => write!(f, "dynamodb:{table}"),
            StoreSpec::Postgres(url) => write!(f, "{url}"),
        }
    }
}

/// Flags and service file, merged.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) service: Option<String>,
    pub(crate) backend: Option<BackendKind>,
    pub(crate) store: StoreSpec,
    /// The store is the local backend's default, `<root>/journal`: the commands printed to
    /// run next name it, since the store-only commands take no `--root`.
    pub(crate) store_from_root: bool,
    pub(crate) aws: AwsFlags,
    /// The root and HAProxy: the local backend's, or the Docker backend's (from `[docker]`).
    pub(crate) local: LocalFlags,
    /// The Docker backend's hosts, network and limits.
    pub(crate) docker: DockerConfig,
    pub(crate) engine: EngineTable,
    /// The `[deploy]` table: defaults under the deploy flags.
    pub(crate) deploy: DeploySettings,
    /// The `[proxy]` table: the managed proxy's entry points for the service.
    pub(crate) proxy: ProxyTable,
    /// The `[[notify]]` tables: who is told about deployments.
    pub(crate) notify: Vec<NotifyTable>,
}

impl Config {
    /// Reads the service file, if any, under the options every command takes and the
    /// backend and engine options of this one.
    pub(crate) fn load(global: &Global, flags: Flags) -> Result<Config, Failure> {
        let file = match &global.service_file {
            Some(path) => read_service_file(path)?,
            None => ServiceFile::default(),
        };
        let backend = flags.backend.or(file.backend);
        let on_docker = backend == Some(BackendKind::Docker);
        let local = if on_docker {
            merge_local(flags.local, file.docker.local())
        } else {
            merge_local(flags.local, file.local)
        };
        let (docker, hosts_from_file) = docker::merge(flags.docker, file.docker.docker());
        // Checked before the store is opened (and created): bad input makes nothing.
        let docker = DockerConfig::new(&docker, hosts_from_file, on_docker)?;
        let (store, store_from_root) = match global.store.clone().or(file.store) {
            Some(s) => (parse_store(&s)?, false),
            None => {
                let store = default_store(backend, &local)?;
                warn_of_the_old_default(&store);
                let from_root = local.root.is_some() && backend != Some(BackendKind::Aws);
                (store, from_root)
            }
        };
        let engine = EngineTable {
            poll_interval: flags.poll.poll_interval,
            lease_ttl: flags.engine.lease_ttl,
            launch_timeout: flags.engine.launch_timeout,
            keep_images: flags.engine.keep_images,
        };
        Ok(Config {
            service: global.service.clone().or(file.service),
            backend,
            store,
            store_from_root,
            aws: merge_aws(flags.aws, file.aws),
            local,
            docker,
            engine: merge_engine(engine, file.engine),
            deploy: file.deploy,
            proxy: file.proxy,
            notify: file.notify,
        })
    }

    /// The service, which this command needs.
    pub(crate) fn service(&self) -> Result<&str, Failure> {
        self.service.as_deref().ok_or_else(|| {
            Failure::refused("which service? pass --service NAME, or `service` in --service-file")
        })
    }

    /// The backend, which this command needs.
    pub(crate) fn backend(&self) -> Result<BackendKind, Failure> {
        self.backend.ok_or_else(|| {
            Failure::refused(
                "which backend? pass --backend aws|local|docker, or `backend` in --service-file",
            )
        })
    }
}

/// A service file, its `service` checked against the name grammar.
pub(crate) fn read_service_file(path: &Path) -> Result<ServiceFile, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::refused(format!("cannot read {}: {e}", path.display())))?;
    let file = toml::from_str::<ServiceFile>(&text)
        .map_err(|e| Failure::refused(format!("{}: {e}", path.display())))?;
    if let Some(service) = &file.service {
        crate::cli::service_name(service)
            .map_err(|e| Failure::refused(format!("{}: `service`: {e}", path.display())))?;
    }
    for table in &file.notify {
        table
            .check()
            .map_err(|e| Failure::refused(format!("{}: {}", path.display(), e.message)))?;
    }
    Ok(file)
}

/// Where deployments are journaled when no store is named: beside the local or Docker
/// backend's images and fleets (`<root>/journal`), else in the user's state directory. Never relative
/// to the working directory, so that every command run for a service finds the same
/// journal wherever it is run from.
fn default_store(backend: Option<BackendKind>, local: &LocalFlags) -> Result<StoreSpec, Failure> {
    if backend != Some(BackendKind::Aws)
        && let Some(root) = &local.root
    {
        let root = std::path::absolute(root)
            .map_err(|e| Failure::refused(format!("--root {}: {e}", root.display())))?;
        return Ok(StoreSpec::File(root.join("journal")));
    }
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let state = std::env::var_os("XDG_STATE_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".local/state"))
        })
        .ok_or_else(|| {
            Failure::refused(
                "no default journal: neither XDG_STATE_HOME nor HOME is set; pass --store \
                 file:<dir> or --store dynamodb:<table>",
            )
        })?;
    Ok(StoreSpec::File(state.join("immutable").join("journal")))
}

/// Earlier versions journaled in `./.immutable` by default: say so when one is here and the
/// default now points elsewhere, since its unfinished deployments and leases are not seen.
fn warn_of_the_old_default(store: &StoreSpec) {
    let old = Path::new(".immutable");
    if old.join("deployments").is_dir() && *store != StoreSpec::File(old.into()) {
        eprintln!(
            "warning: ./.immutable holds a journal written by an earlier version's default; \
             this command uses {store}. Pass --store file:.immutable to use the old one (or \
             move its contents there)"
        );
    }
}

/// Where a store-only command might look instead, when it found nothing: the local
/// backend's journal is under its root.
pub(crate) fn store_hint(config: &Config) -> String {
    match (&config.local.root, &config.store) {
        (None, StoreSpec::File(_)) => " (the local and Docker backends journal in \
                                        <root>/journal: pass --store file:<root>/journal, or \
                                        the deploy's --store)"
            .into(),
        _ => String::new(),
    }
}

fn parse_store(s: &str) -> Result<StoreSpec, Failure> {
    if PgUrl::is_one(s) {
        return PgUrl::parse(s).map(StoreSpec::Postgres);
    }
    match s.split_once(':') {
        Some(("file", dir)) if !dir.is_empty() => Ok(StoreSpec::File(dir.into())),
        Some(("dynamodb", table)) if !table.is_empty() => Ok(StoreSpec::Dynamo(table.into())),
        _ => Err(Failure::refused(format!(
            "--store `{s}`: expected file:<dir>, dynamodb:<table> or \
             postgres://user@host:port/database"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_file_parses_with_durations_and_lists() {
        let file: ServiceFile = toml::from_str(
            r#"
            service = "web"
            backend = "aws"
            store = "dynamodb:deployments"
            [aws]
            listener_arn = "arn:l"
            subnets = ["a", "b"]
            [engine]
            lease_ttl = "5s"
            [deploy]
            strategy = "canary"
            weights = [10, 50]
            approval_timeout = "30m"
            on_approval_timeout = "keep-waiting"
            "#,
        )
        .unwrap();
        assert_eq!(file.backend, Some(BackendKind::Aws));
        assert_eq!(file.aws.subnets, ["a", "b"]);
        assert_eq!(file.engine.lease_ttl, Some(Duration::from_secs(5)));
        assert_eq!(file.deploy.weights, [10, 50]);
        assert_eq!(
            file.deploy.approval_timeout,
            Some(Duration::from_secs(1800))
        );
    }

    #[test]
    fn the_default_store_is_never_the_working_directory() {
        let local = LocalFlags {
            root: Some("/srv/immutable".into()),
            ..LocalFlags::default()
        };
        assert_eq!(
            default_store(Some(BackendKind::Local), &local).unwrap(),
            StoreSpec::File("/srv/immutable/journal".into())
        );
        assert_eq!(
            default_store(None, &local).unwrap(),
            StoreSpec::File("/srv/immutable/journal".into())
        );
        let StoreSpec::File(dir) = default_store(Some(BackendKind::Aws), &local).unwrap() else {
            panic!("a file store")
        };
        assert!(
            dir.is_absolute() && dir.ends_with("immutable/journal"),
            "{dir:?}"
        );
    }

    #[test]
    fn a_service_file_naming_a_bad_service_is_refused_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.toml");
        for bad in [".", "..", "Web", "web:preview"] {
            std::fs::write(&path, format!("service = {bad:?}\n")).unwrap();
            let e = read_service_file(&path).unwrap_err();
            assert!(e.message.contains("`service`"), "{}", e.message);
            assert!(e.message.contains("web.toml"), "{}", e.message);
        }
    }

    #[test]
    fn unknown_keys_and_bad_stores_are_refused() {
        assert!(toml::from_str::<ServiceFile>("[aws]\nlistener = \"x\"").is_err());
        assert!(parse_store("s3:bucket").is_err());
        assert_eq!(
            parse_store("file:/tmp/x").unwrap(),
            StoreSpec::File("/tmp/x".into())
        );
    }
}

#[cfg(test)]
mod hostile;
