//! What a new group takes from the serving one (or, for a first deployment, from the
//! builder): the documented copy list.
//!
//! Copied: minimum, maximum (desired is the request's capacity, which must lie between
//! them), subnets, health check type and grace period, default cooldown, termination
//! policies, capacity rebalancing, default instance warmup, maximum instance lifetime,
//! scale-in protection of new instances, the group's own tags (not the SDK's
//! `immutable:` tags, which are the new fleet's), scaling policies, scheduled actions,
//! lifecycle hooks and the warm pool.
//!
//! Not copied: the launch template version (each fleet has its own, with its image), target
//! groups (the router attaches the fleet's own), suspended processes (the engine decides),
//! load balancers of the classic kind, and mixed instances policies.

use aws_sdk_autoscaling::types::{
    AutoScalingGroup, LifecycleHook, ScalingPolicy, ScheduledUpdateGroupAction,
    WarmPoolConfiguration,
};
use immutable_core::{Error, FleetId, ResourceKind, Result, ServiceName, tags};

use super::AsgFleet;
use super::builder::FirstGroup;
use crate::error::{Call, MapAws};

/// The settings a new group is created with.
#[derive(Debug, Clone, Default)]
pub(super) struct GroupSettings {
    pub(super) min_size: Option<i32>,
    pub(super) max_size: Option<i32>,
    pub(super) subnets: Option<String>,
    pub(super) health_check_type: Option<String>,
    pub(super) health_check_grace_period: Option<i32>,
    pub(super) default_cooldown: Option<i32>,
    pub(super) termination_policies: Vec<String>,
    pub(super) capacity_rebalance: Option<bool>,
    pub(super) default_instance_warmup: Option<i32>,
    pub(super) max_instance_lifetime: Option<i32>,
    pub(super) protect_from_scale_in: Option<bool>,
    /// The group's own tags: key, value, propagated at launch.
    pub(super) tags: Vec<(String, String, bool)>,
}

/// What is put on a group after it is created.
#[derive(Debug, Clone, Default)]
pub(super) struct Extras {
    pub(super) policies: Vec<ScalingPolicy>,
    pub(super) scheduled: Vec<ScheduledUpdateGroupAction>,
    pub(super) hooks: Vec<LifecycleHook>,
    pub(super) warm_pool: Option<WarmPoolConfiguration>,
}

impl GroupSettings {
    /// A first deployment's settings, from the builder.
    pub(super) fn first(f: &FirstGroup) -> Self {
        GroupSettings {
            min_size: f.min_size,
            max_size: f.max_size,
            subnets: (!f.subnets.is_empty()).then(|| f.subnets.join(",")),
            health_check_type: f.health_check_type.clone(),
            health_check_grace_period: f.health_check_grace_period,
            default_cooldown: f.default_cooldown,
            termination_policies: f.termination_policies.clone(),
            capacity_rebalance: f.capacity_rebalance,
            ..GroupSettings::default()
        }
    }

    /// The serving group's settings.
    pub(super) fn of(g: &AutoScalingGroup) -> Self {
        let own = g
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?,
                    t.value().unwrap_or_default(),
                    t.propagate_at_launch(),
                ))
            })
            .filter(|(k, _, _)| !k.starts_with(tags::PREFIX) && !k.starts_with("aws:"))
            .map(|(k, v, p)| (k.to_owned(), v.to_owned(), p.unwrap_or(false)))
            .collect();
        GroupSettings {
            min_size: g.min_size(),
            max_size: g.max_size(),
            subnets: g.vpc_zone_identifier().map(str::to_owned),
            health_check_type: g.health_check_type().map(str::to_owned),
            health_check_grace_period: g.health_check_grace_period(),
            default_cooldown: g.default_cooldown(),
            termination_policies: g.termination_policies().to_vec(),
            capacity_rebalance: g.capacity_rebalance(),
            default_instance_warmup: g.default_instance_warmup(),
            max_instance_lifetime: g.max_instance_lifetime(),
            protect_from_scale_in: g.new_instances_protected_from_scale_in(),
            tags: own,
        }
    }

    /// Min and max around `capacity` (both `capacity` when unset); [`Error::InvalidInput`]
    /// on `capacity` when it lies outside them.
    pub(super) fn sizes(&self, capacity: u32, from: &str) -> Result<(i32, i32)> {
        let desired = i32::try_from(capacity)
            .map_err(|_| Error::invalid("capacity", format!("{capacity} is too large")))?;
        let min = self
            .min_size
            .unwrap_or(desired.min(self.max_size.unwrap_or(desired)));
        let max = self.max_size.unwrap_or(desired.max(min));
        if !(min..=max).contains(&desired) {
            return Err(Error::invalid(
                "capacity",
                format!(
                    "{capacity} lies outside {from}'s size limits {min}..{max}: ask for a \
                     capacity within them, or change the limits"
                ),
            ));
        }
        Ok((min, max))
    }
}

impl AsgFleet {
    /// Reads the scaling policies, scheduled actions, lifecycle hooks and warm pool of the
    /// serving group.
    pub(super) async fn extras_of(&self, group: &str) -> Result<Extras> {
        let call = |op| Call::new(op, ResourceKind::Fleet, group);
        let policies = self
            .asg
            .describe_policies()
            .auto_scaling_group_name(group)
            .send()
            .await
            .aws(call("DescribePolicies"))?;
        let scheduled = self
            .asg
            .describe_scheduled_actions()
            .auto_scaling_group_name(group)
            .send()
            .await
            .aws(call("DescribeScheduledActions"))?;
        let hooks = self
            .asg
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(group)
            .send()
            .await
            .aws(call("DescribeLifecycleHooks"))?;
        let warm = self
            .asg
            .describe_warm_pool()
            .auto_scaling_group_name(group)
            .send()
            .await
            .aws(call("DescribeWarmPool"))?;
        Ok(Extras {
            policies: policies.scaling_policies().to_vec(),
            scheduled: scheduled.scheduled_update_group_actions().to_vec(),
            hooks: hooks.lifecycle_hooks().to_vec(),
            warm_pool: warm.warm_pool_configuration().cloned(),
        })
    }

    /// Puts the extras on the new group; each call overwrites by name, so a repeat is
    /// harmless.
    pub(super) async fn put_extras(&self, group: &FleetId, extras: &Extras) -> Result<()> {
        for hook in &extras.hooks {
            self.put_hook(group, hook).await?;
        }
        for policy in &extras.policies {
            self.put_policy(group, policy).await?;
        }
        for action in &extras.scheduled {
            self.put_scheduled(group, action).await?;
        }
        if let Some(pool) = &extras.warm_pool {
            self.asg
                .put_warm_pool()
                .auto_scaling_group_name(group.as_str())
                .set_max_group_prepared_capacity(pool.max_group_prepared_capacity())
                .set_min_size(pool.min_size())
                .set_pool_state(pool.pool_state().cloned())
                .set_instance_reuse_policy(pool.instance_reuse_policy().cloned())
                .send()
                .await
                .aws(Call::new(
                    "PutWarmPool",
                    ResourceKind::Fleet,
                    group.as_str(),
                ))?;
        }
        Ok(())
    }

    async fn put_hook(&self, group: &FleetId, hook: &LifecycleHook) -> Result<()> {
        self.asg
            .put_lifecycle_hook()
            .auto_scaling_group_name(group.as_str())
            .set_lifecycle_hook_name(hook.lifecycle_hook_name().map(str::to_owned))
            .set_lifecycle_transition(hook.lifecycle_transition().map(str::to_owned))
            .set_notification_target_arn(hook.notification_target_arn().map(str::to_owned))
            .set_role_arn(hook.role_arn().map(str::to_owned))
            .set_notification_metadata(hook.notification_metadata().map(str::to_owned))
            .set_heartbeat_timeout(hook.heartbeat_timeout())
            .set_default_result(hook.default_result().map(str::to_owned))
            .send()
            .await
            .aws(Call::new(
                "PutLifecycleHook",
                ResourceKind::Fleet,
                group.as_str(),
            ))?;
        Ok(())
    }

    async fn put_policy(&self, group: &FleetId, p: &ScalingPolicy) -> Result<()> {
        self.asg
            .put_scaling_policy()
            .auto_scaling_group_name(group.as_str())
            .set_policy_name(p.policy_name().map(str::to_owned))
            .set_policy_type(p.policy_type().map(str::to_owned))
            .set_adjustment_type(p.adjustment_type().map(str::to_owned))
            .set_min_adjustment_magnitude(p.min_adjustment_magnitude())
            .set_scaling_adjustment(p.scaling_adjustment())
            .set_cooldown(p.cooldown())
            .set_metric_aggregation_type(p.metric_aggregation_type().map(str::to_owned))
            .set_step_adjustments(Some(p.step_adjustments().to_vec()).filter(|v| !v.is_empty()))
            .set_estimated_instance_warmup(p.estimated_instance_warmup())
            .set_target_tracking_configuration(p.target_tracking_configuration().cloned())
            .set_enabled(p.enabled())
            .set_predictive_scaling_configuration(p.predictive_scaling_configuration().cloned())
            .send()
            .await
            .aws(Call::new(
                "PutScalingPolicy",
                ResourceKind::Fleet,
                group.as_str(),
            ))?;
        Ok(())
    }

    async fn put_scheduled(&self, group: &FleetId, a: &ScheduledUpdateGroupAction) -> Result<()> {
        self.asg
            .put_scheduled_update_group_action()
            .auto_scaling_group_name(group.as_str())
            .set_scheduled_action_name(a.scheduled_action_name().map(str::to_owned))
            .set_start_time(a.start_time().cloned())
            .set_end_time(a.end_time().cloned())
            .set_recurrence(a.recurrence().map(str::to_owned))
            .set_min_size(a.min_size())
            .set_max_size(a.max_size())
            .set_desired_capacity(a.desired_capacity())
            .set_time_zone(a.time_zone().map(str::to_owned))
            .send()
            .await
            .aws(Call::new(
                "PutScheduledUpdateGroupAction",
                ResourceKind::Fleet,
                group.as_str(),
            ))?;
        Ok(())
    }
}

/// Where a new group's settings come from, for messages.
pub(super) fn describe_source(service: &ServiceName, serving: Option<&str>) -> String {
    match serving {
        Some(group) => format!("the serving group {group}"),
        None => format!("the first group of {service} (the builder's settings)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_must_lie_within_the_size_limits() {
        let s = GroupSettings {
            min_size: Some(2),
            max_size: Some(6),
            ..GroupSettings::default()
        };
        assert_eq!(s.sizes(4, "g").unwrap(), (2, 6));
        for outside in [1, 7] {
            match s.sizes(outside, "the serving group g") {
                Err(Error::InvalidInput { field, reason, .. }) => {
                    assert_eq!(field, "capacity");
                    assert!(reason.contains("2..6"), "{reason}");
                }
                other => panic!("{outside}: {other:?}"),
            }
        }
        assert_eq!(GroupSettings::default().sizes(3, "g").unwrap(), (3, 3));
        let only_max = GroupSettings {
            max_size: Some(10),
            ..GroupSettings::default()
        };
        assert_eq!(only_max.sizes(3, "g").unwrap(), (3, 10));
    }
}
