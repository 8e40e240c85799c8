//! [`TrafficRouter`](immutable_core::TrafficRouter) on an ALB listener (its default action, or one listener rule).
//!
//! One file per concern, in the order a deployment meets them:
//! - `config`: [`EntryPoint`], [`TargetGroupSettings`] and the builder that checks them;
//! - `naming`: the name of a fleet's target group;
//! - `entry`: reading and writing the actions of a service's entry point;
//! - `shared`: overlapping reads of one entry point share one request;
//! - `actions`: weighted forward actions read as a [`Routing`](immutable_core::Routing) and
//!   written from one;
//! - `owners`: the ownership tags of target groups, read once and cached;
//! - `settings`: the settings a new target group copies from the one that serves;
//! - `attach` and `detach`: those two operations in named steps;
//! - `adopt`: reading a group made by hand and tagging it as an adopted fleet's;
//! - `health`: target health as the core sees it;
//! - `membership`: [`TargetMembership`], how a fleet's instances join its target group;
//! - `traffic`: the `TrafficRouter` impl, which calls the others.

mod actions;
mod adopt;
mod attach;
mod config;
mod detach;
mod entry;
mod health;
mod membership;
mod naming;
mod owners;
mod settings;
mod shared;
mod traffic;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use immutable_core::{Error, Result, ServiceName};

pub use config::{AwsRouterBuilder, EntryPoint, TargetGroupSettings};
pub use membership::TargetMembership;

use crate::AwsClients;
use crate::memory::Memory;
use owners::GroupTags;

/// Instances per `RegisterTargets` or `DeregisterTargets` call.
pub(crate) const TARGETS_BATCH: usize = 1000;

/// Routes each configured service through its [`EntryPoint`].
///
/// - One target group per fleet, named `imm-<service>-<hash of service and fleet>` (so attach is
///   idempotent) and tagged with the service, fleet and deployment.
/// - `set_weights` writes one weighted forward action with one `ModifyListener` (or
///   `ModifyRule`) call, keeping the listener's other actions; an empty split becomes a fixed
///   503 response.
/// - `detach` refuses the group that takes traffic, deregisters its instances, waits while any
///   drains (bounded by the group's deregistration delay), then deletes it.
/// - Target groups without the service's tag are refused with [`Error::NotOwned`], except by
///   `adoptable` (a read) and `adopt_target`, which tags a group made by hand (one `AddTags`)
///   when [`Engine::adopt`](immutable_core::Engine::adopt) applies an adoption.
/// - `targets` lists the groups named for the service and the groups the entry point
///   forwards to, keeping those tagged for the service: an adopted group keeps its own name.
/// - With a [`TargetMembership`] (an [`AsgFleet`](crate::AsgFleet)'s), `attach` has the fleet
///   join the group instead of registering its instances, and `detach` has it leave first.
#[derive(Debug, Clone)]
pub struct AwsRouter {
    elb: aws_sdk_elasticloadbalancingv2::Client,
    services: Arc<BTreeMap<ServiceName, EntryPoint>>,
    drain_poll: Duration,
    /// Target group ARN -> its ownership tags, as read once (they never change).
    owners: Memory<String, GroupTags>,
    /// How fleets join their groups; `None`: the router registers their instances.
    membership: Option<Arc<dyn TargetMembership>>,
    /// Entry point reads in flight, shared by the reads that overlap them.
    reads: shared::SharedReads,
}

impl AwsRouter {
    /// Starts building a router over the given clients.
    pub fn builder(clients: &AwsClients) -> AwsRouterBuilder {
        Self::builder_from_client(clients.elbv2.clone())
    }

    /// Starts building a router over one ELBv2 client.
    pub fn builder_from_client(elb: aws_sdk_elasticloadbalancingv2::Client) -> AwsRouterBuilder {
        AwsRouterBuilder {
            elb,
            services: Vec::new(),
            drain_poll: Duration::from_secs(5),
            membership: None,
        }
    }

    /// The entry point of a configured service.
    fn entry(&self, service: &ServiceName) -> Result<&EntryPoint> {
        self.services.get(service).ok_or_else(|| {
            Error::invalid(
                "service",
                format!("no entry point is configured for service `{service}` on this router"),
            )
        })
    }
}
