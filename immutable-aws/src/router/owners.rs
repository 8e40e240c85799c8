//! The ownership tags of target groups (I6), read once and cached once a group has an
//! owner: they never change then (a group without one may still be adopted).

use std::collections::HashMap;

use aws_sdk_elasticloadbalancingv2::types::TagDescription;
use immutable_core::{Error, FleetId, ResourceKind, Result, ServiceName, TargetId, tags};

use super::AwsRouter;
use crate::error::{Call, MapAws};

/// Target groups per `DescribeTags` call, the most ELBv2 takes.
const DESCRIBE_TAGS_BATCH: usize = 20;

/// The ownership tags of one target group.
#[derive(Debug, Clone, Default)]
pub(super) struct GroupTags {
    /// The service it belongs to; `None` for a group without the tag.
    pub(super) owner: Option<ServiceName>,
    /// The fleet behind it.
    pub(super) fleet: Option<FleetId>,
}

impl GroupTags {
    fn read(d: &TagDescription) -> Self {
        let tag = |key: &str| {
            d.tags()
                .iter()
                .find(|t| t.key() == Some(key))
                .and_then(|t| t.value())
        };
        GroupTags {
            owner: tag(tags::SERVICE).and_then(|v| ServiceName::new(v).ok()),
            fleet: tag(tags::FLEET).map(FleetId::from),
        }
    }
}

impl AwsRouter {
    /// Records the tags of a group the router created.
    pub(super) fn remember(&self, arn: &str, tags: GroupTags) {
        self.owners.keep(arn.to_owned(), tags);
    }

    /// Forgets a deleted group.
    pub(super) fn forget(&self, arn: &str) {
        self.owners.forget(&arn.to_owned());
    }

    /// Reads the ownership tags of target groups, 20 per call, caching them.
    pub(super) async fn group_tags(&self, arns: &[String]) -> Result<HashMap<String, GroupTags>> {
        let mut known = HashMap::new();
        let mut missing = Vec::new();
        for arn in arns {
            match self.owners.get(arn) {
                Some(owner) => {
                    known.insert(arn.clone(), owner);
                }
                None => missing.push(arn.clone()),
            }
        }
        for batch in missing.chunks(DESCRIBE_TAGS_BATCH) {
            let out = self
                .elb
                .describe_tags()
                .set_resource_arns(Some(batch.to_vec()))
                .send()
                .await
                .aws(Call::new(
                    "DescribeTags",
                    ResourceKind::Target,
                    &batch.join(","),
                ))?;
            for d in out.tag_descriptions() {
                let Some(arn) = d.resource_arn() else {
                    continue;
                };
                let found = GroupTags::read(d);
                // A group without an owner may be adopted (by another process, too): read
                // it again next time. An owner's tags never change.
                if found.owner.is_some() {
                    self.remember(arn, found.clone());
                }
                known.insert(arn.to_owned(), found);
            }
        }
        Ok(known)
    }

    /// Refuses a target group that does not exist or is not the service's (I6).
    pub(super) async fn ensure_owned(
        &self,
        service: &ServiceName,
        target: &TargetId,
    ) -> Result<()> {
        let tags = self.group_tags(&[target.to_string()]).await?;
        match tags.get(target.as_str()).map(|t| &t.owner) {
            None => Err(Error::not_found(ResourceKind::Target, target.as_str())),
            Some(Some(owner)) if owner == service => Ok(()),
            Some(owner) => {
                if owner.is_none() {
                    // Some endpoints (moto) describe tags of unknown groups as empty.
                    self.elb
                        .describe_target_groups()
                        .target_group_arns(target.as_str())
                        .send()
                        .await
                        .aws(Call::new(
                            "DescribeTargetGroups",
                            ResourceKind::Target,
                            target.as_str(),
                        ))?;
                }
                Err(Error::NotOwned {
                    kind: ResourceKind::Target,
                    id: target.to_string(),
                    service: service.to_string(),
                })
            }
        }
    }
}
