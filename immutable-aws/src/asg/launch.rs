//! `AsgFleet::launch` in named steps: look the group up by its name (the key), read what it
//! copies, check the capacity, pin a launch template version to the image, create the group
//! held, put its policies, schedules, hooks and warm pool.

use aws_sdk_autoscaling::types::{
    LaunchTemplateSpecification, LifecycleHookSpecification, Tag as AsgTag,
};
use aws_sdk_ec2::types::RequestLaunchTemplateData;
use immutable_core::{Error, FleetId, FleetInfo, FleetSpec, ResourceKind, Result, tags};

use super::copy::{Extras, GroupSettings, describe_source};
use super::group::{fleet_of, tag};
use super::versions::{Version, marker};
use super::{AsgFleet, HELD, group_name};
use crate::LaunchTemplate;
use crate::error::{Call, MapAws};

impl AsgFleet {
    /// Creates the fleet's group, or finishes the one already created under its key.
    pub(super) async fn launch_group(&self, spec: &FleetSpec) -> Result<FleetInfo> {
        if spec.capacity == 0 {
            return Err(Error::invalid("capacity", "must be at least 1"));
        }
        let id = group_name(spec);
        let (settings, extras, from) = self.copied(spec).await?;
        let (min, max) = settings.sizes(spec.capacity, &from)?;
        if self.find_group(id.as_str()).await?.is_none() {
            let version = self.pinned_version(spec, &id).await?;
            let group = NewGroup {
                spec,
                id: &id,
                settings: &settings,
                min,
                max,
                version: &version,
                extras: &extras,
            };
            self.create_group(&group).await?;
        }
        self.finish_group(&id, &extras).await?;
        let group = self
            .find_group(id.as_str())
            .await?
            .ok_or_else(|| Error::not_found(ResourceKind::Fleet, id.as_str()))?;
        if tag(&group, tags::SERVICE) != Some(spec.service.as_str()) {
            return Err(Error::NotOwned {
                kind: ResourceKind::Fleet,
                id: id.to_string(),
                service: spec.service.to_string(),
            });
        }
        Ok(fleet_of(&spec.service, &group))
    }

    /// What the new group copies: from the group it replaces, or the builder's first-group
    /// settings; and where they came from, for messages.
    async fn copied(&self, spec: &FleetSpec) -> Result<(GroupSettings, Extras, String)> {
        let serving = match &spec.replaces {
            Some(blue) => Some(self.owned_group(&spec.service, blue).await?),
            None => None,
        };
        let name = serving
            .as_ref()
            .and_then(|g| g.auto_scaling_group_name())
            .map(str::to_owned);
        let from = describe_source(&spec.service, name.as_deref());
        Ok(match (&serving, &name) {
            (Some(group), Some(name)) => {
                (GroupSettings::of(group), self.extras_of(name).await?, from)
            }
            _ => (GroupSettings::first(&self.first), Extras::default(), from),
        })
    }

    /// The fleet's launch template version: the one an earlier attempt made (found by its
    /// marker), or a new one copied from the source version with the image, marked as the
    /// fleet's in its description.
    async fn pinned_version(&self, spec: &FleetSpec, id: &FleetId) -> Result<Version> {
        if let Some(v) = self.version_described(&spec.service, id).await? {
            return Ok(v);
        }
        let data = RequestLaunchTemplateData::builder()
            .image_id(spec.image.as_str())
            .build();
        let request = self
            .ec2
            .create_launch_template_version()
            .source_version(&self.source_version)
            .version_description(marker(&spec.service, id))
            .launch_template_data(data);
        let request = match &self.template {
            LaunchTemplate::Id(v) => request.launch_template_id(v),
            LaunchTemplate::Name(v) => request.launch_template_name(v),
        };
        let out = request.send().await.aws(Call::new(
            "CreateLaunchTemplateVersion",
            ResourceKind::Fleet,
            id.as_str(),
        ))?;
        let made = out.launch_template_version();
        match (
            made.and_then(|v| v.launch_template_id()),
            made.and_then(|v| v.version_number()),
        ) {
            (Some(template_id), Some(number)) => Ok(Version {
                template_id: template_id.to_owned(),
                number,
            }),
            _ => Err(Error::provider(
                "CreateLaunchTemplateVersion returned no template id or version number",
            )),
        }
    }

    /// One `CreateAutoScalingGroup`: the copied settings, the ownership tags (propagated to
    /// instances), the lifecycle hooks (so the first instances go through launch hooks). A
    /// group created meanwhile under the same name is taken as this one.
    async fn create_group(&self, g: &NewGroup<'_>) -> Result<()> {
        let s = g.settings;
        let template = LaunchTemplateSpecification::builder()
            .launch_template_id(&g.version.template_id)
            .version(g.version.number.to_string())
            .build();
        let result = self
            .asg
            .create_auto_scaling_group()
            .auto_scaling_group_name(g.id.as_str())
            .launch_template(template)
            .min_size(g.min)
            .max_size(g.max)
            .desired_capacity(i32::try_from(g.spec.capacity).unwrap_or(i32::MAX))
            .set_vpc_zone_identifier(s.subnets.clone())
            .set_health_check_type(s.health_check_type.clone())
            .set_health_check_grace_period(s.health_check_grace_period)
            .set_default_cooldown(s.default_cooldown)
            .set_termination_policies(
                Some(s.termination_policies.clone()).filter(|p| !p.is_empty()),
            )
            .set_capacity_rebalance(s.capacity_rebalance)
            .set_default_instance_warmup(s.default_instance_warmup)
            .set_max_instance_lifetime(s.max_instance_lifetime)
            .set_new_instances_protected_from_scale_in(s.protect_from_scale_in)
            .set_tags(Some(group_tags(g)))
            .set_lifecycle_hook_specification_list(hook_specs(g.extras))
            .send()
            .await
            .aws(Call::new(
                "CreateAutoScalingGroup",
                ResourceKind::Fleet,
                g.id.as_str(),
            ));
        match result {
            Ok(_) => Ok(()),
            Err(Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Holds the new group (it acts on its own only once it takes all traffic) and puts the
    /// copied policies, schedules, hooks and warm pool; all of it idempotent.
    async fn finish_group(&self, id: &FleetId, extras: &Extras) -> Result<()> {
        self.asg
            .suspend_processes()
            .auto_scaling_group_name(id.as_str())
            .set_scaling_processes(Some(HELD.iter().map(|p| (*p).to_owned()).collect()))
            .send()
            .await
            .aws(Call::new(
                "SuspendProcesses",
                ResourceKind::Fleet,
                id.as_str(),
            ))?;
        self.put_extras(id, extras).await
    }
}

/// Everything one `CreateAutoScalingGroup` needs.
struct NewGroup<'a> {
    spec: &'a FleetSpec,
    id: &'a FleetId,
    settings: &'a GroupSettings,
    min: i32,
    max: i32,
    version: &'a Version,
    extras: &'a Extras,
}

/// The group's tags: the ownership tags, its key, capacity and image, then the copied ones;
/// all propagated to instances but the copied ones that were not.
fn group_tags(g: &NewGroup<'_>) -> Vec<AsgTag> {
    let spec = g.spec;
    let mut all: Vec<(String, String, bool)> =
        tags::ownership(&spec.service, g.id, &spec.deployment)
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone(), true))
            .collect();
    all.extend([
        (tags::FLEET_KEY.to_owned(), spec.key.to_string(), true),
        (tags::CAPACITY.to_owned(), spec.capacity.to_string(), true),
        (tags::IMAGE.to_owned(), spec.image.to_string(), true),
        (
            tags::TEMPLATE_VERSION.to_owned(),
            format!("{}:{}", g.version.template_id, g.version.number),
            false,
        ),
    ]);
    all.extend(g.settings.tags.iter().cloned());
    all.into_iter()
        .map(|(key, value, propagate)| {
            AsgTag::builder()
                .resource_id(g.id.as_str())
                .resource_type("auto-scaling-group")
                .key(key)
                .value(value)
                .propagate_at_launch(propagate)
                .build()
        })
        .collect()
}

/// The copied lifecycle hooks as `CreateAutoScalingGroup` takes them.
fn hook_specs(extras: &Extras) -> Option<Vec<LifecycleHookSpecification>> {
    if extras.hooks.is_empty() {
        return None;
    }
    let specs = extras
        .hooks
        .iter()
        .map(|h| {
            LifecycleHookSpecification::builder()
                .set_lifecycle_hook_name(h.lifecycle_hook_name().map(str::to_owned))
                .set_lifecycle_transition(h.lifecycle_transition().map(str::to_owned))
                .set_notification_metadata(h.notification_metadata().map(str::to_owned))
                .set_heartbeat_timeout(h.heartbeat_timeout())
                .set_default_result(h.default_result().map(str::to_owned))
                .set_notification_target_arn(h.notification_target_arn().map(str::to_owned))
                .set_role_arn(h.role_arn().map(str::to_owned))
                .build()
        })
        .collect();
    Some(specs)
}
