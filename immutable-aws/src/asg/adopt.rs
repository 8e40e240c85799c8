//! `AsgFleet::adopt`: the Auto Scaling group that launched the serving instances (made by
//! hand or by another tool) becomes the service's fleet by taking the tags a launch writes,
//! propagated to the instances it launches later. Nothing else changes: no instance is
//! replaced, no setting touched, the group keeps its name and its launch template.

use std::collections::BTreeSet;

use aws_sdk_autoscaling::types::{AutoScalingGroup, Tag as AsgTag};
use immutable_core::{
    AdoptMode, AdoptRefusal, AdoptSpec, Error, FleetId, FleetInfo, ImageId, ResourceKind, Result,
    tags,
};

use super::AsgFleet;
use super::group::{fleet_of, tag};
use crate::ec2::{describe_instances, describe_instances_by_id, filter};
use crate::error::{Call, MapAws};

/// Instance ids per `DescribeAutoScalingInstances` call, the most it takes.
const IDS_PER_CALL: usize = 50;

impl AsgFleet {
    /// Finds the one group the instances belong to, reads the image they run, and with
    /// [`AdoptMode::Apply`] tags the group (one `CreateOrUpdateTags`).
    pub(super) async fn adopt_group(&self, spec: &AdoptSpec, mode: AdoptMode) -> Result<FleetInfo> {
        let name = self.group_of(spec).await?;
        let group = self
            .find_group(&name)
            .await?
            .ok_or_else(|| Error::not_found(ResourceKind::Fleet, name.as_str()))?;
        match tag(&group, tags::SERVICE) {
            Some(owner) if owner != spec.service.as_str() => {
                return Err(Error::NotOwned {
                    kind: ResourceKind::Fleet,
                    id: name,
                    service: spec.service.to_string(),
                });
            }
            _ => {}
        }
        let image = self.image_of(spec, &group).await?;
        let fleet = FleetId::new(name.as_str());
        let capacity = u32::try_from(group.desired_capacity().unwrap_or(0)).unwrap_or(0);
        let adopted = adopted_tags(spec, &fleet, capacity, &image);
        if mode == AdoptMode::Apply {
            self.asg
                .create_or_update_tags()
                .set_tags(Some(adopted.clone()))
                .send()
                .await
                .aws(Call::new("CreateOrUpdateTags", ResourceKind::Fleet, &name))?;
        }
        // The fleet as it is, or as the tags just written make it.
        let mut tagged = group;
        let mut all = tagged.tags.take().unwrap_or_default();
        all.retain(|t| !adopted.iter().any(|a| a.key() == t.key()));
        all.extend(adopted.iter().map(|a| {
            aws_sdk_autoscaling::types::TagDescription::builder()
                .set_key(a.key().map(str::to_owned))
                .set_value(a.value().map(str::to_owned))
                .build()
        }));
        tagged.tags = Some(all);
        Ok(fleet_of(&spec.service, &tagged))
    }

    /// The name of the one group every instance belongs to.
    async fn group_of(&self, spec: &AdoptSpec) -> Result<String> {
        let mut groups = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for ids in spec.instances.chunks(IDS_PER_CALL) {
            let out = self
                .asg
                .describe_auto_scaling_instances()
                .set_instance_ids(Some(ids.iter().map(|i| i.to_string()).collect()))
                .send()
                .await
                .aws(Call::new(
                    "DescribeAutoScalingInstances",
                    ResourceKind::Fleet,
                    spec.service.as_str(),
                ))?;
            for i in out.auto_scaling_instances() {
                seen.insert(i.instance_id().unwrap_or_default().to_owned());
                groups.insert(i.auto_scaling_group_name().unwrap_or_default().to_owned());
            }
        }
        if let Some(outside) = spec.instances.iter().find(|i| !seen.contains(i.as_str())) {
            // An instance EC2 does not know is NotFound, as the contract says; one it knows
            // outside every group is a fleet this backend cannot adopt.
            describe_instances_by_id(&self.ec2, &[outside.to_string()], outside.as_str()).await?;
            return Err(Error::invalid(
                "fleet",
                format!(
                    "instance {outside} serving `{}` belongs to no Auto Scaling group: adopt it \
                     with the bare-instance fleet (AwsFleet), or put it in the group",
                    spec.service
                ),
            ));
        }
        let mut it = groups.into_iter();
        match (it.next(), it.next()) {
            (Some(one), None) => Ok(one),
            (None, _) => Err(Error::AdoptionRefused {
                service: spec.service.clone(),
                refusal: AdoptRefusal::NoLiveInstances { registered: 0 },
            }),
            (Some(a), Some(b)) => Err(Error::invalid(
                "fleet",
                format!(
                    "the instances serving `{}` belong to several Auto Scaling groups ({a}, {b}, \
                     ...): one fleet is one group",
                    spec.service
                ),
            )),
        }
    }

    /// The one image the group's live instances run.
    async fn image_of(&self, spec: &AdoptSpec, group: &AutoScalingGroup) -> Result<ImageId> {
        let ids: Vec<&str> = group
            .instances()
            .iter()
            .filter_map(|i| i.instance_id())
            .collect();
        let found = if ids.is_empty() {
            Vec::new()
        } else {
            let by_id = [filter("instance-id", &ids)];
            describe_instances(&self.ec2, &by_id, 1000, spec.service.as_str()).await?
        };
        let images: BTreeSet<ImageId> = found
            .iter()
            .filter(|d| d.state.is_live())
            .map(|d| d.image.clone())
            .collect();
        let refused = |refusal| Error::AdoptionRefused {
            service: spec.service.clone(),
            refusal,
        };
        let mut it = images.iter();
        match (it.next(), it.next()) {
            (Some(image), None) => Ok(image.clone()),
            (None, _) => Err(refused(AdoptRefusal::NoLiveInstances {
                registered: spec.instances.len(),
            })),
            _ => Err(refused(AdoptRefusal::MixedImages {
                images: images.into_iter().collect(),
            })),
        }
    }
}

/// The tags a launch writes on a group (ownership, key, capacity, image), propagated.
fn adopted_tags(spec: &AdoptSpec, fleet: &FleetId, capacity: u32, image: &ImageId) -> Vec<AsgTag> {
    let mut all: Vec<(String, String)> = tags::ownership(&spec.service, fleet, &spec.deployment)
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    all.extend([
        (tags::FLEET_KEY.to_owned(), spec.key.to_string()),
        (tags::CAPACITY.to_owned(), capacity.to_string()),
        (tags::IMAGE.to_owned(), image.to_string()),
    ]);
    all.into_iter()
        .map(|(key, value)| {
            AsgTag::builder()
                .resource_id(fleet.as_str())
                .resource_type("auto-scaling-group")
                .key(key)
                .value(value)
                .propagate_at_launch(true)
                .build()
        })
        .collect()
}
