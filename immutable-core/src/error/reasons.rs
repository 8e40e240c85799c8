//! The data an [`Error`](super::Error) carries about what went wrong: which kind of resource,
//! and why there is nothing to roll back to.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DeploymentId;

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
