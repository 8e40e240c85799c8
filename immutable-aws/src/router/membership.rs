//! How a fleet's instances become members of its target group: the seam between a fleet
//! backend and the router, so that the core never hears of Auto Scaling groups.
//!
//! By default the router registers the fleet's running instances itself (bare EC2 fleets).
//! A fleet whose provider launches instances on its own (an [`AsgFleet`](crate::AsgFleet))
//! hands the router a [`TargetMembership`] instead: the router creates the target group and
//! the fleet makes the group a member of it, so instances launched later join by themselves.

use std::fmt::Debug;

use async_trait::async_trait;
use immutable_core::{Cost, FleetId, FleetInfo, Result, ServiceName};

/// Makes a fleet's instances, present and future, members of a target group.
///
/// Both methods are idempotent; `leave` on a fleet that is gone succeeds.
#[async_trait]
pub trait TargetMembership: Debug + Send + Sync + 'static {
    /// Makes the fleet's instances members of the target group `target_group_arn`.
    async fn join(&self, fleet: &FleetInfo, target_group_arn: &str) -> Result<()>;

    /// Stops the fleet adding instances to the group; the router then deregisters what is
    /// still registered and waits while it drains.
    async fn leave(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
        target_group_arn: &str,
    ) -> Result<()>;

    /// What `join` and `leave` each cost in provider calls.
    fn cost(&self) -> Cost {
        Cost::calls(1)
    }
}
