//! `attach` in named steps: find the fleet's target group or create it (tagged, with settings
//! configured or copied from the serving group), then register the running instances in
//! batches, or have the fleet join the group when a [`TargetMembership`](super::TargetMembership)
//! is configured.

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::{
    Matcher, ProtocolEnum, TargetDescription, TargetGroupAttribute, TargetTypeEnum,
};
use immutable_core::{Error, FleetInfo, InstanceState, ResourceKind, Result, Target, TargetId};

use super::naming::target_group_name;
use super::owners::GroupTags;
use super::settings::DEREGISTRATION_DELAY;
use super::{AwsRouter, EntryPoint, TARGETS_BATCH, TargetGroupSettings};
use crate::error::{Call, MapAws, NotFoundIsNone};
use crate::ownership::target_group_tags;

impl AwsRouter {
    /// Finds or creates the fleet's target group and registers its running instances.
    pub(super) async fn attach_fleet(&self, fleet: &FleetInfo) -> Result<Target> {
        let service = &fleet.service;
        let entry = self.entry(service)?;
        let name = target_group_name(service, &fleet.id);
        let found = self.find_group(&name).await?;
        let arn = match found {
            Some(arn) => self.owned_group(service, arn).await?,
            None => match self.create_group(fleet, entry, &name).await {
                Err(Error::AlreadyExists { .. }) => {
                    let arn = self.find_group(&name).await?.ok_or_else(|| {
                        Error::provider(format!(
                            "target group {name} exists but DescribeTargetGroups does not find it"
                        ))
                    })?;
                    self.owned_group(service, arn).await?
                }
                other => other?,
            },
        };
        match &self.membership {
            Some(membership) => membership.join(fleet, &arn).await?,
            None => self.register(&arn, fleet).await?,
        }
        Ok(Target::new(
            TargetId::new(arn),
            fleet.id.clone(),
            service.clone(),
        ))
    }

    /// `arn`, once its ownership tags say it is the service's.
    async fn owned_group(
        &self,
        service: &immutable_core::ServiceName,
        arn: String,
    ) -> Result<String> {
        self.ensure_owned(service, &TargetId::new(&arn)).await?;
        Ok(arn)
    }

    /// The ARN of the group named `name`, if there is one (an earlier attach made it).
    async fn find_group(&self, name: &str) -> Result<Option<String>> {
        let found = self
            .elb
            .describe_target_groups()
            .names(name)
            .send()
            .await
            .aws(Call::new(
                "DescribeTargetGroups",
                ResourceKind::Target,
                name,
            ))
            .none_if_not_found()?;
        Ok(found.and_then(|out| {
            out.target_groups()
                .first()
                .and_then(|g| g.target_group_arn())
                .map(str::to_owned)
        }))
    }

    /// Creates the fleet's group with the service's settings and the fleet's tags.
    async fn create_group(
        &self,
        fleet: &FleetInfo,
        entry: &EntryPoint,
        name: &str,
    ) -> Result<String> {
        let settings = self.group_settings(&fleet.service, entry).await?;
        let arn = self.create_target_group(name, &settings, fleet).await?;
        let owner = GroupTags {
            owner: Some(fleet.service.clone()),
            fleet: Some(fleet.id.clone()),
        };
        self.remember(&arn, owner);
        if let Some(delay) = settings.deregistration_delay {
            self.set_deregistration_delay(&arn, delay).await?;
        }
        Ok(arn)
    }

    /// One `CreateTargetGroup` call; returns the new group's ARN.
    async fn create_target_group(
        &self,
        name: &str,
        s: &TargetGroupSettings,
        fleet: &FleetInfo,
    ) -> Result<String> {
        let out = self
            .elb
            .create_target_group()
            .name(name)
            .protocol(ProtocolEnum::from(s.protocol.as_str()))
            .port(s.port)
            .vpc_id(&s.vpc_id)
            .target_type(TargetTypeEnum::Instance)
            .health_check_enabled(true)
            .health_check_path(&s.health_check_path)
            .health_check_port(&s.health_check_port)
            .set_health_check_protocol(s.health_check_protocol.as_deref().map(ProtocolEnum::from))
            .health_check_interval_seconds(s.health_check_interval_seconds)
            .health_check_timeout_seconds(s.health_check_timeout_seconds)
            .healthy_threshold_count(s.healthy_threshold)
            .unhealthy_threshold_count(s.unhealthy_threshold)
            .matcher(Matcher::builder().http_code(&s.matcher).build())
            .set_tags(Some(target_group_tags(fleet)))
            .send()
            .await
            .aws(Call::new("CreateTargetGroup", ResourceKind::Target, name))?;
        Ok(out
            .target_groups()
            .first()
            .and_then(|g| g.target_group_arn())
            .ok_or_else(|| Error::provider("CreateTargetGroup returned no ARN"))?
            .to_owned())
    }

    async fn set_deregistration_delay(&self, arn: &str, delay: Duration) -> Result<()> {
        let attribute = TargetGroupAttribute::builder()
            .key(DEREGISTRATION_DELAY)
            .value(delay.as_secs().to_string())
            .build();
        self.elb
            .modify_target_group_attributes()
            .target_group_arn(arn)
            .attributes(attribute)
            .send()
            .await
            .aws(Call::new(
                "ModifyTargetGroupAttributes",
                ResourceKind::Target,
                arn,
            ))?;
        Ok(())
    }

    /// Registers the fleet's running instances, 1,000 per call.
    async fn register(&self, arn: &str, fleet: &FleetInfo) -> Result<()> {
        let instances: Vec<TargetDescription> = fleet
            .instances
            .iter()
            .filter(|i| i.state == InstanceState::Running)
            .map(|i| TargetDescription::builder().id(i.id.as_str()).build())
            .collect();
        for batch in instances.chunks(TARGETS_BATCH) {
            self.elb
                .register_targets()
                .target_group_arn(arn)
                .set_targets(Some(batch.to_vec()))
                .send()
                .await
                .aws(Call::new("RegisterTargets", ResourceKind::Target, arn))?;
        }
        Ok(())
    }
}
