//! From the configuration to an engine: the backend's three traits, the store, the settings.

mod aws;
mod catalog;
mod docker;
mod local;
mod notify;
mod routing;

use std::sync::Arc;

use immutable_aws::{AwsClients, AwsConfig, DynamoStore};
use immutable_core::{
    DeploymentId, DeploymentRecord, Engine, FileStore, Operator, Settings, StateStore,
};

use crate::cli::{AwsFlags, BackendKind, Global, Output};
use crate::config::{Config, StoreSpec};
use crate::exit::Failure;
use crate::invocation::Invocation;

pub(crate) use aws::{demo_packer as aws_demo_packer, demo_setup as aws_demo_setup};
pub(crate) use catalog::{Catalog, users};
pub(crate) use docker::demo_setup as docker_demo_setup;
pub(crate) use local::demo_setup as local_demo_setup;
pub(crate) use notify::notifiers;
pub(crate) use routing::{instances, proxy_dir, router as haproxy_router, router_state};

/// How often waits poll on the local and Docker backends when no --poll-interval is given.
const LOCAL_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// What every command works with.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) config: Config,
    /// `--output json`.
    pub(crate) json: bool,
    /// `-q`: no progress lines.
    pub(crate) quiet: bool,
    /// This invocation, to print the commands that continue.
    pub(crate) cli: Invocation,
    pub(crate) store: Arc<dyn StateStore>,
    /// The local and Docker backends' routers keep HAProxy's servers restored while the
    /// command runs.
    guards: std::sync::Mutex<Vec<immutable_local::RestoreGuard>>,
}

impl Ctx {
    /// Opens the store.
    pub(crate) async fn new(
        config: Config,
        global: &Global,
        cli: Invocation,
    ) -> Result<Ctx, Failure> {
        let store: Arc<dyn StateStore> = match &config.store {
            StoreSpec::File(dir) => Arc::new(FileStore::open(dir)?),
            StoreSpec::Dynamo(table) => {
                Arc::new(DynamoStore::new(&aws_clients(&config.aws).await, table))
            }
            StoreSpec::Postgres(url) => Arc::new(
                immutable_postgres::PostgresStore::builder(url.as_str())?
                    .open()
                    .await?,
            ),
        };
        Ok(Ctx {
            config,
            json: global.output == Output::Json,
            quiet: global.quiet,
            cli,
            store,
            guards: std::sync::Mutex::default(),
        })
    }

    /// An engine on the configured backend, for commands that touch the service. On the
    /// local and Docker backends it keeps the service's routing restored in HAProxy while the
    /// command runs (see `HaproxyRouter::keep_restored`).
    pub(crate) async fn engine(&self) -> Result<Engine, Failure> {
        self.engine_for(self.config.service()?).await
    }

    /// An engine for a command that only reads the backend (`plan`): nothing is restored.
    pub(crate) async fn reading_engine(&self) -> Result<Engine, Failure> {
        self.build_engine(self.config.service()?, false).await
    }

    /// An engine on the configured backend for `service` (a deployment's, read from the
    /// store).
    pub(crate) async fn engine_for(&self, service: &str) -> Result<Engine, Failure> {
        self.build_engine(service, true).await
    }

    /// [`engine_for`](Self::engine_for) writing as `who` in the records it makes (the
    /// dashboard's rollbacks).
    pub(crate) async fn engine_as(&self, service: &str, who: String) -> Result<Engine, Failure> {
        self.build(service, true, Some(who)).await
    }

    async fn build_engine(&self, service: &str, restoring: bool) -> Result<Engine, Failure> {
        self.build(service, restoring, None).await
    }

    async fn build(
        &self,
        service: &str,
        restoring: bool,
        who: Option<String>,
    ) -> Result<Engine, Failure> {
        let (builder, haproxy) = match self.config.backend()? {
            BackendKind::Aws => (aws::engine(&self.config.aws, service).await?, None),
            BackendKind::Local => {
                let (builder, router) = local::engine(&self.config.local, service).await?;
                (builder, Some(router))
            }
            BackendKind::Docker => {
                let (builder, router) = docker::engine(&self.config, service).await?;
                (builder, Some(router))
            }
        };
        if restoring && let Some(router) = haproxy {
            self.guards
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(router.keep_restored(routing::RESTORE_EVERY));
        }
        let mut builder = match who {
            Some(who) => builder.identity(who),
            None => builder,
        };
        // `plan` (the one reading engine) deploys nothing, so it tells nobody.
        if restoring {
            for notify in notify::notifiers(&self.config).await? {
                builder = builder.notify(notify);
            }
        }
        Ok(builder
            .store_shared(Arc::clone(&self.store))
            .settings(self.settings())
            .build()?)
    }

    /// The record of deployment `id`, once it is known to belong to the configured service
    /// (when one is configured): a command given with `--service web` never acts on
    /// another service's deployment. Nothing else is read, and no backend is called.
    ///
    /// Refused (exit 2): an id the store does not know, or a deployment of another service.
    pub(crate) async fn deployment(&self, id: &str) -> Result<DeploymentRecord, Failure> {
        let id = DeploymentId::parse(id)?;
        let record = match self.store.load(&id).await {
            Ok(r) => r,
            Err(e) if e.is_not_found() => {
                return Err(Failure::refused(format!(
                    "no deployment {id} in the journal {}{}; `history` lists a service's \
                     deployments",
                    self.config.store,
                    crate::config::store_hint(&self.config)
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(service) = &self.config.service
            && service != record.service().as_str()
        {
            return Err(Failure::refused(format!(
                "deployment {id} is a deployment of service {}, not of {service}: nothing was \
                 done (name its own service with --service {}, or give the command no service, \
                 neither --service nor a service file's `service`, to act on it)",
                record.service(),
                record.service()
            )));
        }
        Ok(record)
    }

    /// A client of the store alone, for commands that only read and write records (approve,
    /// abort, status, watch, halts): they need no backend flags.
    pub(crate) fn operator(&self) -> Operator {
        Operator::new(Arc::clone(&self.store)).settings(self.settings())
    }

    /// [`operator`](Self::operator) writing as `who` (an operator's name), for commands whose
    /// records say who gave them (halts).
    pub(crate) fn operator_as(&self, who: Option<String>) -> Operator {
        match who {
            Some(who) => self.operator().identity(who),
            None => self.operator(),
        }
    }

    fn settings(&self) -> Settings {
        let e = &self.config.engine;
        let mut s = Settings::default();
        if let Some(d) = e.poll_interval {
            s = s.with_poll_interval(d);
        } else if matches!(
            self.config.backend,
            Some(BackendKind::Local | BackendKind::Docker)
        ) {
            // Processes start in milliseconds and HAProxy checks every 500 ms: a 5 s poll
            // would make a health wait that ends in one second take five.
            s = s.with_poll_interval(LOCAL_POLL);
        }
        if let Some(d) = e.lease_ttl {
            s = s.with_lease_ttl(d);
        }
        if let Some(d) = e.launch_timeout {
            s = s.with_launch_timeout(d);
        }
        if let Some(n) = e.keep_images {
            s = s.with_keep_images(n);
        }
        s
    }
}

/// [`aws_clients`], refused when no region is known (AWS would answer every call with a
/// bare "dispatch failure").
pub(crate) async fn aws_clients_in_region(aws: &AwsFlags) -> Result<AwsClients, Failure> {
    let clients = aws_clients(aws).await;
    if clients.sdk.region().is_none() {
        return Err(Failure::refused(
            "which AWS region? pass --region, or region in [aws] of the service file, or set \
             AWS_REGION (or a profile's region)",
        ));
    }
    Ok(clients)
}

/// AWS clients from the standard chain, with the region and endpoint overrides.
pub(crate) async fn aws_clients(aws: &AwsFlags) -> AwsClients {
    let mut config = AwsConfig::from_env();
    if let Some(r) = &aws.region {
        config = config.with_region(r);
    }
    if let Some(u) = &aws.endpoint_url {
        config = config.with_endpoint_url(u);
    }
    config.load().await
}
