//! Auto Scaling groups read back: by name, or every group of a service by its tag, and a
//! group as the core's [`FleetInfo`].

use aws_sdk_autoscaling::types::{AutoScalingGroup, Filter, LifecycleState};
use immutable_core::{
    DeploymentId, Error, FleetId, FleetInfo, FleetKey, FleetSpec, ImageId, Instance, InstanceState,
    ResourceKind, Result, ServiceName, tags,
};

use super::AsgFleet;
use crate::error::{Call, MapAws};
use crate::paginate::all_pages;

/// Groups per `DescribeAutoScalingGroups` page, the most it returns.
const PAGE: i32 = 100;

/// The status of a group being deleted.
const DELETING: &str = "Delete in progress";

/// A tag of the group, if set.
pub(super) fn tag<'a>(group: &'a AutoScalingGroup, key: &str) -> Option<&'a str> {
    group
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Whether the group is being deleted (it still answers describes for a while).
pub(super) fn is_deleting(group: &AutoScalingGroup) -> bool {
    group.status() == Some(DELETING)
}

/// An instance's lifecycle in the group, as the core's states.
fn state(lifecycle: Option<&LifecycleState>) -> InstanceState {
    let Some(l) = lifecycle else {
        return InstanceState::Pending;
    };
    let name = l.as_str();
    if name == "InService" {
        InstanceState::Running
    } else if name.starts_with("Pending") || name.starts_with("Warmed") {
        InstanceState::Pending
    } else if name == "Terminated" {
        InstanceState::Terminated
    } else {
        // Terminating, detaching, standby: it serves no longer.
        InstanceState::Stopping
    }
}

/// The group as a fleet of `service`, its key, deployment, image and capacity read from its
/// tags.
pub(super) fn fleet_of(service: &ServiceName, group: &AutoScalingGroup) -> FleetInfo {
    let t = |k: &str| tag(group, k).unwrap_or_default().to_owned();
    let id = FleetId::new(group.auto_scaling_group_name().unwrap_or_default());
    let capacity = t(tags::CAPACITY)
        .parse()
        .unwrap_or_else(|_| u32::try_from(group.desired_capacity().unwrap_or(0)).unwrap_or(0));
    let spec = FleetSpec::new(
        service.clone(),
        DeploymentId::new(t(tags::DEPLOYMENT)),
        ImageId::new(t(tags::IMAGE)),
        capacity,
    )
    .with_key(FleetKey::new(t(tags::FLEET_KEY)));
    let instances = group.instances().iter().filter_map(|i| {
        Some(Instance {
            id: i.instance_id()?.into(),
            state: state(i.lifecycle_state()),
        })
    });
    FleetInfo::new(id, spec).with_instances(instances)
}

impl AsgFleet {
    /// The group named `name`, if it exists (being deleted or not).
    pub(super) async fn find_group(&self, name: &str) -> Result<Option<AutoScalingGroup>> {
        let out = self
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .aws(Call::new(
                "DescribeAutoScalingGroups",
                ResourceKind::Fleet,
                name,
            ))?;
        Ok(out.auto_scaling_groups().first().cloned())
    }

    /// The group of one of the service's fleets: [`Error::NotFound`] when there is none,
    /// [`Error::NotOwned`] when it lacks the service's tag (I6).
    pub(super) async fn owned_group(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
    ) -> Result<AutoScalingGroup> {
        let group = self
            .find_group(fleet.as_str())
            .await?
            .ok_or_else(|| Error::not_found(ResourceKind::Fleet, fleet.as_str()))?;
        if tag(&group, tags::SERVICE) != Some(service.as_str()) {
            return Err(Error::NotOwned {
                kind: ResourceKind::Fleet,
                id: fleet.to_string(),
                service: service.to_string(),
            });
        }
        Ok(group)
    }

    /// Every group tagged for the service, all pages.
    pub(super) async fn service_groups(
        &self,
        service: &ServiceName,
    ) -> Result<Vec<AutoScalingGroup>> {
        let filter = Filter::builder()
            .name(format!("tag:{}", tags::SERVICE))
            .values(service.as_str())
            .build();
        all_pages(|token| {
            let request = self
                .asg
                .describe_auto_scaling_groups()
                .filters(filter.clone())
                .max_records(PAGE)
                .set_next_token(token);
            async move {
                let out = request.send().await.aws(Call::new(
                    "DescribeAutoScalingGroups",
                    ResourceKind::Fleet,
                    service.as_str(),
                ))?;
                Ok((
                    out.auto_scaling_groups().to_vec(),
                    out.next_token().map(str::to_owned),
                ))
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_states_map_to_the_core_states() {
        let s = |name: &str| state(Some(&LifecycleState::from(name)));
        assert_eq!(s("InService"), InstanceState::Running);
        assert_eq!(s("Pending"), InstanceState::Pending);
        assert_eq!(s("Pending:Wait"), InstanceState::Pending);
        assert_eq!(s("Warmed:Running"), InstanceState::Pending);
        assert_eq!(s("Terminating"), InstanceState::Stopping);
        assert_eq!(s("Standby"), InstanceState::Stopping);
        assert_eq!(s("Terminated"), InstanceState::Terminated);
        assert_eq!(state(None), InstanceState::Pending);
    }
}
