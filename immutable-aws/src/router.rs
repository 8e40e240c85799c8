//! [`TrafficRouter`] on an ALB listener (its default action, or one listener rule).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig, Matcher, ProtocolEnum,
    Tag, TargetDescription, TargetGroupAttribute, TargetGroupTuple, TargetHealthStateEnum,
    TargetTypeEnum,
};
use immutable_core::{
    Error, FleetId, FleetInfo, HealthReport, HealthState, InstanceHealth, InstanceState,
    ResourceKind, Result, Routing, ServiceName, Target, TargetId, TrafficRouter, tags,
};

use crate::AwsClients;
use crate::error::{Call, MapAws};

const REGISTER_BATCH: usize = 1000;
const DESCRIBE_TAGS_BATCH: usize = 20;
const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";

/// Where a service's traffic enters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryPoint {
    /// The listener whose default action the SDK sets, when `rule` is `None`.
    pub listener: Option<String>,
    /// A listener rule whose actions the SDK sets instead.
    pub rule: Option<String>,
    /// A second listener (say port 8080, reachable only from the office) that
    /// [`TrafficRouter::preview`] points at a candidate fleet.
    pub preview_listener: Option<String>,
    /// Settings of new target groups; without them they are copied from the group that serves.
    pub target_group: Option<TargetGroupSettings>,
}

impl EntryPoint {
    /// A listener's default action.
    pub fn listener(arn: impl Into<String>) -> Self {
        EntryPoint {
            listener: Some(arn.into()),
            rule: None,
            preview_listener: None,
            target_group: None,
        }
    }

    /// One listener rule.
    pub fn rule(arn: impl Into<String>) -> Self {
        EntryPoint {
            listener: None,
            rule: Some(arn.into()),
            preview_listener: None,
            target_group: None,
        }
    }

    /// Adds a preview listener.
    pub fn with_preview_listener(mut self, arn: impl Into<String>) -> Self {
        self.preview_listener = Some(arn.into());
        self
    }

    /// Sets the settings of new target groups (required for a service's first deployment).
    pub fn with_target_group(mut self, settings: TargetGroupSettings) -> Self {
        self.target_group = Some(settings);
        self
    }
}

/// What a new target group is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TargetGroupSettings {
    /// `HTTP` or `HTTPS`.
    pub protocol: String,
    /// The port instances serve on.
    pub port: i32,
    /// The VPC of the instances.
    pub vpc_id: String,
    /// Health check path. Default `/`.
    pub health_check_path: String,
    /// Health check port: `traffic-port` or a number. Default `traffic-port`.
    pub health_check_port: String,
    /// Health check protocol; default the group's protocol.
    pub health_check_protocol: Option<String>,
    /// Seconds between health checks. Default 10.
    pub health_check_interval_seconds: i32,
    /// Seconds before a check times out. Default 5.
    pub health_check_timeout_seconds: i32,
    /// Passing checks to become healthy. Default 3.
    pub healthy_threshold: i32,
    /// Failing checks to become unhealthy. Default 2.
    pub unhealthy_threshold: i32,
    /// Healthy HTTP codes, e.g. `200` or `200-299`. Default `200`.
    pub matcher: String,
    /// How long deregistered instances drain. Default: the ALB default (300 s).
    pub deregistration_delay: Option<Duration>,
}

impl TargetGroupSettings {
    /// HTTP on `port` in `vpc_id`, with default health checks on `/`.
    pub fn http(port: i32, vpc_id: impl Into<String>) -> Self {
        TargetGroupSettings {
            protocol: "HTTP".into(),
            port,
            vpc_id: vpc_id.into(),
            health_check_path: "/".into(),
            health_check_port: "traffic-port".into(),
            health_check_protocol: None,
            health_check_interval_seconds: 10,
            health_check_timeout_seconds: 5,
            healthy_threshold: 3,
            unhealthy_threshold: 2,
            matcher: "200".into(),
            deregistration_delay: None,
        }
    }

    /// Sets the health check path.
    pub fn with_health_check_path(mut self, path: impl Into<String>) -> Self {
        self.health_check_path = path.into();
        self
    }

    /// Sets the deregistration delay.
    pub fn with_deregistration_delay(mut self, delay: Duration) -> Self {
        self.deregistration_delay = Some(delay);
        self
    }
}

/// Routes each configured service through its [`EntryPoint`].
///
/// - One target group per fleet, named `imm-<service>-<hash of service and fleet>` (so attach is
///   idempotent) and tagged with the service, fleet and deployment.
/// - `set_weights` writes one weighted forward action with one `ModifyListener` (or
///   `ModifyRule`) call, keeping the listener's other actions; an empty split becomes a fixed
///   503 response.
/// - `detach` refuses the group that takes traffic, deregisters its instances, waits while any
///   drains (bounded by the group's deregistration delay), then deletes it.
/// - Target groups without the service's tag are refused with [`Error::NotOwned`].
#[derive(Debug, Clone)]
pub struct AwsRouter {
    elb: aws_sdk_elasticloadbalancingv2::Client,
    services: Arc<BTreeMap<ServiceName, EntryPoint>>,
    drain_poll: Duration,
    /// Target group ARN -> its ownership tags, as read once (they never change).
    owners: Arc<Mutex<HashMap<String, GroupTags>>>,
}

/// Builds an [`AwsRouter`].
#[derive(Debug, Clone)]
#[must_use]
pub struct AwsRouterBuilder {
    elb: aws_sdk_elasticloadbalancingv2::Client,
    services: Vec<(String, EntryPoint)>,
    drain_poll: Duration,
}

impl AwsRouterBuilder {
    /// Routes `service` through `entry`.
    pub fn service(mut self, service: impl Into<String>, entry: EntryPoint) -> Self {
        self.services.push((service.into(), entry));
        self
    }

    /// How often `detach` checks whether deregistered instances still drain. Default 5 s.
    pub fn drain_poll_interval(mut self, interval: Duration) -> Self {
        self.drain_poll = interval;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field: an invalid service name, an entry point with
    /// neither or both of a listener and a rule, an empty ARN, or a bad port.
    pub fn build(self) -> Result<AwsRouter> {
        let mut services = BTreeMap::new();
        for (name, entry) in self.services {
            let service = ServiceName::new(name)?;
            match (&entry.listener, &entry.rule) {
                (Some(a), None) | (None, Some(a)) if !a.is_empty() => {}
                _ => {
                    return Err(Error::invalid(
                        "entry_point",
                        format!("service `{service}` needs exactly one listener ARN or rule ARN"),
                    ));
                }
            }
            if entry.preview_listener.as_deref() == Some("") {
                return Err(Error::invalid("preview_listener", "must not be empty"));
            }
            if let Some(tg) = &entry.target_group {
                if !(1..=65535).contains(&tg.port) {
                    return Err(Error::invalid("target_group.port", "must be 1 to 65535"));
                }
                if tg.vpc_id.is_empty() {
                    return Err(Error::invalid("target_group.vpc_id", "must not be empty"));
                }
            }
            services.insert(service, entry);
        }
        if self.drain_poll.is_zero() {
            return Err(Error::invalid("drain_poll_interval", "must be above zero"));
        }
        Ok(AwsRouter {
            elb: self.elb,
            services: Arc::new(services),
            drain_poll: self.drain_poll,
            owners: Arc::default(),
        })
    }
}

/// The ownership tags of one target group.
#[derive(Debug, Clone, Default)]
struct GroupTags {
    /// The service it belongs to; `None` for a group without the tag.
    owner: Option<ServiceName>,
    /// The fleet behind it.
    fleet: Option<FleetId>,
}

/// `imm-<service prefix>-<16 hex digits>`: at most 32 characters, letters, digits and hyphens.
pub(crate) fn target_group_name(service: &ServiceName, fleet: &FleetId) -> String {
    format!(
        "{}{:016x}",
        name_prefix(service),
        fnv1a(&format!("{service}/{fleet}"))
    )
}

fn name_prefix(service: &ServiceName) -> String {
    let cleaned: String = service
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(11)
        .collect();
    format!("imm-{}-", cleaned.trim_matches('-'))
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn health_state(s: Option<&TargetHealthStateEnum>) -> HealthState {
    match s {
        Some(TargetHealthStateEnum::Healthy) => HealthState::Healthy,
        Some(TargetHealthStateEnum::Initial) => HealthState::Initial,
        Some(TargetHealthStateEnum::Unhealthy) => HealthState::Unhealthy,
        Some(TargetHealthStateEnum::Draining | TargetHealthStateEnum::UnhealthyDraining) => {
            HealthState::Draining
        }
        _ => HealthState::Unavailable,
    }
}

/// The split a list of actions forwards to, in percent.
fn routing_of(actions: &[Action]) -> Routing {
    let Some(last) = actions.iter().max_by_key(|a| a.order().unwrap_or(i32::MAX)) else {
        return Routing::empty();
    };
    if last.r#type() != Some(&ActionTypeEnum::Forward) {
        return Routing::empty();
    }
    let groups: Vec<(String, u32)> = match last.forward_config() {
        Some(fc) if !fc.target_groups().is_empty() => fc
            .target_groups()
            .iter()
            .filter_map(|t| {
                Some((
                    t.target_group_arn()?.to_owned(),
                    t.weight().unwrap_or(1).max(0) as u32,
                ))
            })
            .collect(),
        _ => match last.target_group_arn() {
            Some(arn) => vec![(arn.to_owned(), 1)],
            None => Vec::new(),
        },
    };
    let total: u32 = groups.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return Routing::empty();
    }
    // Weights set by others need not sum to 100: scale, giving rounding leftovers to the first.
    let mut percents: Vec<(TargetId, u32)> = groups
        .iter()
        .map(|(arn, w)| (TargetId::new(arn), w * 100 / total))
        .collect();
    let leftover = 100 - percents.iter().map(|(_, p)| p).sum::<u32>();
    if let Some(first) = percents.iter_mut().max_by_key(|(_, p)| *p) {
        first.1 += leftover;
    }
    Routing::new(percents).unwrap_or_default()
}

/// The actions with the terminal (forward / fixed-response) action replaced by `routing`.
fn with_routing(current: &[Action], routing: &Routing) -> Vec<Action> {
    let mut actions: Vec<Action> = current.to_vec();
    let terminal = actions
        .iter()
        .enumerate()
        .max_by_key(|(_, a)| a.order().unwrap_or(i32::MAX))
        .map(|(i, _)| i);
    let order = terminal.and_then(|i| actions[i].order());
    let stickiness = terminal
        .and_then(|i| actions[i].forward_config())
        .and_then(|f| f.target_group_stickiness_config())
        .cloned();
    let new = if routing.is_empty() {
        Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .status_code("503")
                    .content_type("text/plain")
                    .message_body("no fleet serves this service")
                    .build(),
            )
    } else {
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .set_target_groups(Some(
                        routing
                            .weights()
                            .iter()
                            .map(|(t, w)| {
                                TargetGroupTuple::builder()
                                    .target_group_arn(t.as_str())
                                    .weight(*w as i32)
                                    .build()
                            })
                            .collect(),
                    ))
                    .set_target_group_stickiness_config(stickiness)
                    .build(),
            )
    };
    let new = new.set_order(order).build();
    match terminal {
        Some(i) => actions[i] = new,
        None => actions.push(new),
    }
    actions
}

impl AwsRouter {
    /// Starts building a router over the given clients.
    pub fn builder(clients: &AwsClients) -> AwsRouterBuilder {
        Self::builder_from_client(clients.elbv2.clone())
    }

    /// Starts building a router over one ELBv2 client.
    pub fn builder_from_client(elb: aws_sdk_elasticloadbalancingv2::Client) -> AwsRouterBuilder {
        AwsRouterBuilder {
            elb,
            services: Vec::new(),
            drain_poll: Duration::from_secs(5),
        }
    }

    fn entry(&self, service: &ServiceName) -> Result<&EntryPoint> {
        self.services.get(service).ok_or_else(|| {
            Error::invalid(
                "service",
                format!("no entry point is configured for service `{service}` on this router"),
            )
        })
    }

    /// The actions of the service's listener default action or rule.
    async fn actions(&self, entry: &EntryPoint) -> Result<Vec<Action>> {
        if let Some(rule) = &entry.rule {
            let out = self
                .elb
                .describe_rules()
                .rule_arns(rule)
                .send()
                .await
                .aws(Call::new("DescribeRules", ResourceKind::EntryPoint, rule))?;
            let r = out
                .rules()
                .first()
                .ok_or_else(|| Error::not_found(ResourceKind::EntryPoint, rule.as_str()))?;
            Ok(r.actions().to_vec())
        } else {
            let listener = entry.listener.as_deref().unwrap_or_default();
            self.listener_actions(listener).await
        }
    }

    async fn listener_actions(&self, listener: &str) -> Result<Vec<Action>> {
        let out = self
            .elb
            .describe_listeners()
            .listener_arns(listener)
            .send()
            .await
            .aws(Call::new(
                "DescribeListeners",
                ResourceKind::EntryPoint,
                listener,
            ))?;
        let l = out
            .listeners()
            .first()
            .ok_or_else(|| Error::not_found(ResourceKind::EntryPoint, listener))?;
        Ok(l.default_actions().to_vec())
    }

    async fn write_actions(&self, entry: &EntryPoint, actions: Vec<Action>) -> Result<()> {
        if let Some(rule) = &entry.rule {
            self.elb
                .modify_rule()
                .rule_arn(rule)
                .set_actions(Some(actions))
                .send()
                .await
                .aws(Call::new("ModifyRule", ResourceKind::EntryPoint, rule))?;
        } else {
            let listener = entry.listener.as_deref().unwrap_or_default();
            self.write_listener(listener, actions).await?;
        }
        Ok(())
    }

    async fn write_listener(&self, listener: &str, actions: Vec<Action>) -> Result<()> {
        self.elb
            .modify_listener()
            .listener_arn(listener)
            .set_default_actions(Some(actions))
            .send()
            .await
            .aws(Call::new(
                "ModifyListener",
                ResourceKind::EntryPoint,
                listener,
            ))?;
        Ok(())
    }

    /// Reads the ownership tags of target groups, 20 per call, caching them.
    async fn group_tags(&self, arns: &[String]) -> Result<HashMap<String, GroupTags>> {
        let mut known = HashMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.owners.lock().unwrap_or_else(|e| e.into_inner());
            for arn in arns {
                match cache.get(arn) {
                    Some(owner) => {
                        known.insert(arn.clone(), owner.clone());
                    }
                    None => missing.push(arn.clone()),
                }
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
            let mut cache = self.owners.lock().unwrap_or_else(|e| e.into_inner());
            for d in out.tag_descriptions() {
                let Some(arn) = d.resource_arn() else {
                    continue;
                };
                let tag = |key: &str| {
                    d.tags()
                        .iter()
                        .find(|t| t.key() == Some(key))
                        .and_then(|t| t.value())
                };
                let found = GroupTags {
                    owner: tag(tags::SERVICE).and_then(|v| ServiceName::new(v).ok()),
                    fleet: tag(tags::FLEET).map(FleetId::from),
                };
                cache.insert(arn.to_owned(), found.clone());
                known.insert(arn.to_owned(), found);
            }
        }
        Ok(known)
    }

    /// Refuses a target group that does not exist or is not the service's (I6).
    async fn ensure_owned(&self, service: &ServiceName, target: &TargetId) -> Result<()> {
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

    /// The settings of a new group: configured, or copied from the group that serves most.
    async fn group_settings(
        &self,
        service: &ServiceName,
        entry: &EntryPoint,
    ) -> Result<TargetGroupSettings> {
        if let Some(s) = &entry.target_group {
            return Ok(s.clone());
        }
        let routing = routing_of(&self.actions(entry).await?);
        let Some((live, _)) = routing.weights().iter().max_by_key(|(_, w)| **w) else {
            return Err(Error::invalid(
                "target_group",
                format!(
                    "service `{service}` has no serving target group to copy settings from; \
                     set TargetGroupSettings on its EntryPoint for a first deployment"
                ),
            ));
        };
        let call = Call::new("DescribeTargetGroups", ResourceKind::Target, live.as_str());
        let out = self
            .elb
            .describe_target_groups()
            .target_group_arns(live.as_str())
            .send()
            .await
            .aws(call)?;
        let g = out
            .target_groups()
            .first()
            .ok_or_else(|| Error::not_found(ResourceKind::Target, live.as_str()))?;
        let delay = self.deregistration_delay(live).await?;
        let defaults = TargetGroupSettings::http(80, "");
        Ok(TargetGroupSettings {
            protocol: g
                .protocol()
                .map_or(defaults.protocol, |p| p.as_str().to_owned()),
            port: g.port().unwrap_or(defaults.port),
            vpc_id: g.vpc_id().unwrap_or_default().to_owned(),
            health_check_path: g
                .health_check_path()
                .map_or(defaults.health_check_path, str::to_owned),
            health_check_port: g
                .health_check_port()
                .map_or(defaults.health_check_port, str::to_owned),
            health_check_protocol: g.health_check_protocol().map(|p| p.as_str().to_owned()),
            health_check_interval_seconds: g
                .health_check_interval_seconds()
                .unwrap_or(defaults.health_check_interval_seconds),
            health_check_timeout_seconds: g
                .health_check_timeout_seconds()
                .unwrap_or(defaults.health_check_timeout_seconds),
            healthy_threshold: g
                .healthy_threshold_count()
                .unwrap_or(defaults.healthy_threshold),
            unhealthy_threshold: g
                .unhealthy_threshold_count()
                .unwrap_or(defaults.unhealthy_threshold),
            matcher: g
                .matcher()
                .and_then(|m| m.http_code())
                .map_or(defaults.matcher, str::to_owned),
            deregistration_delay: delay,
        })
    }

    /// A group's deregistration delay, if it reports one.
    async fn deregistration_delay(&self, target: &TargetId) -> Result<Option<Duration>> {
        let attrs = self
            .elb
            .describe_target_group_attributes()
            .target_group_arn(target.as_str())
            .send()
            .await
            .aws(Call::new(
                "DescribeTargetGroupAttributes",
                ResourceKind::Target,
                target.as_str(),
            ))?;
        Ok(attrs
            .attributes()
            .iter()
            .find(|a| a.key() == Some(DEREGISTRATION_DELAY))
            .and_then(|a| a.value()?.parse().ok())
            .map(Duration::from_secs))
    }

    /// The registered instances of a group, with their health.
    async fn target_health(&self, target: &TargetId) -> Result<Vec<InstanceHealth>> {
        let out = self
            .elb
            .describe_target_health()
            .target_group_arn(target.as_str())
            .send()
            .await
            .aws(Call::new(
                "DescribeTargetHealth",
                ResourceKind::Target,
                target.as_str(),
            ))?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .filter_map(|d| {
                let th = d.target_health();
                Some(InstanceHealth {
                    instance: d.target()?.id()?.into(),
                    state: health_state(th.and_then(|h| h.state())),
                    reason: th
                        .and_then(|h| h.description().or(h.reason().map(|r| r.as_str())))
                        .map(str::to_owned),
                })
            })
            .collect())
    }
}

#[async_trait]
impl TrafficRouter for AwsRouter {
    async fn attach(&self, fleet: &FleetInfo) -> Result<Target> {
        let service = &fleet.service;
        let entry = self.entry(service)?;
        let name = target_group_name(service, &fleet.id);
        let existing = self.elb.describe_target_groups().names(&name).send().await;
        let arn = match existing.aws(Call::new(
            "DescribeTargetGroups",
            ResourceKind::Target,
            &name,
        )) {
            Ok(out) => out
                .target_groups()
                .first()
                .and_then(|g| g.target_group_arn())
                .map(str::to_owned),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let arn = match arn {
            Some(arn) => {
                self.ensure_owned(service, &TargetId::new(&arn)).await?;
                arn
            }
            None => {
                let s = self.group_settings(service, entry).await?;
                let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
                let out = self
                    .elb
                    .create_target_group()
                    .name(&name)
                    .protocol(ProtocolEnum::from(s.protocol.as_str()))
                    .port(s.port)
                    .vpc_id(&s.vpc_id)
                    .target_type(TargetTypeEnum::Instance)
                    .health_check_enabled(true)
                    .health_check_path(&s.health_check_path)
                    .health_check_port(&s.health_check_port)
                    .set_health_check_protocol(
                        s.health_check_protocol.as_deref().map(ProtocolEnum::from),
                    )
                    .health_check_interval_seconds(s.health_check_interval_seconds)
                    .health_check_timeout_seconds(s.health_check_timeout_seconds)
                    .healthy_threshold_count(s.healthy_threshold)
                    .unhealthy_threshold_count(s.unhealthy_threshold)
                    .matcher(Matcher::builder().http_code(&s.matcher).build())
                    .tags(tag(tags::SERVICE, service.as_str()))
                    .tags(tag(tags::FLEET, fleet.id.as_str()))
                    .tags(tag(tags::DEPLOYMENT, fleet.deployment.as_str()))
                    .tags(tag(tags::MANAGED_BY, tags::MANAGED_BY_VALUE))
                    .send()
                    .await
                    .aws(Call::new("CreateTargetGroup", ResourceKind::Target, &name))?;
                let arn = out
                    .target_groups()
                    .first()
                    .and_then(|g| g.target_group_arn())
                    .ok_or_else(|| Error::provider("CreateTargetGroup returned no ARN"))?
                    .to_owned();
                self.owners
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        arn.clone(),
                        GroupTags {
                            owner: Some(service.clone()),
                            fleet: Some(fleet.id.clone()),
                        },
                    );
                if let Some(delay) = s.deregistration_delay {
                    self.elb
                        .modify_target_group_attributes()
                        .target_group_arn(&arn)
                        .attributes(
                            TargetGroupAttribute::builder()
                                .key(DEREGISTRATION_DELAY)
                                .value(delay.as_secs().to_string())
                                .build(),
                        )
                        .send()
                        .await
                        .aws(Call::new(
                            "ModifyTargetGroupAttributes",
                            ResourceKind::Target,
                            &arn,
                        ))?;
                }
                arn
            }
        };
        let instances: Vec<TargetDescription> = fleet
            .instances
            .iter()
            .filter(|i| i.state == InstanceState::Running)
            .map(|i| TargetDescription::builder().id(i.id.as_str()).build())
            .collect();
        for batch in instances.chunks(REGISTER_BATCH) {
            self.elb
                .register_targets()
                .target_group_arn(&arn)
                .set_targets(Some(batch.to_vec()))
                .send()
                .await
                .aws(Call::new("RegisterTargets", ResourceKind::Target, &arn))?;
        }
        Ok(Target::new(
            TargetId::new(arn),
            fleet.id.clone(),
            service.clone(),
        ))
    }

    async fn targets(&self, service: &ServiceName) -> Result<Vec<Target>> {
        self.entry(service)?;
        let prefix = name_prefix(service);
        let mut candidates = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .elb
                .describe_target_groups()
                .page_size(400)
                .set_marker(marker.take())
                .send()
                .await
                .aws(Call::new(
                    "DescribeTargetGroups",
                    ResourceKind::Target,
                    service.as_str(),
                ))?;
            candidates.extend(
                out.target_groups()
                    .iter()
                    .filter(|g| {
                        g.target_group_name()
                            .is_some_and(|n| n.starts_with(&prefix))
                    })
                    .filter_map(|g| g.target_group_arn().map(str::to_owned)),
            );
            match out.next_marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
                _ => break,
            }
        }
        let tags = self.group_tags(&candidates).await?;
        Ok(candidates
            .into_iter()
            .filter_map(|arn| {
                let t = tags.get(&arn)?;
                if t.owner.as_ref() != Some(service) {
                    return None;
                }
                let fleet = t.fleet.clone()?;
                Some(Target::new(TargetId::new(arn), fleet, service.clone()))
            })
            .collect())
    }

    async fn health(&self, service: &ServiceName, target: &TargetId) -> Result<HealthReport> {
        self.ensure_owned(service, target).await?;
        Ok(HealthReport {
            target: target.clone(),
            instances: self.target_health(target).await?,
        })
    }

    async fn routing(&self, service: &ServiceName) -> Result<Routing> {
        let entry = self.entry(service)?;
        Ok(routing_of(&self.actions(entry).await?))
    }

    async fn set_weights(&self, service: &ServiceName, routing: &Routing) -> Result<()> {
        let entry = self.entry(service)?;
        for target in routing.weights().keys() {
            self.ensure_owned(service, target).await?;
        }
        let current = self.actions(entry).await?;
        self.write_actions(entry, with_routing(&current, routing))
            .await
    }

    async fn preview(&self, service: &ServiceName, target: Option<&TargetId>) -> Result<()> {
        let entry = self.entry(service)?;
        let Some(listener) = &entry.preview_listener else {
            return Err(Error::not_supported(
                "preview",
                format!(
                    "service `{service}` has no preview listener configured \
                     (EntryPoint::with_preview_listener)"
                ),
            ));
        };
        let routing = match target {
            Some(t) => {
                self.ensure_owned(service, t).await?;
                Routing::all_to(t)
            }
            None => Routing::empty(),
        };
        let current = self.listener_actions(listener).await?;
        self.write_listener(listener, with_routing(&current, &routing))
            .await
    }

    async fn detach(&self, service: &ServiceName, target: &TargetId) -> Result<()> {
        let entry = self.entry(service)?;
        self.ensure_owned(service, target).await?;
        let routing = routing_of(&self.actions(entry).await?);
        if routing.weight(target) > 0 {
            return Err(Error::TargetServing {
                service: service.clone(),
                target: target.clone(),
            });
        }
        if let Some(preview) = &entry.preview_listener {
            let actions = self.listener_actions(preview).await?;
            if routing_of(&actions).weight(target) > 0 {
                self.write_listener(preview, with_routing(&actions, &Routing::empty()))
                    .await?;
            }
        }
        let registered = self.target_health(target).await?;
        let ids: Vec<TargetDescription> = registered
            .iter()
            .filter(|h| h.state != HealthState::Draining)
            .map(|h| TargetDescription::builder().id(h.instance.as_str()).build())
            .collect();
        for batch in ids.chunks(REGISTER_BATCH) {
            self.elb
                .deregister_targets()
                .target_group_arn(target.as_str())
                .set_targets(Some(batch.to_vec()))
                .send()
                .await
                .aws(Call::new(
                    "DeregisterTargets",
                    ResourceKind::Target,
                    target.as_str(),
                ))?;
        }
        if !registered.is_empty() {
            let delay = self
                .deregistration_delay(target)
                .await?
                .unwrap_or(Duration::from_secs(300));
            // Connections drain for at most the delay; then the group can go.
            let deadline = tokio::time::Instant::now() + delay + self.drain_poll;
            loop {
                let draining = self
                    .target_health(target)
                    .await?
                    .iter()
                    .filter(|h| h.state == HealthState::Draining)
                    .count();
                if draining == 0 || tokio::time::Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(self.drain_poll).await;
            }
        }
        self.elb
            .delete_target_group()
            .target_group_arn(target.as_str())
            .send()
            .await
            .aws(Call::new(
                "DeleteTargetGroup",
                ResourceKind::Target,
                target.as_str(),
            ))?;
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(target.as_str());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_group_names_fit_elb_rules_and_are_stable() {
        let s = ServiceName::new("Checkout_API.prod-eu-west").unwrap();
        let f = FleetId::new("fleet-01jabcdefghjkmnpqrstvwxyz0");
        let n = target_group_name(&s, &f);
        assert!(n.len() <= 32, "{n}");
        assert!(
            n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{n}"
        );
        assert!(
            !n.ends_with('-') && n.starts_with("imm-checkout-ap-"),
            "{n}"
        );
        assert_eq!(n, target_group_name(&s, &f));
        assert_ne!(n, target_group_name(&s, &FleetId::new("fleet-2")));
    }

    fn forward(weights: &[(&str, i32)]) -> Action {
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .order(2)
            .forward_config(
                ForwardActionConfig::builder()
                    .set_target_groups(Some(
                        weights
                            .iter()
                            .map(|(a, w)| {
                                TargetGroupTuple::builder()
                                    .target_group_arn(*a)
                                    .weight(*w)
                                    .build()
                            })
                            .collect(),
                    ))
                    .build(),
            )
            .build()
    }

    #[test]
    fn weights_read_as_percent_and_write_as_one_action() {
        let r = routing_of(&[forward(&[("a", 1), ("b", 3)])]);
        assert_eq!(r.weight(&"a".into()), 25);
        assert_eq!(r.weight(&"b".into()), 75);
        let r = routing_of(&[forward(&[("a", 1), ("b", 1), ("c", 1)])]);
        assert_eq!(r.weights().values().sum::<u32>(), 100);
        let auth = Action::builder()
            .r#type(ActionTypeEnum::AuthenticateOidc)
            .order(1)
            .build();
        let target = Routing::new([("x".into(), 10), ("y".into(), 90)]).unwrap();
        let written = with_routing(&[auth.clone(), forward(&[("a", 1)])], &target);
        assert_eq!(written.len(), 2);
        assert_eq!(written[0], auth, "other actions are kept");
        assert_eq!(written[1].order(), Some(2));
        assert_eq!(routing_of(&written), target);
        let empty = with_routing(&written, &Routing::empty());
        assert_eq!(empty[1].r#type(), Some(&ActionTypeEnum::FixedResponse));
        assert!(routing_of(&empty).is_empty());
    }
}
