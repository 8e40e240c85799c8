//! The data an [`Error`](super::Error) carries about what went wrong: which kind of resource,
//! and why there is nothing to roll back to.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{DeploymentId, ImageId, Phase, Routing, ServiceName, TargetId};

/// What kind of resource an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ResourceKind {
    /// An image (an AMI on AWS).
    Image,
    /// A fleet of instances.
    Fleet,
    /// One instance.
    Instance,
    /// A routing target (a target group on AWS).
    Target,
    /// A service's entry point (an ALB listener or rule on AWS).
    EntryPoint,
    /// A deployment record.
    Deployment,
    /// A service lease.
    Lease,
    /// An operator's command to a deployment.
    Command,
    /// A wave plan's record.
    WavePlan,
    /// A halt of a service, or of every service.
    Halt,
    /// A metric alarm (a CloudWatch alarm on AWS).
    Alarm,
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResourceKind::Image => "image",
            ResourceKind::Fleet => "fleet",
            ResourceKind::Instance => "instance",
            ResourceKind::Target => "target",
            ResourceKind::EntryPoint => "entry point",
            ResourceKind::Deployment => "deployment",
            ResourceKind::Lease => "lease",
            ResourceKind::Command => "command",
            ResourceKind::WavePlan => "wave plan",
            ResourceKind::Halt => "halt",
            ResourceKind::Alarm => "alarm",
        })
    }
}

/// Why there is nothing to roll back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NoRollback {
    /// The service was never deployed.
    NoDeployment,
    /// Its latest deployment was its first: nothing served before it.
    FirstDeployment {
        /// That deployment.
        deployment: DeploymentId,
    },
    /// Its latest deployment rolled back already: the fleet it replaced still serves.
    AlreadyRolledBack {
        /// That deployment.
        deployment: DeploymentId,
    },
    /// Its latest deployment stopped without a way back (its old fleet was lost): redeploy
    /// the previous image with `RollbackMode::Redeploy`.
    OldFleetLost {
        /// That deployment.
        deployment: DeploymentId,
    },
}

impl fmt::Display for NoRollback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoRollback::NoDeployment => f.write_str("it was never deployed"),
            NoRollback::FirstDeployment { deployment } => write!(
                f,
                "deployment {deployment} was its first; nothing served before it"
            ),
            NoRollback::AlreadyRolledBack { deployment } => write!(
                f,
                "deployment {deployment} rolled back already; the fleet it replaced still serves"
            ),
            NoRollback::OldFleetLost { deployment } => write!(
                f,
                "deployment {deployment} stopped without a way back (its old fleet was lost); \
                 redeploy the previous image with RollbackMode::Redeploy"
            ),
        }
    }
}

/// Why [`Engine::adopt`](crate::Engine::adopt) will not adopt what serves a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AdoptRefusal {
    /// A deployment of the service is unfinished: it owns what serves, or will.
    Unfinished {
        /// That deployment.
        deployment: DeploymentId,
        /// Where it stopped.
        phase: Phase,
    },
    /// Traffic is split over several targets: there is no one fleet to adopt.
    TrafficSplit {
        /// The split, as read.
        routing: Routing,
    },
    /// The entry point sends traffic nowhere: there is nothing to adopt, and a first
    /// deployment needs no adoption.
    NothingServed,
    /// The serving target carries the service's ownership tags already: it was adopted, or
    /// a deployment made it.
    AlreadyManaged {
        /// The target.
        target: TargetId,
    },
    /// The serving target carries another service's ownership tags (I6).
    OwnedByAnother {
        /// The target.
        target: TargetId,
        /// The service that owns it.
        owner: ServiceName,
    },
    /// No instance registered in the serving target is pending or running.
    NoLiveInstances {
        /// How many instances are registered in it.
        registered: usize,
    },
    /// The serving instances run different images; a fleet runs one.
    MixedImages {
        /// The images, each once.
        images: Vec<ImageId>,
    },
}

impl fmt::Display for AdoptRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdoptRefusal::Unfinished { deployment, phase } => write!(
                f,
                "deployment {deployment} is unfinished (phase {phase}); resume it with \
                 Engine::resume (it owns what serves), then there is nothing to adopt"
            ),
            AdoptRefusal::TrafficSplit { routing } => write!(
                f,
                "traffic is split ({routing}); route all of it to one target group first"
            ),
            AdoptRefusal::NothingServed => f.write_str(
                "the entry point sends traffic nowhere; there is nothing to adopt: deploy instead",
            ),
            AdoptRefusal::AlreadyManaged { target } => write!(
                f,
                "target {target} is managed already (adopted, or made by a deployment); deploy \
                 to replace it"
            ),
            AdoptRefusal::OwnedByAnother { target, owner } => write!(
                f,
                "target {target} belongs to service `{owner}`; the SDK will not take it over"
            ),
            AdoptRefusal::NoLiveInstances { registered } => write!(
                f,
                "none of the {registered} instance(s) registered in the serving target is \
                 running; there is no fleet to adopt: deploy instead"
            ),
            AdoptRefusal::MixedImages { images } => {
                let images: Vec<_> = images.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "the serving instances run different images ({}); a fleet runs one image: \
                     replace them by hand with instances of one image, or adopt after that",
                    images.join(", ")
                )
            }
        }
    }
}
