//! [`Engine::rollback`]: an operator's way back to what served before the latest deployment,
//! by aborting it (traffic returns to the old fleet in one routing call) or by redeploying the
//! previous image. It obeys I1: it refuses to route to an old fleet that cannot serve.

use crate::engine::Engine;
use crate::{
    DeploymentRecord, DeploymentRequest, Error, ImageRef, NoRollback, Phase, Report, Result,
    ServiceName, Steps,
};

/// What [`Engine::rollback`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RollbackReport {
    /// The latest deployment was still running (baking, say): it was aborted, traffic went
    /// back to the old fleet in one routing call, and the new fleet was removed.
    RoutedBack(Report),
    /// The previous image was deployed again as a new fleet: the latest deployment had
    /// retired the old fleet, or [`RollbackMode::Redeploy`] was asked for.
    Redeployed(Report),
    /// The latest deployment was aborted, but its old fleet was lost before the rollback
    /// could route back to it: the deployment stopped ([`Phase::Stopped`]) with traffic where
    /// it is healthiest. Redeploy the previous image with [`RollbackMode::Redeploy`].
    Stopped(Report),
}

/// How [`Engine::rollback_with`] goes back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RollbackMode {
    /// Route back to the old fleet while it still bakes (one routing call), refusing with
    /// [`Error::BlueUnhealthy`] when it cannot take traffic; redeploy the previous image once
    /// the old fleet was retired.
    #[default]
    Auto,
    /// Deploy the previous image as a new fleet, all at once: the way back when the old fleet
    /// was lost. A deployment still baking is first promoted (its old fleet cannot serve a
    /// rollback, so it is retired), then replaced.
    Redeploy,
}

impl Engine {
    /// Rolls a service back to what served before its latest deployment, with
    /// [`RollbackMode::Auto`].
    ///
    /// # Errors
    /// As [`rollback_with`](Self::rollback_with).
    pub async fn rollback(&self, service: impl Into<String>) -> Result<RollbackReport> {
        self.rollback_with(service, RollbackMode::Auto).await
    }

    /// Rolls a service back to the fleet or image that served before its latest deployment.
    ///
    /// - While that deployment still runs in this engine (its old fleet still bakes, say),
    ///   [`RollbackMode::Auto`] first checks the old fleet's health, then aborts the
    ///   deployment: traffic returns to the old fleet in one routing call and the new fleet is
    ///   removed. This waits for the rollback to finish.
    /// - Once that deployment has finished and retired the old fleet (or with
    ///   [`RollbackMode::Redeploy`]), the previous image is deployed again with the same
    ///   capacity and settings, all at once.
    ///
    /// # Errors
    /// - [`Error::BlueUnhealthy`] when the old fleet has fewer than `min_healthy` healthy
    ///   instances: nothing is changed, traffic and the new fleet are untouched. Redeploy the
    ///   previous image with [`RollbackMode::Redeploy`].
    /// - [`Error::InvalidInput`] for a bad service name.
    /// - [`Error::Conflict`] when there is nothing to roll back to (no deployment, a first
    ///   deployment, or one that already rolled back), when the latest deployment runs in
    ///   another process, or when a redeployment is asked for before traffic has moved.
    /// - Any error of the redeployment.
    pub async fn rollback_with(
        &self,
        service: impl Into<String>,
        mode: RollbackMode,
    ) -> Result<RollbackReport> {
        let service = ServiceName::new(service)?;
        let latest = self.latest(&service).await?;
        if !latest.phase.is_terminal() {
            return match mode {
                RollbackMode::Auto => self.abort_running(&latest).await,
                RollbackMode::Redeploy => {
                    let finished = self.promote_running(&latest).await?;
                    self.redeploy_previous(&finished).await
                }
            };
        }
        match latest.phase {
            Phase::RolledBack => Err(Error::NothingToRollBack {
                service,
                reason: NoRollback::AlreadyRolledBack {
                    deployment: latest.id,
                },
            }),
            Phase::Stopped if mode == RollbackMode::Auto => Err(Error::NothingToRollBack {
                service,
                reason: NoRollback::OldFleetLost {
                    deployment: latest.id,
                },
            }),
            _ => self.redeploy_previous(&latest).await,
        }
    }

    /// The service's newest deployment, if any.
    pub(in crate::engine) async fn latest_record(
        &self,
        service: &ServiceName,
    ) -> Result<Option<DeploymentRecord>> {
        self.inner.store.latest(service).await
    }

    /// The service's newest deployment, which a rollback goes back from.
    async fn latest(&self, service: &ServiceName) -> Result<DeploymentRecord> {
        self.latest_record(service)
            .await?
            .ok_or_else(|| Error::NothingToRollBack {
                service: service.clone(),
                reason: NoRollback::NoDeployment,
            })
    }

    /// Refuses unless the old fleet can take traffic back, then aborts the running
    /// deployment and waits for its rollback.
    async fn abort_running(&self, latest: &DeploymentRecord) -> Result<RollbackReport> {
        let handle = self.running_handle(latest)?;
        if let Some(blue) = &latest.blue
            && latest.weight > 0
        {
            let service = latest.service();
            let healthy = match self.inner.router.health(service, &blue.target).await {
                Ok(report) => report.healthy(),
                Err(e) if e.is_not_found() => 0,
                Err(e) => return Err(e),
            };
            let needed = latest.spec.min_healthy as usize;
            if healthy < needed {
                return Err(Error::BlueUnhealthy {
                    service: service.clone(),
                    target: blue.target.clone(),
                    image: blue.image.clone(),
                    healthy,
                    needed,
                });
            }
        }
        handle.abort("rollback requested").await?;
        handle.finished().await;
        let record = self.inner.store.load(&latest.id).await?;
        let outcome = record.outcome().ok_or_else(|| Error::NotRunningHere {
            deployment: record.id.clone(),
            phase: record.phase,
        })?;
        let report = Report { outcome, record };
        Ok(match report.record.phase {
            Phase::Stopped => RollbackReport::Stopped(report),
            _ => RollbackReport::RoutedBack(report),
        })
    }

    /// Promotes a deployment that bakes in this engine and waits for it to finish, so that
    /// its image can be replaced.
    async fn promote_running(&self, latest: &DeploymentRecord) -> Result<DeploymentRecord> {
        if latest.phase != Phase::Bake {
            return Err(Error::WrongPhase {
                deployment: latest.id.clone(),
                phase: latest.phase,
                reason: "a redeployment replaces a fleet that takes all traffic; before the \
                         bake, abort the deployment (RollbackMode::Auto) instead"
                    .into(),
            });
        }
        let handle = self.running_handle(latest)?;
        handle.promote().await?;
        handle.finished().await;
        let record = self.inner.store.load(&latest.id).await?;
        if !record.phase.is_terminal() {
            return Err(Error::NotRunningHere {
                deployment: record.id.clone(),
                phase: record.phase,
            });
        }
        Ok(record)
    }

    fn running_handle(&self, latest: &DeploymentRecord) -> Result<crate::engine::DeploymentHandle> {
        self.handle(&latest.id).map_err(|_| Error::NotRunningHere {
            deployment: latest.id.clone(),
            phase: latest.phase,
        })
    }

    /// Deploys the image that served before `latest`, with its capacity and settings.
    async fn redeploy_previous(&self, latest: &DeploymentRecord) -> Result<RollbackReport> {
        let Some(request) = redeploy_request(latest) else {
            return Err(Error::NothingToRollBack {
                service: latest.service().clone(),
                reason: NoRollback::FirstDeployment {
                    deployment: latest.id.clone(),
                },
            });
        };
        if latest.phase == Phase::RolledBack {
            return Err(Error::NothingToRollBack {
                service: latest.service().clone(),
                reason: NoRollback::AlreadyRolledBack {
                    deployment: latest.id.clone(),
                },
            });
        }
        let id = crate::DeploymentId::generate();
        let report = self
            .deploy_as(id, request.validate()?, crate::Origin::Rollback)
            .await?;
        Ok(RollbackReport::Redeployed(report))
    }
}

/// The request that deploys again the image `latest` replaced, with its capacity and
/// settings, all at once; `None` for a first deployment.
pub(crate) fn redeploy_request(latest: &DeploymentRecord) -> Option<DeploymentRequest> {
    let blue = latest.blue.as_ref()?;
    let spec = &latest.spec;
    Some(
        DeploymentRequest::new(spec.service.as_str(), ImageRef::Id(blue.image.clone()))
            .capacity(spec.capacity)
            .min_healthy(spec.min_healthy)
            .strategy(Steps::blue_green())
            .health_timeout(spec.health_timeout)
            .bake_time(spec.bake_time)
            .on_blue_lost(spec.on_blue_lost),
    )
}
