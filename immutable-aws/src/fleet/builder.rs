//! Configuration of [`AwsFleet`]: where instance settings come from, checked by the builder.

use immutable_core::{Error, Result};

use super::AwsFleet;

/// Where the instance settings come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaunchTemplate {
    /// A launch template by id (`lt-...`).
    Id(String),
    /// A launch template by name.
    Name(String),
}

/// What every `RunInstances` call of the fleet is made with.
#[derive(Debug, Clone, Default)]
pub(super) struct LaunchSettings {
    pub(super) template: Option<LaunchTemplate>,
    pub(super) template_version: Option<String>,
    pub(super) instance_type: Option<String>,
    pub(super) subnets: Vec<String>,
    pub(super) security_groups: Vec<String>,
    pub(super) key_name: Option<String>,
    pub(super) iam_instance_profile: Option<String>,
    pub(super) user_data: Option<String>,
    pub(super) page_size: i32,
    pub(super) concurrent_launches: usize,
}

/// Builds an [`AwsFleet`].
#[derive(Debug, Clone)]
#[must_use]
pub struct AwsFleetBuilder {
    pub(super) ec2: aws_sdk_ec2::Client,
    pub(super) settings: LaunchSettings,
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

    /// How many `RunInstances` calls (one per subnet) a launch makes at once, 1 to 16.
    /// Default 4: spread over more subnets, the rest wait their turn rather than all hitting
    /// the account's request rate at once.
    pub fn concurrent_launches(mut self, calls: usize) -> Self {
        self.settings.concurrent_launches = calls;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field: no instance type and no launch template, an
    /// empty id, a page size outside 5 to 1000, or concurrent launches outside 1 to 16.
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
        if !(1..=16).contains(&s.concurrent_launches) {
            return Err(Error::invalid(
                "concurrent_launches",
                format!("must be 1 to 16, got {}", s.concurrent_launches),
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
            known: Default::default(),
        })
    }
}
