//! [`Fleet`] on EC2 instances.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    Filter, IamInstanceProfileSpecification, InstanceStateName, LaunchTemplateSpecification,
    ResourceType, Tag, TagSpecification,
};
use immutable_core::{
    DeploymentId, Error, Fleet, FleetId, FleetInfo, FleetKey, FleetSpec, ImageId, Instance,
    InstanceId, InstanceState, Labels, ResourceKind, Result, ServiceName, tags,
};

use crate::AwsClients;
use crate::error::{Call, MapAws};
use crate::image::{filter, labels_of, tag_filter};

/// Tag holding a fleet's idempotency key.
pub const KEY_TAG: &str = "immutable:fleet-key";
/// Tag holding a fleet's asked-for capacity.
pub const CAPACITY_TAG: &str = "immutable:capacity";

const TERMINATE_BATCH: usize = 1000;

/// Where the instance settings come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaunchTemplate {
    /// A launch template by id (`lt-...`).
    Id(String),
    /// A launch template by name.
    Name(String),
}

/// Fleets of EC2 instances, one `RunInstances` per subnet.
///
/// - Every instance and its volumes are tagged with the service, fleet, deployment, key and
///   capacity; the tags are the fleet: it has no other AWS resource.
/// - `launch` first looks the key up by tag, so launching twice launches once (moto ignores
///   `ClientToken`; real AWS honours the token this backend sends too). A fleet short of its
///   capacity is topped up.
/// - Instances are spread round-robin over the subnets, one all-or-nothing `RunInstances` per
///   subnet. When a subnet's call fails (a partial launch of the fleet), its share is asked of
///   the subnets that worked; if it still cannot be filled, `launch` fails with [`Error::Provider`] naming each
///   subnet's error. The launched instances keep their tags, so the engine's rollback finds and
///   terminates them.
/// - Reads are paginated (`page_size`, 5 to 1000); terminations go in batches of 1,000.
#[derive(Debug, Clone)]
pub struct AwsFleet {
    ec2: aws_sdk_ec2::Client,
    settings: LaunchSettings,
}

#[derive(Debug, Clone, Default)]
struct LaunchSettings {
    template: Option<LaunchTemplate>,
    template_version: Option<String>,
    instance_type: Option<String>,
    subnets: Vec<String>,
    security_groups: Vec<String>,
    key_name: Option<String>,
    iam_instance_profile: Option<String>,
    user_data: Option<String>,
    page_size: i32,
}

/// Builds an [`AwsFleet`].
#[derive(Debug, Clone)]
#[must_use]
pub struct AwsFleetBuilder {
    ec2: aws_sdk_ec2::Client,
    settings: LaunchSettings,
}

impl AwsFleetBuilder {
    /// Launches from a launch template, with the image overridden by each deployment's.
    pub fn launch_template(mut self, template: LaunchTemplate) -> Self {
        self.settings.template = Some(template);
        self
    }

    /// The launch template version (`$Latest`, `$Default` or a number). Default: the
    /// template's default version.
    pub fn launch_template_version(mut self, version: impl Into<String>) -> Self {
        self.settings.template_version = Some(version.into());
        self
    }

    /// The instance type; required without a launch template.
    pub fn instance_type(mut self, instance_type: impl Into<String>) -> Self {
        self.settings.instance_type = Some(instance_type.into());
        self
    }

    /// Subnets to spread the instances over. Without any, the launch template's or the
    /// default VPC's subnet is used.
    pub fn subnets<S: Into<String>>(mut self, subnets: impl IntoIterator<Item = S>) -> Self {
        self.settings.subnets = subnets.into_iter().map(Into::into).collect();
        self
    }

    /// Security group ids.
    pub fn security_groups<S: Into<String>>(mut self, groups: impl IntoIterator<Item = S>) -> Self {
        self.settings.security_groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// An EC2 key pair name.
    pub fn key_name(mut self, key: impl Into<String>) -> Self {
        self.settings.key_name = Some(key.into());
        self
    }

    /// An IAM instance profile, by name or ARN.
    pub fn iam_instance_profile(mut self, profile: impl Into<String>) -> Self {
        self.settings.iam_instance_profile = Some(profile.into());
        self
    }

    /// User data, as plain text; it is base64-encoded for EC2.
    pub fn user_data(mut self, user_data: impl Into<String>) -> Self {
        self.settings.user_data = Some(user_data.into());
        self
    }

    /// Results per page of `DescribeInstances`, 5 to 1000. Default 1000.
    pub fn page_size(mut self, page_size: i32) -> Self {
        self.settings.page_size = page_size;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field: no instance type and no launch template, an
    /// empty id, or a page size outside 5 to 1000.
    pub fn build(self) -> Result<AwsFleet> {
        let s = &self.settings;
        if s.template.is_none() && s.instance_type.is_none() {
            return Err(Error::invalid(
                "instance_type",
                "is required when no launch template is given",
            ));
        }
        match &s.template {
            Some(LaunchTemplate::Id(v) | LaunchTemplate::Name(v)) if v.is_empty() => {
                return Err(Error::invalid("launch_template", "must not be empty"));
            }
            _ => {}
        }
        if s.subnets.iter().any(String::is_empty) {
            return Err(Error::invalid("subnets", "must not hold an empty id"));
        }
        if s.security_groups.iter().any(String::is_empty) {
            return Err(Error::invalid(
                "security_groups",
                "must not hold an empty id",
            ));
        }
        if !(5..=1000).contains(&s.page_size) {
            return Err(Error::invalid(
                "page_size",
                format!("must be 5 to 1000, got {}", s.page_size),
            ));
        }
        Ok(AwsFleet {
            ec2: self.ec2,
            settings: self.settings,
        })
    }
}

fn instance_state(s: Option<&InstanceStateName>) -> InstanceState {
    match s {
        Some(InstanceStateName::Pending) => InstanceState::Pending,
        Some(InstanceStateName::Running) => InstanceState::Running,
        Some(InstanceStateName::Stopped) => InstanceState::Stopped,
        Some(InstanceStateName::Stopping | InstanceStateName::ShuttingDown) => {
            InstanceState::Stopping
        }
        _ => InstanceState::Terminated,
    }
}

/// One described instance with its tags.
struct Described {
    id: InstanceId,
    state: InstanceState,
    image: ImageId,
    subnet: Option<String>,
    tags: Labels,
}

fn fleet_id(key: &FleetKey) -> FleetId {
    FleetId::new(format!("fleet-{key}"))
}

/// Builds fleets from instances grouped by their fleet tag.
fn group(service: &ServiceName, instances: Vec<Described>) -> Vec<FleetInfo> {
    let mut by_fleet: BTreeMap<String, Vec<Described>> = BTreeMap::new();
    for i in instances {
        if let Some(f) = i.tags.get(tags::FLEET) {
            by_fleet.entry(f.clone()).or_default().push(i);
        }
    }
    by_fleet
        .into_iter()
        .map(|(id, members)| {
            let first = &members[0];
            let tag = |k: &str| first.tags.get(k).cloned().unwrap_or_default();
            FleetInfo::new(
                FleetId::new(id),
                service.clone(),
                FleetKey::new(tag(KEY_TAG)),
                DeploymentId::new(tag(tags::DEPLOYMENT)),
                first.image.clone(),
                tag(CAPACITY_TAG).parse().unwrap_or(members.len() as u32),
                members
                    .iter()
                    .map(|m| Instance {
                        id: m.id.clone(),
                        state: m.state,
                    })
                    .collect(),
            )
        })
        .collect()
}

/// How many instances each subnet gets: round-robin from the subnets holding fewest.
fn spread(need: u32, subnets: &[String], existing: &[Described]) -> Vec<(Option<String>, u32)> {
    if subnets.is_empty() {
        return vec![(None, need)];
    }
    let mut counts: Vec<(usize, u32)> = subnets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let have = existing
                .iter()
                .filter(|e| e.subnet.as_deref() == Some(s))
                .count() as u32;
            (i, have)
        })
        .collect();
    let mut add = vec![0u32; subnets.len()];
    for _ in 0..need {
        let slot = counts
            .iter_mut()
            .min_by_key(|(i, have)| (*have, *i))
            .expect("subnets are not empty");
        add[slot.0] += 1;
        slot.1 += 1;
    }
    subnets
        .iter()
        .zip(add)
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| (Some(s.clone()), n))
        .collect()
}

impl AwsFleet {
    /// Starts building a fleet backend over the given clients.
    pub fn builder(clients: &AwsClients) -> AwsFleetBuilder {
        Self::builder_from_client(clients.ec2.clone())
    }

    /// Starts building a fleet backend over one EC2 client.
    pub fn builder_from_client(ec2: aws_sdk_ec2::Client) -> AwsFleetBuilder {
        AwsFleetBuilder {
            ec2,
            settings: LaunchSettings {
                page_size: 1000,
                ..LaunchSettings::default()
            },
        }
    }

    /// Every instance matching `filters`, all pages.
    async fn instances(&self, filters: Vec<Filter>, what: &str) -> Result<Vec<Described>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .ec2
                .describe_instances()
                .set_filters(Some(filters.clone()))
                .max_results(self.settings.page_size)
                .set_next_token(token.take())
                .send()
                .await
                .aws(Call::new("DescribeInstances", ResourceKind::Fleet, what))?;
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                let (Some(id), Some(image)) = (i.instance_id(), i.image_id()) else {
                    continue;
                };
                out.push(Described {
                    id: InstanceId::new(id),
                    state: instance_state(i.state().and_then(|s| s.name())),
                    image: ImageId::new(image),
                    subnet: i.subnet_id().map(str::to_owned),
                    tags: labels_of(i.tags()),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    /// One RunInstances call: up to `count` instances in one subnet.
    async fn run(
        &self,
        spec: &FleetSpec,
        subnet: Option<&str>,
        count: u32,
        token: String,
    ) -> Result<Vec<Described>> {
        let s = &self.settings;
        let id = fleet_id(&spec.key);
        let mut tags = vec![
            (tags::SERVICE, spec.service.to_string()),
            (tags::FLEET, id.to_string()),
            (tags::DEPLOYMENT, spec.deployment.to_string()),
            (tags::MANAGED_BY, tags::MANAGED_BY_VALUE.to_owned()),
            (KEY_TAG, spec.key.to_string()),
            (CAPACITY_TAG, spec.capacity.to_string()),
        ];
        tags.push(("Name", format!("{}-{}", spec.service, spec.key)));
        let tag_spec = |rt: ResourceType| {
            TagSpecification::builder()
                .resource_type(rt)
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| Tag::builder().key(*k).value(v).build())
                        .collect(),
                ))
                .build()
        };
        let mut req = self
            .ec2
            .run_instances()
            .image_id(spec.image.as_str())
            // All or nothing per subnet: a subnet short of capacity fails the call, and its
            // share is asked of the other subnets.
            .min_count(count as i32)
            .max_count(count as i32)
            .client_token(token)
            .tag_specifications(tag_spec(ResourceType::Instance))
            .tag_specifications(tag_spec(ResourceType::Volume))
            .set_instance_type(s.instance_type.as_deref().map(Into::into))
            .set_subnet_id(subnet.map(str::to_owned))
            .set_key_name(s.key_name.clone())
            .set_user_data(s.user_data.as_ref().map(aws_smithy_types::base64::encode));
        if !s.security_groups.is_empty() {
            req = req.set_security_group_ids(Some(s.security_groups.clone()));
        }
        if let Some(profile) = &s.iam_instance_profile {
            let p = IamInstanceProfileSpecification::builder();
            req = req.iam_instance_profile(if profile.starts_with("arn:") {
                p.arn(profile).build()
            } else {
                p.name(profile).build()
            });
        }
        if let Some(t) = &s.template {
            let lt = LaunchTemplateSpecification::builder();
            let lt = match t {
                LaunchTemplate::Id(v) => lt.launch_template_id(v),
                LaunchTemplate::Name(v) => lt.launch_template_name(v),
            };
            req = req.launch_template(lt.set_version(s.template_version.clone()).build());
        }
        let out =
            req.send()
                .await
                .aws(Call::new("RunInstances", ResourceKind::Fleet, id.as_str()))?;
        Ok(out
            .instances()
            .iter()
            .filter_map(|i| {
                Some(Described {
                    id: InstanceId::new(i.instance_id()?),
                    state: instance_state(i.state().and_then(|s| s.name())),
                    image: spec.image.clone(),
                    subnet: i
                        .subnet_id()
                        .map(str::to_owned)
                        .or(subnet.map(str::to_owned)),
                    tags: Labels::new(),
                })
            })
            .collect())
    }

    /// The fleet's instances in every state, checked for ownership.
    async fn fleet_instances(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
    ) -> Result<Vec<Described>> {
        let found = self
            .instances(
                vec![tag_filter(tags::FLEET, fleet.as_str())],
                fleet.as_str(),
            )
            .await?;
        if found.is_empty() {
            return Err(Error::not_found(ResourceKind::Fleet, fleet.as_str()));
        }
        if found
            .iter()
            .any(|i| i.tags.get(tags::SERVICE).map(String::as_str) != Some(service.as_str()))
        {
            return Err(Error::NotOwned {
                kind: ResourceKind::Fleet,
                id: fleet.to_string(),
                service: service.to_string(),
            });
        }
        Ok(found)
    }
}

#[async_trait]
impl Fleet for AwsFleet {
    async fn launch(&self, spec: &FleetSpec) -> Result<FleetInfo> {
        if spec.capacity == 0 {
            return Err(Error::invalid("capacity", "must be at least 1"));
        }
        let id = fleet_id(&spec.key);
        let mut have: Vec<Described> = self
            .instances(
                vec![
                    tag_filter(tags::SERVICE, spec.service.as_str()),
                    tag_filter(KEY_TAG, spec.key.as_str()),
                    filter("instance-state-name", &["pending", "running"]),
                ],
                id.as_str(),
            )
            .await?;
        let existing = have.len() as u32;
        let mut failures: Vec<(String, Error)> = Vec::new();
        if existing < spec.capacity {
            let plan = spread(spec.capacity - existing, &self.settings.subnets, &have);
            let mut worked = Vec::new();
            for (i, (subnet, count)) in plan.iter().enumerate() {
                let token = format!("{}-{existing}-{i}", spec.key);
                match self.run(spec, subnet.as_deref(), *count, token).await {
                    Ok(new) => {
                        if (new.len() as u32) < *count {
                            failures.push((
                                subnet.clone().unwrap_or_else(|| "default subnet".into()),
                                Error::provider(format!("launched {} of {count}", new.len())),
                            ));
                        }
                        worked.push(subnet.clone());
                        have.extend(new);
                    }
                    Err(e) => failures
                        .push((subnet.clone().unwrap_or_else(|| "default subnet".into()), e)),
                }
            }
            // Ask the subnets that worked for the shortfall.
            for (i, subnet) in worked.iter().enumerate() {
                let short = spec.capacity.saturating_sub(have.len() as u32);
                if short == 0 {
                    break;
                }
                let token = format!("{}-{existing}-r{i}", spec.key);
                match self.run(spec, subnet.as_deref(), short, token).await {
                    Ok(new) => have.extend(new),
                    Err(e) => failures.push((subnet.clone().unwrap_or_default(), e)),
                }
            }
            let launched = have.len() as u32;
            if launched < spec.capacity {
                if launched == 0 {
                    return Err(failures
                        .into_iter()
                        .next()
                        .map(|(_, e)| e)
                        .unwrap_or_else(|| {
                            Error::provider(format!("RunInstances launched nothing for fleet {id}"))
                        }));
                }
                let detail: Vec<String> =
                    failures.iter().map(|(s, e)| format!("{s}: {e}")).collect();
                return Err(Error::provider(format!(
                    "partial launch of fleet {id}: {launched} of {} instances ({}); the launched \
                     instances keep their tags: terminate the fleet, or launch again to top it up",
                    spec.capacity,
                    detail.join("; ")
                )));
            }
        }
        Ok(FleetInfo::new(
            id,
            spec.service.clone(),
            spec.key.clone(),
            spec.deployment.clone(),
            spec.image.clone(),
            spec.capacity,
            have.into_iter()
                .map(|d| Instance {
                    id: d.id,
                    state: d.state,
                })
                .collect(),
        ))
    }

    async fn describe(&self, service: &ServiceName, fleet: &FleetId) -> Result<FleetInfo> {
        let found = self.fleet_instances(service, fleet).await?;
        group(service, found)
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found(ResourceKind::Fleet, fleet.as_str()))
    }

    async fn list(&self, service: &ServiceName) -> Result<Vec<FleetInfo>> {
        let found = self
            .instances(
                vec![
                    tag_filter(tags::SERVICE, service.as_str()),
                    filter("instance-state-name", &["pending", "running"]),
                ],
                service.as_str(),
            )
            .await?;
        Ok(group(service, found))
    }

    async fn terminate(&self, service: &ServiceName, fleet: &FleetId) -> Result<()> {
        let found = self.fleet_instances(service, fleet).await?;
        let ids: Vec<String> = found
            .iter()
            .filter(|i| i.state != InstanceState::Terminated)
            .map(|i| i.id.to_string())
            .collect();
        for batch in ids.chunks(TERMINATE_BATCH) {
            self.ec2
                .terminate_instances()
                .set_instance_ids(Some(batch.to_vec()))
                .send()
                .await
                .aws(Call::new(
                    "TerminateInstances",
                    ResourceKind::Fleet,
                    fleet.as_str(),
                ))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_spread_over_subnets_evenly() {
        let subnets = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(
            spread(7, &subnets, &[]),
            vec![
                (Some("a".into()), 3),
                (Some("b".into()), 2),
                (Some("c".into()), 2)
            ]
        );
        let have = vec![Described {
            id: "i-1".into(),
            state: InstanceState::Running,
            image: "ami-1".into(),
            subnet: Some("a".into()),
            tags: Labels::new(),
        }];
        assert_eq!(
            spread(2, &subnets, &have),
            vec![(Some("b".into()), 1), (Some("c".into()), 1)]
        );
        assert_eq!(spread(4, &[], &[]), vec![(None, 4)]);
    }
}
