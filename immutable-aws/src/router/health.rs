//! Target health: the instances registered in a target group, as the core sees their state.

use aws_sdk_elasticloadbalancingv2::types::{TargetHealthDescription, TargetHealthStateEnum};
use immutable_core::{HealthState, InstanceHealth, ResourceKind, Result, TargetId};

use super::AwsRouter;
use crate::error::{Call, MapAws};

fn health_state(s: Option<&TargetHealthStateEnum>) -> HealthState {
    match s {
        Some(TargetHealthStateEnum::Healthy) => HealthState::Healthy,
        Some(TargetHealthStateEnum::Initial) => HealthState::Initial,
        Some(TargetHealthStateEnum::Unhealthy) => HealthState::Unhealthy,
        Some(TargetHealthStateEnum::Draining | TargetHealthStateEnum::UnhealthyDraining) => {
            HealthState::Draining
        }
        _ => HealthState::Unavailable,
    }
}

/// One registered instance; `None` without an id.
fn instance_health(d: &TargetHealthDescription) -> Option<InstanceHealth> {
    let th = d.target_health();
    Some(InstanceHealth {
        instance: d.target()?.id()?.into(),
        state: health_state(th.and_then(|h| h.state())),
        reason: th
            .and_then(|h| h.description().or(h.reason().map(|r| r.as_str())))
            .map(str::to_owned),
    })
}

impl AwsRouter {
    /// The registered instances of a group, with their health.
    pub(super) async fn target_health(&self, target: &TargetId) -> Result<Vec<InstanceHealth>> {
        let out = self
            .elb
            .describe_target_health()
            .target_group_arn(target.as_str())
            .send()
            .await
            .aws(Call::new(
                "DescribeTargetHealth",
                ResourceKind::Target,
                target.as_str(),
            ))?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .filter_map(instance_health)
            .collect())
    }
}
