//! Status and watch: what a deployment is doing and what it waits for, read from the store by
//! any process that shares it.

use std::time::SystemTime;

use futures::Stream;
use serde::Serialize;

use super::Engine;
use crate::{
    DeploymentId, DeploymentRecord, Halt, ImageId, Lease, OnTimeout, Outcome, Phase, Result,
    ServiceName, Step, StrategySpec,
};

/// What a deployment waits for now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "waiting", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Waiting {
    /// The new fleet's instances to run, until the launch timeout.
    Launch {
        /// When the launch timeout strikes.
        until: SystemTime,
    },
    /// `min_healthy` of them to pass health checks, until the health timeout.
    Health {
        /// When the health timeout strikes.
        until: SystemTime,
    },
    /// A pause step to end.
    Pause {
        /// When it ends.
        until: SystemTime,
    },
    /// An operator's approval (or rejection).
    Approval {
        /// The approval step's index.
        index: usize,
        /// When its timeout policy applies: the deployment rolls back then, or says it is
        /// overdue and keeps waiting.
        deadline: SystemTime,
        /// Whether it rolls back at the deadline.
        rolls_back: bool,
    },
    /// The bake (the fast-rollback window) to end.
    Bake {
        /// When it ends.
        until: SystemTime,
    },
}

/// A deployment as its record and the service's lease show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Status {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Its service.
    pub service: ServiceName,
    /// Where it is.
    pub phase: Phase,
    /// Percent of traffic on the new fleet.
    pub weight: u32,
    /// The image it deploys.
    pub image: ImageId,
    /// Healthy and registered instances of the new fleet, as last read.
    pub healthy: Option<(usize, usize)>,
    /// In the rollout: the step's index and the step.
    pub step: Option<(usize, Step)>,
    /// What it waits for, if it waits.
    pub waiting: Option<Waiting>,
    /// How it ended, once it has.
    pub outcome: Option<Outcome>,
    /// The service's lease: who runs the deployment, until when (absent when nobody does).
    pub lease: Option<Lease>,
    /// When the record was last saved (its last phase or step change).
    pub updated_at: SystemTime,
    /// The halt that covers the service while the deployment is unfinished: it makes no
    /// further weight change, and holds or rolls back as its engine's
    /// [`OnHalt`](crate::OnHalt) says.
    pub halt: Option<Halt>,
}

impl Engine {
    /// A deployment's status, from its record in the store.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown id, store errors.
    pub async fn status(&self, deployment: &DeploymentId) -> Result<Status> {
        let record = self.inner.store.load(deployment).await?;
        self.status_from(record).await
    }

    /// The status of the service's latest deployment, if it ever had one.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for a bad service name, store errors.
    pub async fn status_of(&self, service: impl Into<String>) -> Result<Option<Status>> {
        let service = ServiceName::new(service)?;
        match self.latest_record(&service).await? {
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
        futures::stream::unfold(start, |(engine, id, last, ended)| async move {
            if ended {
                return None;
            }
            loop {
                match engine.status(&id).await {
                    Err(e) => return Some((Err(e), (engine, id, last, true))),
                    Ok(status) if last.as_ref() != Some(&status) => {
                        let ended = status.outcome.is_some();
                        let next = (engine, id, Some(status.clone()), ended);
                        return Some((Ok(status), next));
                    }
                    Ok(_) => tokio::time::sleep(engine.inner.settings.poll_interval).await,
                }
            }
        })
    }

    async fn status_from(&self, record: DeploymentRecord) -> Result<Status> {
        let lease = self
            .inner
            .store
            .lease(record.service())
            .await?
            .filter(|l| l.deployment == record.id && !record.phase.is_terminal());
        let halt = match record.phase.is_terminal() {
            true => None,
            false => self.inner.halt_of(record.service()).await?,
        };
        Ok(Status {
            halt,
            waiting: self.waiting(&record),
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
        })
    }

    fn waiting(&self, r: &DeploymentRecord) -> Option<Waiting> {
        let since = r.phase_started_at;
        Some(match r.phase {
            Phase::Attach => Waiting::Launch {
                until: since + self.inner.settings.launch_timeout,
            },
            Phase::AwaitHealthy => Waiting::Health {
                until: since + r.spec.health_timeout,
            },
            Phase::Bake => Waiting::Bake {
                until: since + r.spec.bake_time,
            },
            Phase::Rollout => match current_step(r)? {
                (_, Step::Pause { duration }) => Waiting::Pause {
                    until: since + duration,
                },
                (
                    index,
                    Step::Approval {
                        timeout,
                        on_timeout,
                    },
                ) => Waiting::Approval {
                    index,
                    deadline: since + timeout,
                    rolls_back: on_timeout == OnTimeout::RollBack,
                },
                _ => return None,
            },
            _ => return None,
        })
    }
}

/// The rollout step in progress: the one recorded for a custom strategy, the list's next one
/// for a step list.
fn current_step(r: &DeploymentRecord) -> Option<(usize, Step)> {
    if r.phase != Phase::Rollout {
        return None;
    }
    let step = match (&r.current_step, &r.spec.strategy) {
        (Some(step), _) => step.clone(),
        (None, StrategySpec::Steps(steps)) => steps.steps().get(r.step)?.clone(),
        (None, StrategySpec::Named(_)) => return None,
    };
    Some((r.step, step))
}
