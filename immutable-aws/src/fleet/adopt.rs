//! `AwsFleet::adopt`: instances launched by hand become a fleet of bare instances by taking
//! the tags a launch writes (service, fleet, deployment, managed-by, key, capacity). Nothing
//! else changes: no instance is stopped, replaced or renamed.

use std::collections::BTreeSet;

use immutable_core::{
    AdoptMode, AdoptRefusal, AdoptSpec, Error, FleetInfo, FleetSpec, ImageId, ResourceKind, Result,
    tags,
};

use super::group::instance;
use super::{AwsFleet, fleet_id};
use crate::ec2::{Described, filter};
use crate::error::{Call, MapAws};
use crate::ownership::adopted_instance_tags;

/// Instance ids per `instance-id` filter, the most EC2 takes in one filter.
const IDS_PER_FILTER: usize = 200;

/// Resources per `CreateTags` call.
const TAG_BATCH: usize = 1000;

impl AwsFleet {
    /// `DescribeInstances` per 200 ids, then (to apply) `CreateTags` per 1,000 instances.
    pub(super) async fn adopt_instances(
        &self,
        spec: &AdoptSpec,
        mode: AdoptMode,
    ) -> Result<FleetInfo> {
        let found = self.described(spec).await?;
        let live: Vec<Described> = found.into_iter().filter(|d| d.state.is_live()).collect();
        let image = one_image(spec, &live)?;
        let id = fleet_id(&spec.key);
        let capacity = live.len() as u32;
        let fleet = FleetInfo::new(
            id.clone(),
            FleetSpec::new(
                spec.service.clone(),
                spec.deployment.clone(),
                image,
                capacity,
            )
            .with_key(spec.key.clone()),
        )
        .with_instances(live.iter().cloned().map(instance));
        if mode != AdoptMode::Apply {
            return Ok(fleet);
        }
        let tags = adopted_instance_tags(spec, &id, capacity);
        let ids: Vec<String> = live.iter().map(|d| d.id.to_string()).collect();
        for batch in ids.chunks(TAG_BATCH) {
            self.ec2
                .create_tags()
                .set_resources(Some(batch.to_vec()))
                .set_tags(Some(tags.clone()))
                .send()
                .await
                .aws(Call::new("CreateTags", ResourceKind::Fleet, id.as_str()))?;
        }
        Ok(fleet)
    }

    /// The spec's instances as described, every one found and none another service's.
    async fn described(&self, spec: &AdoptSpec) -> Result<Vec<Described>> {
        let mut found = Vec::new();
        for ids in spec.instances.chunks(IDS_PER_FILTER) {
            let ids: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
            let by_id = [filter("instance-id", &ids)];
            found.extend(self.instances(&by_id, spec.key.as_str()).await?);
        }
        if let Some(missing) = spec
            .instances
            .iter()
            .find(|i| !found.iter().any(|d| &d.id == *i))
        {
            return Err(Error::not_found(ResourceKind::Instance, missing.as_str()));
        }
        let service = spec.service.as_str();
        if let Some(other) = found
            .iter()
            .find(|d| d.tags.get(tags::SERVICE).is_some_and(|s| s != service))
        {
            return Err(Error::NotOwned {
                kind: ResourceKind::Instance,
                id: other.id.to_string(),
                service: service.to_owned(),
            });
        }
        Ok(found)
    }
}

/// The one image the live instances run, or why there is none.
fn one_image(spec: &AdoptSpec, live: &[Described]) -> Result<ImageId> {
    let refused = |refusal| Error::AdoptionRefused {
        service: spec.service.clone(),
        refusal,
    };
    let images: BTreeSet<&ImageId> = live.iter().map(|d| &d.image).collect();
    let mut it = images.iter();
    match (it.next(), it.next()) {
        (None, _) => Err(refused(AdoptRefusal::NoLiveInstances {
            registered: spec.instances.len(),
        })),
        (Some(image), None) => Ok((*image).clone()),
        _ => Err(refused(AdoptRefusal::MixedImages {
            images: images.into_iter().cloned().collect(),
        })),
    }
}
