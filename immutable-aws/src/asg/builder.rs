//! Configuration of [`AsgFleet`]: the service's launch template, and the group settings a
//! first deployment starts from (later ones copy the serving group's), checked by the builder.

use immutable_core::{Error, Result};

use super::AsgFleet;
use crate::LaunchTemplate;

/// The group settings of a service's first deployment: later deployments copy them from the
/// serving group instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct FirstGroup {
    pub(super) subnets: Vec<String>,
    pub(super) min_size: Option<i32>,
    pub(super) max_size: Option<i32>,
    pub(super) health_check_type: Option<String>,
    pub(super) health_check_grace_period: Option<i32>,
    pub(super) default_cooldown: Option<i32>,
    pub(super) termination_policies: Vec<String>,
    pub(super) capacity_rebalance: Option<bool>,
}

/// Builds an [`AsgFleet`].
#[derive(Debug, Clone)]
#[must_use]
pub struct AsgFleetBuilder {
    pub(super) asg: aws_sdk_autoscaling::Client,
    pub(super) ec2: aws_sdk_ec2::Client,
    pub(super) template: Option<LaunchTemplate>,
    pub(super) source_version: Option<String>,
    pub(super) first: FirstGroup,
    pub(super) delete_versions: bool,
}

impl AsgFleetBuilder {
    /// The service's launch template (required). Each fleet gets a version of its own: a copy
    /// of the source version with the deployment's image.
    pub fn launch_template(mut self, template: LaunchTemplate) -> Self {
        self.template = Some(template);
        self
    }

    /// The version new versions are copied from (`$Default`, `$Latest` or a number). Default:
    /// `$Default`.
    pub fn source_version(mut self, version: impl Into<String>) -> Self {
        self.source_version = Some(version.into());
        self
    }

    /// Subnets of a first deployment's group (required unless every service already has a
    /// serving group to copy).
    pub fn subnets<S: Into<String>>(mut self, subnets: impl IntoIterator<Item = S>) -> Self {
        self.first.subnets = subnets.into_iter().map(Into::into).collect();
        self
    }

    /// Minimum and maximum size of a first deployment's group. Default: both the requested
    /// capacity.
    pub fn size_limits(mut self, min: i32, max: i32) -> Self {
        self.first.min_size = Some(min);
        self.first.max_size = Some(max);
        self
    }

    /// Health check type (`EC2` or `ELB`) and grace period in seconds of a first deployment's
    /// group. Default: the provider's (`EC2`, 300 s).
    pub fn health_check(mut self, kind: impl Into<String>, grace_period_secs: i32) -> Self {
        self.first.health_check_type = Some(kind.into());
        self.first.health_check_grace_period = Some(grace_period_secs);
        self
    }

    /// Default cooldown in seconds of a first deployment's group.
    pub fn default_cooldown(mut self, secs: i32) -> Self {
        self.first.default_cooldown = Some(secs);
        self
    }

    /// Termination policies of a first deployment's group.
    pub fn termination_policies<S: Into<String>>(
        mut self,
        policies: impl IntoIterator<Item = S>,
    ) -> Self {
        self.first.termination_policies = policies.into_iter().map(Into::into).collect();
        self
    }

    /// Capacity rebalancing of a first deployment's group.
    pub fn capacity_rebalance(mut self, on: bool) -> Self {
        self.first.capacity_rebalance = Some(on);
        self
    }

    /// Leaves each fleet's launch template version in place when the fleet is terminated.
    /// By default `terminate` deletes it; turn this on for endpoints without
    /// `DeleteLaunchTemplateVersions` (moto 5.2.5 has none), and delete old versions another
    /// way.
    pub fn keep_template_versions(mut self) -> Self {
        self.delete_versions = false;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field: no launch template or an empty one, an
    /// empty subnet id, a health check type other than `EC2` or `ELB`, negative seconds, or
    /// a minimum above the maximum.
    pub fn build(self) -> Result<AsgFleet> {
        let template = match self.template {
            None => return Err(Error::invalid("launch_template", "is required")),
            Some(LaunchTemplate::Id(v) | LaunchTemplate::Name(v)) if v.is_empty() => {
                return Err(Error::invalid("launch_template", "must not be empty"));
            }
            Some(t) => t,
        };
        let f = &self.first;
        if f.subnets.iter().any(String::is_empty) {
            return Err(Error::invalid("subnets", "must not hold an empty id"));
        }
        if let Some(kind) = &f.health_check_type
            && !matches!(kind.as_str(), "EC2" | "ELB")
        {
            return Err(Error::invalid(
                "health_check",
                format!("type must be EC2 or ELB, got `{kind}`"),
            ));
        }
        let seconds = [
            ("health_check", f.health_check_grace_period),
            ("default_cooldown", f.default_cooldown),
            ("size_limits", f.min_size),
        ];
        for (field, value) in seconds {
            if value.is_some_and(|v| v < 0) {
                return Err(Error::invalid(field, "must not be negative"));
            }
        }
        if let (Some(min), Some(max)) = (f.min_size, f.max_size)
            && min > max
        {
            return Err(Error::invalid(
                "size_limits",
                format!("minimum {min} is above maximum {max}"),
            ));
        }
        Ok(AsgFleet {
            asg: self.asg,
            ec2: self.ec2,
            template,
            source_version: self.source_version.unwrap_or_else(|| "$Default".into()),
            first: self.first,
            delete_versions: self.delete_versions,
        })
    }
}
