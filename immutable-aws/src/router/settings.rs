//! The settings of a new target group: configured on the entry point, or copied from the group
//! that serves most of the traffic, deregistration delay included.

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::TargetGroup;
use immutable_core::{Error, ResourceKind, Result, ServiceName, TargetId};

use super::actions::routing_of;
use super::{AwsRouter, EntryPoint, TargetGroupSettings};
use crate::error::{Call, MapAws};

/// The target group attribute holding the deregistration delay, in seconds.
pub(super) const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";

/// The settings of an existing group, the defaults of [`TargetGroupSettings::http`] where it
/// reports none.
fn settings_of(g: &TargetGroup, deregistration_delay: Option<Duration>) -> TargetGroupSettings {
    let defaults = TargetGroupSettings::http(80, "");
    TargetGroupSettings {
        protocol: g
            .protocol()
            .map_or(defaults.protocol, |p| p.as_str().to_owned()),
        port: g.port().unwrap_or(defaults.port),
        vpc_id: g.vpc_id().unwrap_or_default().to_owned(),
        health_check_path: g
            .health_check_path()
            .map_or(defaults.health_check_path, str::to_owned),
        health_check_port: g
            .health_check_port()
            .map_or(defaults.health_check_port, str::to_owned),
        health_check_protocol: g.health_check_protocol().map(|p| p.as_str().to_owned()),
        health_check_interval_seconds: g
            .health_check_interval_seconds()
            .unwrap_or(defaults.health_check_interval_seconds),
        health_check_timeout_seconds: g
            .health_check_timeout_seconds()
            .unwrap_or(defaults.health_check_timeout_seconds),
        healthy_threshold: g
            .healthy_threshold_count()
            .unwrap_or(defaults.healthy_threshold),
        unhealthy_threshold: g
            .unhealthy_threshold_count()
            .unwrap_or(defaults.unhealthy_threshold),
        matcher: g
            .matcher()
            .and_then(|m| m.http_code())
            .map_or(defaults.matcher, str::to_owned),
        deregistration_delay,
    }
}

impl AwsRouter {
    /// The settings of a new group: configured, or copied from the group that serves most.
    pub(super) async fn group_settings(
        &self,
        service: &ServiceName,
        entry: &EntryPoint,
    ) -> Result<TargetGroupSettings> {
        if let Some(s) = entry.target_group() {
            return Ok(s.clone());
        }
        let routing = routing_of(&self.actions(entry).await?);
        let Some((live, _)) = routing.weights().iter().max_by_key(|(_, w)| **w) else {
            return Err(Error::invalid(
                "target_group",
                format!(
                    "service `{service}` has no serving target group to copy settings from; \
                     set TargetGroupSettings on its EntryPoint for a first deployment"
                ),
            ));
        };
        let out = self
            .elb
            .describe_target_groups()
            .target_group_arns(live.as_str())
            .send()
            .await
            .aws(Call::new(
                "DescribeTargetGroups",
                ResourceKind::Target,
                live.as_str(),
            ))?;
        let g = out
            .target_groups()
            .first()
            .ok_or_else(|| Error::not_found(ResourceKind::Target, live.as_str()))?;
        Ok(settings_of(g, self.deregistration_delay(live).await?))
    }

    /// A group's deregistration delay, if it reports one.
    pub(super) async fn deregistration_delay(&self, target: &TargetId) -> Result<Option<Duration>> {
        let attrs = self
            .elb
            .describe_target_group_attributes()
            .target_group_arn(target.as_str())
            .send()
            .await
            .aws(Call::new(
                "DescribeTargetGroupAttributes",
                ResourceKind::Target,
                target.as_str(),
            ))?;
        Ok(attrs
            .attributes()
            .iter()
            .find(|a| a.key() == Some(DEREGISTRATION_DELAY))
            .and_then(|a| a.value()?.parse().ok())
            .map(Duration::from_secs))
    }
}
