//! [`Engine::plan`]: what [`Engine::deploy`] would do, found with read calls only.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::engine::Engine;
use crate::engine::budget::{Budget, Eta, World};
use crate::engine::phases::retire::beyond_retention;
use crate::engine::record::Blue;
use crate::{
    DeploymentId, DeploymentRequest, DeploymentSpec, Error, Image, ImageId, Phase, Result, Routing,
    ServiceName, Step, StrategySpec, TargetId,
};

/// Why [`Engine::deploy`] would refuse to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Refusal {
    /// A field of the request is wrong, or the image does not resolve.
    InvalidInput {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Another deployment holds the service's lease.
    Locked {
        /// Who holds it.
        holder: String,
        /// The deployment holding it.
        deployment: DeploymentId,
    },
    /// An unfinished deployment of the service must be resumed first.
    Unfinished {
        /// That deployment.
        deployment: DeploymentId,
        /// Where it stopped.
        phase: Phase,
    },
    /// The service's traffic is split between several targets.
    TrafficSplit {
        /// The split.
        routing: Routing,
    },
    /// The service routes to a target the SDK does not own.
    ServingTargetNotOwned {
        /// That target.
        target: TargetId,
    },
    /// A halt covers the service ([`Engine::halt`]).
    Halted {
        /// The halt.
        halt: crate::Halt,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::InvalidInput { field, reason, .. } => write!(f, "`{field}` {reason}"),
            Refusal::Locked { holder, deployment } => {
                write!(f, "locked by {holder} (deployment {deployment})")
            }
            Refusal::Unfinished { deployment, phase } => write!(
                f,
                "deployment {deployment} is unfinished (phase {phase}); resume it first"
            ),
            Refusal::TrafficSplit { routing } => write!(f, "traffic is split ({routing})"),
            Refusal::ServingTargetNotOwned { target } => write!(
                f,
                "traffic goes to target {target}, which the SDK does not own; adopt it first \
                 (Engine::adopt)"
            ),
            Refusal::Halted { halt } => write!(f, "{halt}; lift the halt first"),
        }
    }
}

/// What [`Engine::deploy`] would do with a request, as [`Engine::plan`] found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PlannedDeployment {
    /// The service.
    pub service: String,
    /// The image the request resolves to.
    pub image: Option<Image>,
    /// The fleet that serves now, which the deployment would replace; `None` with no
    /// refusal means a first deployment.
    pub blue: Option<Blue>,
    /// Why `deploy` would refuse to start; empty when it would run.
    pub refusals: Vec<Refusal>,
    /// The strategy's steps; `None` for a custom strategy, which decides at run time.
    pub steps: Option<Vec<Step>>,
    /// How long the deployment would take if it succeeds.
    pub eta: Option<Eta>,
    /// The provider calls it would make if it succeeds.
    pub budget: Option<Budget>,
}

impl PlannedDeployment {
    /// Whether `deploy` would start.
    pub fn would_run(&self) -> bool {
        self.refusals.is_empty()
    }

    fn empty(service: String) -> Self {
        PlannedDeployment {
            service,
            image: None,
            blue: None,
            refusals: Vec::new(),
            steps: None,
            eta: None,
            budget: None,
        }
    }
}

impl Engine {
    /// What [`deploy`](Engine::deploy) would do with `request`, found with read calls only:
    /// the image resolved, the fleet it would replace, why it would be refused, the
    /// strategy's steps, how long it would take (a range) and the provider calls it would
    /// make (per phase, from what the backends declare each operation costs).
    ///
    /// The budget and the ETA are those of a deployment that succeeds; a rollback costs its
    /// own calls. Checks make calls of their own, listed as unknown.
    ///
    /// # Errors
    /// Backend or store errors of the reads. Refusals are not errors: they are in the plan.
    pub async fn plan(&self, request: DeploymentRequest) -> Result<PlannedDeployment> {
        let spec = match request.validate().and_then(|spec| {
            self.inner.strategy_for(&spec.strategy)?;
            Ok(spec)
        }) {
            Ok(spec) => spec,
            Err(Error::InvalidInput { field, reason, .. }) => {
                let mut plan = PlannedDeployment::empty(request.service);
                plan.refusals.push(Refusal::InvalidInput { field, reason });
                return Ok(plan);
            }
            Err(e) => return Err(e),
        };
        let service = spec.service.clone();
        let mut plan = PlannedDeployment::empty(service.to_string());
        plan.refusals = self.store_refusals(&service).await?;
        match self.inner.images.resolve(&service, &spec.image).await {
            Ok(image) => plan.image = Some(image),
            Err(Error::NotFound { .. }) => plan.refusals.push(Refusal::InvalidInput {
                field: "image".into(),
                reason: format!("no image of service `{service}` matches {}", spec.image),
            }),
            Err(e) => return Err(e),
        }
        match self.find_blue(&service).await? {
            Ok(blue) => plan.blue = blue,
            Err(refusal) => plan.refusals.push(refusal),
        }
        plan.steps = match &spec.strategy {
            StrategySpec::Steps(steps) => Some(steps.steps().to_vec()),
            StrategySpec::Named(_) => None,
        };
        if let Some(image) = &plan.image {
            let world = self.world(&spec, image, plan.blue.as_ref()).await?;
            let steps = plan.steps.clone().unwrap_or_default();
            plan.eta = Some(self.inner.eta(&spec, &steps, world.blue));
            plan.budget = Some(self.inner.budget(&spec, &steps, &world));
        }
        Ok(plan)
    }

    /// The lease and unfinished deployments, as the store has them.
    async fn store_refusals(&self, service: &ServiceName) -> Result<Vec<Refusal>> {
        let store = &self.inner.store;
        let mut refusals = Vec::new();
        let now = self.inner.clock.now();
        if let Some(lease) = store.lease(service).await?
            && lease.expires_at > now
        {
            refusals.push(Refusal::Locked {
                holder: lease.holder,
                deployment: lease.deployment,
            });
        }
        if let Some(halt) = self.inner.halt_of(service).await? {
            refusals.push(Refusal::Halted { halt });
        }
        if let Some(r) = store.unfinished(Some(service)).await?.into_iter().next() {
            refusals.push(Refusal::Unfinished {
                deployment: r.id,
                phase: r.phase,
            });
        }
        Ok(refusals)
    }

    /// The fleet that serves now, or why there is none to replace.
    async fn find_blue(&self, service: &ServiceName) -> Result<Result<Option<Blue>, Refusal>> {
        let inner = &*self.inner;
        let routing = inner.router.routing(service).await?;
        if routing.is_empty() {
            return Ok(Ok(None));
        }
        let Some(target) = routing.sole_target() else {
            return Ok(Err(Refusal::TrafficSplit { routing }));
        };
        let targets = inner.router.targets(service).await?;
        let Some(target) = targets.into_iter().find(|t| &t.id == target) else {
            return Ok(Err(Refusal::ServingTargetNotOwned {
                target: target.clone(),
            }));
        };
        let fleet = inner.fleet.describe(service, &target.fleet).await?;
        Ok(Ok(Some(Blue {
            fleet: fleet.id,
            target: target.id,
            image: fleet.image,
        })))
    }

    /// What the budget needs: the fleet that serves, and which images retention would retire.
    async fn world(
        &self,
        spec: &DeploymentSpec,
        image: &Image,
        blue: Option<&Blue>,
    ) -> Result<World> {
        let inner = &*self.inner;
        let service = &spec.service;
        let fleets = inner.fleet.list(service).await?;
        let blue_capacity = blue
            .and_then(|b| fleets.iter().find(|f| f.id == b.fleet))
            .map_or(0, |f| f.capacity);
        let mut keep: BTreeSet<ImageId> = fleets.iter().map(|f| f.image.clone()).collect();
        keep.insert(image.id.clone());
        let images = inner.images.list(service).await?;
        let deployed = BTreeSet::from_iter(
            [image.id.clone()]
                .into_iter()
                .chain(blue.map(|b| b.image.clone())),
        );
        let lists_fleets = beyond_retention(images.clone(), &deployed, inner.settings.keep_images)
            .next()
            .is_some();
        let retired = beyond_retention(images, &keep, inner.settings.keep_images).count();
        Ok(World {
            blue: blue.is_some(),
            blue_capacity,
            owned_image: image.service.as_ref() == Some(service),
            retired_images: u32::try_from(retired).unwrap_or(u32::MAX),
            lists_fleets,
        })
    }
}
