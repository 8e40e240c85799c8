//! Adoption of a target group made by hand: read who owns it and what is registered in it,
//! then write the service's ownership tags on it with one `AddTags`.

use immutable_core::{
    Adoptable, Error, FleetInfo, ResourceKind, Result, ServiceName, Target, TargetId,
};

use super::AwsRouter;
use super::owners::GroupTags;
use crate::error::{Call, MapAws};
use crate::ownership::target_group_tags;

impl AwsRouter {
    /// `DescribeTags` (the owner) and `DescribeTargetHealth` (the registered instances).
    pub(super) async fn adoptable_group(
        &self,
        service: &ServiceName,
        target: &TargetId,
    ) -> Result<Adoptable> {
        self.entry(service)?;
        let instances = self.target_health(target).await?;
        let tags = self.group_tags(&[target.to_string()]).await?;
        let owner = tags.get(target.as_str()).and_then(|t| t.owner.clone());
        Ok(Adoptable::new(
            target.clone(),
            owner,
            instances.into_iter().map(|h| h.instance),
        ))
    }

    /// Tags the group as `fleet`'s (one `AddTags`), unless it is already.
    pub(super) async fn adopt_group(
        &self,
        service: &ServiceName,
        target: &TargetId,
        fleet: &FleetInfo,
    ) -> Result<Target> {
        self.entry(service)?;
        let adopted = Target::new(target.clone(), fleet.id.clone(), service.clone());
        let tags = self.group_tags(&[target.to_string()]).await?;
        match tags.get(target.as_str()) {
            None => return Err(Error::not_found(ResourceKind::Target, target.as_str())),
            Some(GroupTags { owner: None, .. }) => {}
            Some(GroupTags {
                owner: Some(owner),
                fleet: Some(f),
            }) if owner == service && f == &fleet.id => return Ok(adopted),
            Some(_) => {
                return Err(Error::NotOwned {
                    kind: ResourceKind::Target,
                    id: target.to_string(),
                    service: service.to_string(),
                });
            }
        }
        self.elb
            .add_tags()
            .resource_arns(target.as_str())
            .set_tags(Some(target_group_tags(fleet)))
            .send()
            .await
            .aws(Call::new("AddTags", ResourceKind::Target, target.as_str()))?;
        self.remember(
            target.as_str(),
            GroupTags {
                owner: Some(service.clone()),
                fleet: Some(fleet.id.clone()),
            },
        );
        Ok(adopted)
    }
}
