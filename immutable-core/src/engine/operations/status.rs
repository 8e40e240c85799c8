//! Status and watch: what a deployment is doing and what it waits for, read from the store by
//! any process that shares it.

use std::time::SystemTime;

use futures::Stream;
use serde::Serialize;

use crate::engine::{Engine, Operator};
use crate::notify::Outbox;
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
    /// Its notifications, and how each delivery went (a failed one stays failed).
    #[serde(skip_serializing_if = "Outbox::is_empty")]
    pub notifications: Outbox,
}

impl Engine {
    /// [`Operator::status`](crate::Operator::status) through this engine's store.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown id, store errors.
    pub async fn status(&self, deployment: &DeploymentId) -> Result<Status> {
        self.inner.operator.status(deployment).await
    }

    /// [`Operator::status_of`](crate::Operator::status_of) through this engine's store.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for a bad service name, store errors.
    pub async fn status_of(&self, service: impl Into<String>) -> Result<Option<Status>> {
        self.inner.operator.status_of(service).await
    }

    /// [`Operator::watch`](crate::Operator::watch) through this engine's store.
    pub fn watch(
        &self,
        deployment: &DeploymentId,
    ) -> impl Stream<Item = Result<Status>> + Send + 'static {
        self.inner.operator.watch(deployment)
    }

    /// The store-only client this engine's status, commands and halts go through.
    pub fn operator(&self) -> &Operator {
        &self.inner.operator
    }
}

/// The rollout step in progress: the one recorded for a custom strategy, the list's next one
/// for a step list.
pub(in crate::engine) fn current_step(r: &DeploymentRecord) -> Option<(usize, Step)> {
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

/// What the deployment of `r` waits for now; `launch_timeout` is the engine's.
pub(in crate::engine) fn waiting(
    r: &DeploymentRecord,
    launch_timeout: std::time::Duration,
) -> Option<Waiting> {
    let since = r.phase_started_at;
    Some(match r.phase {
        Phase::Attach => Waiting::Launch {
            until: since + launch_timeout,
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
