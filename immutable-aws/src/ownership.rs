//! The ownership tags this backend writes (I6), in one place: the core's
//! [`tags::ownership`] on every instance, volume and target group it creates (or adopts), and
//! on instances and volumes (which are the whole fleet) the key and capacity a launch is looked
//! up by; on an AMI brought into a service's catalog, the service and managed-by tags (an
//! image belongs to no fleet or deployment).

use aws_sdk_ec2::types::{ResourceType, TagSpecification};
use aws_sdk_elasticloadbalancingv2::types::Tag as ElbTag;
use immutable_core::{AdoptSpec, FleetId, FleetInfo, FleetSpec, Labels, ServiceName, tags};

use crate::ec2::to_tags;

/// The tags of a fleet's instances and their volumes, as `RunInstances` creates them.
pub(crate) fn instance_tags(spec: &FleetSpec, fleet: &FleetId) -> Vec<TagSpecification> {
    let mut all = Vec::from(tags::ownership(&spec.service, fleet, &spec.deployment));
    all.extend([
        (tags::FLEET_KEY, spec.key.to_string()),
        (tags::CAPACITY, spec.capacity.to_string()),
        ("Name", format!("{}-{}", spec.service, spec.key)),
    ]);
    [ResourceType::Instance, ResourceType::Volume]
        .into_iter()
        .map(|resource| {
            TagSpecification::builder()
                .resource_type(resource)
                .set_tags(Some(to_tags(all.iter().map(|(k, v)| (k, v)))))
                .build()
        })
        .collect()
}

/// The tags an adoption writes on instances launched by hand: a launch's, but for `Name`
/// (theirs is kept).
pub(crate) fn adopted_instance_tags(
    spec: &AdoptSpec,
    fleet: &FleetId,
    capacity: u32,
) -> Vec<aws_sdk_ec2::types::Tag> {
    let mut all = Vec::from(tags::ownership(&spec.service, fleet, &spec.deployment));
    all.extend([
        (tags::FLEET_KEY, spec.key.to_string()),
        (tags::CAPACITY, capacity.to_string()),
    ]);
    to_tags(all.iter().map(|(k, v)| (k, v)))
}

/// The tags an import writes on an AMI, in one `CreateTags`: [`tags::SERVICE`] and
/// [`tags::MANAGED_BY`], then the labels (which [`check_labels`](immutable_core::check_labels)
/// has kept out of the SDK's keys).
pub(crate) fn image_tags(service: &ServiceName, labels: &Labels) -> Vec<aws_sdk_ec2::types::Tag> {
    let ownership = [
        (tags::SERVICE, service.as_str()),
        (tags::MANAGED_BY, tags::MANAGED_BY_VALUE),
    ];
    let labels = labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    to_tags(ownership.into_iter().chain(labels))
}

/// The tags of a fleet's target group, as `CreateTargetGroup` writes them (and `AddTags`
/// when a group made by hand is adopted).
pub(crate) fn target_group_tags(fleet: &FleetInfo) -> Vec<ElbTag> {
    tags::ownership(&fleet.service, &fleet.id, &fleet.deployment)
        .iter()
        .map(|(k, v)| ElbTag::builder().key(*k).value(v).build())
        .collect()
}

#[cfg(test)]
mod tests {
    use immutable_core::DeploymentId;

    use super::*;

    #[test]
    fn instances_and_groups_carry_the_ownership_tags() {
        let spec = FleetSpec::new(
            ServiceName::new("web").unwrap(),
            DeploymentId::new("d-1"),
            "ami-1".into(),
            3,
        );
        let fleet = FleetId::new("fleet-d-1");
        let specs = instance_tags(&spec, &fleet);
        assert_eq!(specs.len(), 2, "instances and volumes");
        let keys: Vec<_> = specs[0].tags().iter().filter_map(|t| t.key()).collect();
        assert_eq!(
            keys,
            [
                tags::SERVICE,
                tags::FLEET,
                tags::DEPLOYMENT,
                tags::MANAGED_BY,
                tags::FLEET_KEY,
                tags::CAPACITY,
                "Name"
            ]
        );
        let info = FleetInfo::new(fleet, spec);
        let group: Vec<_> = target_group_tags(&info)
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect();
        assert_eq!(group[0], (tags::SERVICE.to_owned(), "web".to_owned()));
        assert_eq!(group.len(), 4);
    }

    #[test]
    fn an_imported_image_carries_the_service_and_managed_by_then_its_labels() {
        let labels = Labels::from([("packer:build".to_owned(), "web".to_owned())]);
        let written: Vec<_> = image_tags(&ServiceName::new("web").unwrap(), &labels)
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect();
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            written,
            [
                pair(tags::SERVICE, "web"),
                pair(tags::MANAGED_BY, tags::MANAGED_BY_VALUE),
                pair("packer:build", "web"),
            ]
        );
    }
}
