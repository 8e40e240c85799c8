//! Target groups attached to a fleet's Auto Scaling group, so that the instances the group
//! launches later (replacements, scale-out) join the target group by themselves.

use async_trait::async_trait;
use immutable_core::{Cost, FleetId, FleetInfo, ResourceKind, Result, ServiceName};

use crate::error::{Call, MapAws};
use crate::router::TargetMembership;

/// [`TargetMembership`] through `AttachLoadBalancerTargetGroups`.
#[derive(Debug, Clone)]
pub(super) struct AsgMembership {
    asg: aws_sdk_autoscaling::Client,
}

impl AsgMembership {
    pub(super) fn new(asg: aws_sdk_autoscaling::Client) -> Self {
        AsgMembership { asg }
    }
}

#[async_trait]
impl TargetMembership for AsgMembership {
    /// Attaches the target group to the fleet's group, which registers its instances.
    async fn join(&self, fleet: &FleetInfo, target_group_arn: &str) -> Result<()> {
        self.asg
            .attach_load_balancer_target_groups()
            .auto_scaling_group_name(fleet.id.as_str())
            .target_group_arns(target_group_arn)
            .send()
            .await
            .aws(Call::new(
                "AttachLoadBalancerTargetGroups",
                ResourceKind::Fleet,
                fleet.id.as_str(),
            ))?;
        Ok(())
    }

    /// Detaches the target group from the fleet's group; a group already gone, or one that
    /// has let it go, has nothing to detach.
    async fn leave(&self, _: &ServiceName, fleet: &FleetId, target_group_arn: &str) -> Result<()> {
        let result = self
            .asg
            .detach_load_balancer_target_groups()
            .auto_scaling_group_name(fleet.as_str())
            .target_group_arns(target_group_arn)
            .send()
            .await
            .aws(Call::new(
                "DetachLoadBalancerTargetGroups",
                ResourceKind::Fleet,
                fleet.as_str(),
            ));
        match result {
            Ok(_) => Ok(()),
            // A repeated leave (a resumed detach), or one of a group already gone, fails: read
            // the group to tell whether the target group is still attached.
            Err(e) if e.is_not_found() || !self.attached(fleet, target_group_arn).await? => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn cost(&self) -> Cost {
        Cost::calls(1)
    }
}

impl AsgMembership {
    /// Whether the fleet's group still has the target group attached.
    async fn attached(&self, fleet: &FleetId, target_group_arn: &str) -> Result<bool> {
        let out = self
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(fleet.as_str())
            .send()
            .await
            .aws(Call::new(
                "DescribeAutoScalingGroups",
                ResourceKind::Fleet,
                fleet.as_str(),
            ))?;
        Ok(out
            .auto_scaling_groups()
            .first()
            .is_some_and(|g| g.target_group_arns().iter().any(|a| a == target_group_arn)))
    }
}
