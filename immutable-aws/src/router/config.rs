//! What the router is configured with: each service's [`EntryPoint`], the
//! [`TargetGroupSettings`] of new groups, and the builder that checks them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use immutable_core::{Error, Result, ServiceName};

use super::{AwsRouter, TargetMembership};

/// Where a service's traffic enters: a listener's default action, or one listener rule.
///
/// Either comes with an optional preview listener and optional settings for new target groups.
///
/// ```
/// use immutable_aws::{EntryPoint, TargetGroupSettings};
///
/// let entry = EntryPoint::rule("arn:aws:elasticloadbalancing:...:listener-rule/app/web/...")
///     .with_preview_listener("arn:aws:elasticloadbalancing:...:listener/app/web/.../8080")
///     .with_target_group(TargetGroupSettings::http(8000, "vpc-0a1b"));
/// assert!(matches!(entry, EntryPoint::Rule { .. }));
/// assert!(entry.preview_listener().is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryPoint {
    /// A listener whose default action the SDK sets.
    #[non_exhaustive]
    Listener {
        /// The listener's ARN.
        arn: String,
        /// See [`EntryPoint::preview_listener`].
        preview_listener: Option<String>,
        /// See [`EntryPoint::target_group`].
        target_group: Option<TargetGroupSettings>,
    },
    /// A listener rule whose actions the SDK sets.
    #[non_exhaustive]
    Rule {
        /// The rule's ARN.
        arn: String,
        /// See [`EntryPoint::preview_listener`].
        preview_listener: Option<String>,
        /// See [`EntryPoint::target_group`].
        target_group: Option<TargetGroupSettings>,
    },
}

impl EntryPoint {
    /// A listener's default action.
    pub fn listener(arn: impl Into<String>) -> Self {
        EntryPoint::Listener {
            arn: arn.into(),
            preview_listener: None,
            target_group: None,
        }
    }

    /// One listener rule.
    pub fn rule(arn: impl Into<String>) -> Self {
        EntryPoint::Rule {
            arn: arn.into(),
            preview_listener: None,
            target_group: None,
        }
    }

    /// Adds a preview listener.
    pub fn with_preview_listener(mut self, arn: impl Into<String>) -> Self {
        *self.options_mut().0 = Some(arn.into());
        self
    }

    /// Sets the settings of new target groups (required for a service's first deployment).
    pub fn with_target_group(mut self, settings: TargetGroupSettings) -> Self {
        *self.options_mut().1 = Some(settings);
        self
    }

    /// The ARN of the listener or of the rule.
    pub fn arn(&self) -> &str {
        self.parts().0
    }

    /// A second listener (say port 8080, reachable only from the office) that
    /// [`PreviewRouter::preview`](immutable_core::PreviewRouter::preview) points at a candidate
    /// fleet.
    pub fn preview_listener(&self) -> Option<&str> {
        self.parts().1
    }

    /// Settings of new target groups; without them they are copied from the group that serves.
    pub fn target_group(&self) -> Option<&TargetGroupSettings> {
        self.parts().2
    }

    /// What both kinds hold: the ARN, the preview listener and the target group settings.
    fn parts(&self) -> (&str, Option<&str>, Option<&TargetGroupSettings>) {
        match self {
            EntryPoint::Listener {
                arn,
                preview_listener,
                target_group,
            }
            | EntryPoint::Rule {
                arn,
                preview_listener,
                target_group,
            } => (arn, preview_listener.as_deref(), target_group.as_ref()),
        }
    }

    /// The options both kinds may carry, to set them.
    fn options_mut(&mut self) -> (&mut Option<String>, &mut Option<TargetGroupSettings>) {
        match self {
            EntryPoint::Listener {
                preview_listener,
                target_group,
                ..
            }
            | EntryPoint::Rule {
                preview_listener,
                target_group,
                ..
            } => (preview_listener, target_group),
        }
    }

    /// Refuses empty ARNs and target group settings AWS would refuse.
    fn check(&self, service: &ServiceName) -> Result<()> {
        if self.arn().is_empty() {
            let what = match self {
                EntryPoint::Listener { .. } => "listener",
                EntryPoint::Rule { .. } => "rule",
            };
            return Err(Error::invalid(
                "entry_point",
                format!("service `{service}` has an empty {what} ARN"),
            ));
        }
        if self.preview_listener() == Some("") {
            return Err(Error::invalid("preview_listener", "must not be empty"));
        }
        if let Some(tg) = self.target_group() {
            if !(1..=65535).contains(&tg.port) {
                return Err(Error::invalid("target_group.port", "must be 1 to 65535"));
            }
            if tg.vpc_id.is_empty() {
                return Err(Error::invalid("target_group.vpc_id", "must not be empty"));
            }
        }
        Ok(())
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

/// Builds an [`AwsRouter`].
#[derive(Debug, Clone)]
#[must_use]
pub struct AwsRouterBuilder {
    pub(super) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(super) services: Vec<(String, EntryPoint)>,
    pub(super) drain_poll: Duration,
    pub(super) membership: Option<Arc<dyn TargetMembership>>,
}

impl AwsRouterBuilder {
    /// Has fleets join their target groups through `membership` rather than the router
    /// registering their instances: give it [`AsgFleet::membership`](crate::AsgFleet::membership)
    /// when the fleets are Auto Scaling groups.
    pub fn membership(mut self, membership: Arc<dyn TargetMembership>) -> Self {
        self.membership = Some(membership);
        self
    }

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
    /// [`Error::InvalidInput`] naming the field: an invalid service name, an empty listener,
    /// rule or preview listener ARN, a bad port or an empty VPC id.
    pub fn build(self) -> Result<AwsRouter> {
        let mut services = BTreeMap::new();
        for (name, entry) in self.services {
            let service = ServiceName::new(name)?;
            entry.check(&service)?;
            services.insert(service, entry);
        }
        if self.drain_poll.is_zero() {
            return Err(Error::invalid("drain_poll_interval", "must be above zero"));
        }
        Ok(AwsRouter {
            elb: self.elb,
            services: Arc::new(services),
            drain_poll: self.drain_poll,
            owners: Default::default(),
            membership: self.membership,
            reads: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_keep_their_kind_and_options() {
        let listener = EntryPoint::listener("l").with_preview_listener("p");
        assert!(matches!(&listener, EntryPoint::Listener { arn, .. } if arn == "l"));
        assert_eq!(listener.preview_listener(), Some("p"));
        assert_eq!(listener.target_group(), None);
        let rule = EntryPoint::rule("r").with_target_group(TargetGroupSettings::http(80, "vpc"));
        assert!(matches!(&rule, EntryPoint::Rule { arn, .. } if arn == "r"));
        assert_eq!(rule.target_group().map(|t| t.port), Some(80));
        let web = ServiceName::new("web").unwrap();
        assert!(rule.check(&web).is_ok());
        for bad in [
            EntryPoint::listener(""),
            EntryPoint::rule("r").with_preview_listener(""),
            EntryPoint::rule("r").with_target_group(TargetGroupSettings::http(0, "vpc")),
            EntryPoint::rule("r").with_target_group(TargetGroupSettings::http(80, "")),
        ] {
            assert!(
                matches!(bad.check(&web), Err(Error::InvalidInput { .. })),
                "{bad:?}"
            );
        }
    }
}
