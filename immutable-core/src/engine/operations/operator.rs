//! [`Operator`]: what a person or a tool does to deployments through the store alone
//! (status, watch, history, commands, halts), from any machine that shares it, with no
//! backend at all.

use std::fmt;
use std::sync::Arc;

use futures::Stream;

use crate::engine::operations::status::{current_step, waiting};
use crate::engine::{Command, CommandRecord, DeploymentRecord, Settings, Status};
use crate::store::halts_of;
use crate::{
    Clock, DeploymentId, Error, Halt, HaltScope, HistoryPage, Page, Result, ServiceName,
    StateStore, TokioClock,
};

/// A store-only client: reads what deployments do and writes what operators ask, through the
/// [`StateStore`] that the engines running them share. It needs no backend: status, watch,
/// history, approve, reject, promote, abort and halts work from any machine that reaches the
/// store. An [`Engine`](crate::Engine) has one ([`Engine::operator`](crate::Engine::operator)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> immutable_core::Result<()> {
/// use std::sync::Arc;
/// use immutable_core::{HaltScope, InMemoryStore, Operator, ServiceName};
///
/// let operator = Operator::new(Arc::new(InMemoryStore::new())).identity("alice");
/// let web = ServiceName::new("web")?;
/// operator.halt(HaltScope::Service(web.clone()), "incident 42").await?;
/// assert_eq!(operator.halts(Some(&web)).await?.len(), 1);
/// assert!(operator.status_of("web").await?.is_none());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Operator {
    store: Arc<dyn StateStore>,
    halts: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    identity: String,
}

impl fmt::Debug for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operator")
            .field("store", &self.store)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Operator {
    /// An operator over `store`: halts live there too, the clock is tokio's, and the identity
    /// written in commands and halts is the host name and process id.
    pub fn new(store: Arc<dyn StateStore>) -> Self {
        Operator {
            halts: Arc::clone(&store),
            store,
            clock: Arc::new(TokioClock::new()),
            settings: Settings::default(),
            identity: crate::engine::builder::default_identity(),
        }
    }

    /// Where halts are read and written, when not in `store` (see
    /// [`EngineBuilder::halts_from`](crate::EngineBuilder::halts_from)).
    pub fn halts_from(mut self, store: Arc<dyn StateStore>) -> Self {
        self.halts = store;
        self
    }

    /// Who gives the commands and halts this operator writes.
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = identity.into();
        self
    }

    /// The clock commands and halts are stamped with.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The settings of the engines running the deployments: how often [`watch`](Self::watch)
    /// reads, and the launch timeout [`Status::waiting`] reports.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The journal.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// Who this operator says it is.
    pub fn who(&self) -> &str {
        &self.identity
    }

    /// A deployment's status, from its record in the store.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown id, store errors.
    pub async fn status(&self, deployment: &DeploymentId) -> Result<Status> {
        let record = self.store.load(deployment).await?;
        self.status_from(record).await
    }

    /// The status of the service's latest deployment, if it ever had one.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad service name, store errors.
    pub async fn status_of(&self, service: impl Into<String>) -> Result<Option<Status>> {
        let service = ServiceName::new(service)?;
        match self.store.latest(&service).await? {
            Some(record) => Ok(Some(self.status_from(record).await?)),
            None => Ok(None),
        }
    }

    /// The deployment's status every time it changes, read from the store every poll
    /// interval; the stream ends after the deployment has ended (or on a store error).
    pub fn watch(
        &self,
        deployment: &DeploymentId,
    ) -> impl Stream<Item = Result<Status>> + Send + 'static {
        let start = (self.clone(), deployment.clone(), None::<Status>, false);
        futures::stream::unfold(start, |(op, id, last, ended)| async move {
            if ended {
                return None;
            }
            loop {
                match op.status(&id).await {
                    Err(e) => return Some((Err(e), (op, id, last, true))),
                    Ok(status) if last.as_ref() != Some(&status) => {
                        let ended = status.outcome.is_some();
                        let next = (op, id, Some(status.clone()), ended);
                        return Some((Ok(status), next));
                    }
                    Ok(_) => tokio::time::sleep(op.settings.poll_interval).await,
                }
            }
        })
    }

    /// The services that have records in the store, in name order, a page at a time
    /// ([`StateStore::services`]).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `limit` when it is 0 or above [`Page::MAX_LIMIT`]; store
    /// errors.
    pub async fn services(
        &self,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> Result<Vec<ServiceName>> {
        self.store.services(after, limit).await
    }

    /// One page of the service's deployments, newest first.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad page, store errors.
    pub async fn history(&self, service: &ServiceName, page: &Page) -> Result<HistoryPage> {
        self.store.history(service, page).await
    }

    /// Gives a command to a deployment: it is written to the store, and the runner (in any
    /// process sharing it) applies it within one poll interval, or when the deployment is
    /// resumed.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown deployment, [`Error::DeploymentFinished`] once it
    /// has ended (a command racing the end may be stored and never applied), store errors.
    pub async fn command(&self, deployment: &DeploymentId, command: Command) -> Result<()> {
        let record = self.store.load(deployment).await?;
        if record.phase.is_terminal() {
            return Err(Error::DeploymentFinished {
                deployment: deployment.clone(),
                phase: record.phase,
            });
        }
        let stored = CommandRecord::new(
            deployment.clone(),
            command,
            self.identity.clone(),
            self.clock.now(),
        );
        self.store.add_command(&stored).await
    }

    /// Halts `scope` in every engine that reads halts from the same store: running deployments
    /// stop advancing at their next poll (they hold or roll back, as each engine's
    /// [`Settings::on_halt`] says), new deployments are refused with [`Error::Halted`], and
    /// wave plans start no further wave, until [`lift_halt`](Self::lift_halt). Setting it
    /// again replaces the reason.
    ///
    /// # Errors
    /// Store errors; [`Error::NotSupported`] from a store without halts.
    pub async fn halt(&self, scope: HaltScope, reason: impl Into<String>) -> Result<Halt> {
        let halt = Halt::new(scope, reason, self.identity.clone(), self.clock.now());
        halts_of(&*self.halts, "halt")?.set_halt(&halt).await?;
        Ok(halt)
    }

    /// Lifts the halt of `scope`: held deployments go on at their next poll. Returns the halt
    /// lifted, or `None` if none stood.
    ///
    /// # Errors
    /// Store errors; [`Error::NotSupported`] from a store without halts.
    pub async fn lift_halt(&self, scope: &HaltScope) -> Result<Option<Halt>> {
        halts_of(&*self.halts, "lift a halt")?
            .lift_halt(scope)
            .await
    }

    /// The halts that cover `service` (its own and the one for every service), or every halt.
    ///
    /// # Errors
    /// Store errors; [`Error::NotSupported`] from a store without halts.
    pub async fn halts(&self, service: Option<&ServiceName>) -> Result<Vec<Halt>> {
        halts_of(&*self.halts, "list halts")?.halts(service).await
    }

    /// The halt that covers `service`, if one stands: the service's own before the global one.
    pub(in crate::engine) async fn halt_of(&self, service: &ServiceName) -> Result<Option<Halt>> {
        crate::halt::covering(self.halts.halt_store(), service).await
    }

    async fn status_from(&self, record: DeploymentRecord) -> Result<Status> {
        let lease = self
            .store
            .lease(record.service())
            .await?
            .filter(|l| l.deployment == record.id && !record.phase.is_terminal());
        let halt = match record.phase.is_terminal() {
            true => None,
            false => self.halt_of(record.service()).await?,
        };
        Ok(Status {
            halt,
            waiting: waiting(&record, self.settings.launch_timeout),
            step: current_step(&record),
            deployment: record.id.clone(),
            service: record.service().clone(),
            phase: record.phase,
            weight: record.weight,
            image: record.image.id.clone(),
            healthy: record.health,
            outcome: record.outcome(),
            lease,
            updated_at: record.history.last().map_or(record.created_at, |h| h.at),
            notifications: record.notifications,
        })
    }
}
