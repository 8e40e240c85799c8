//! Configuration: the standard AWS chain, with region, endpoint and credential overrides.

use std::fmt;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::Credentials;
use aws_types::region::Region;

/// How to reach AWS. Builds clients over the standard chain of `aws-config` (environment,
/// profiles, SSO, IMDS), with optional overrides.
///
/// The SDK's own retries are disabled: every retry goes through the one
/// [`RetryPolicy`](immutable_core::RetryPolicy) of the engine, which reads the classification
/// [`crate`] gives each AWS error. Every call has a timeout.
///
/// ```no_run
/// # async fn demo() {
/// use immutable_aws::AwsConfig;
///
/// // Region, credentials and endpoint from the environment (AWS_REGION, AWS_PROFILE,
/// // AWS_ENDPOINT_URL, ...), as every AWS tool reads them.
/// let clients = AwsConfig::from_env().load().await;
///
/// // Or explicitly, for an emulator such as moto's server.
/// let clients = AwsConfig::from_env()
///     .with_region("us-east-1")
///     .with_endpoint_url("http://127.0.0.1:5000")
///     .with_static_credentials("testing", "testing")
///     .load()
///     .await;
/// # }
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct AwsConfig {
    region: Option<String>,
    endpoint_url: Option<String>,
    profile: Option<String>,
    credentials: Option<(String, String)>,
    operation_timeout: Option<Duration>,
}

impl fmt::Debug for AwsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsConfig")
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("profile", &self.profile)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "** static, redacted **"),
            )
            .field("operation_timeout", &self.operation_timeout)
            .finish()
    }
}

impl AwsConfig {
    /// Everything from the standard chain.
    pub fn from_env() -> Self {
        AwsConfig::default()
    }

    /// Overrides the region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sends every call to this endpoint (an emulator, a VPC endpoint).
    pub fn with_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Uses a named profile of `~/.aws/config`.
    pub fn with_profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }

    /// Uses fixed credentials (for emulators and tests; prefer the chain in production).
    pub fn with_static_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.credentials = Some((access_key_id.into(), secret_access_key.into()));
        self
    }

    /// The time limit of one call, retries excluded. Default 30 s.
    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = Some(timeout);
        self
    }

    /// Resolves the chain and builds the clients.
    pub async fn load(self) -> AwsClients {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(self.operation_timeout.unwrap_or(Duration::from_secs(30)))
                    .connect_timeout(Duration::from_secs(5))
                    .build(),
            );
        if let Some(region) = self.region {
            loader = loader.region(Region::new(region));
        }
        if let Some(url) = self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(profile) = self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some((id, secret)) = self.credentials {
            loader =
                loader.credentials_provider(Credentials::new(id, secret, None, None, "static"));
        }
        let sdk = loader.load().await;
        AwsClients {
            ec2: aws_sdk_ec2::Client::new(&sdk),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(&sdk),
            sdk,
        }
    }
}

/// The AWS clients the backends share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// EC2.
    pub ec2: aws_sdk_ec2::Client,
    /// ELBv2.
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// EC2 Auto Scaling.
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// The resolved configuration, for further clients (DynamoDB, say).
    pub sdk: aws_types::SdkConfig,
}

impl AwsClients {
    /// An SNS client on the same configuration (feature `sns`).
    #[cfg(feature = "sns")]
    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.sdk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_credentials() {
        let c = AwsConfig::from_env()
            .with_region("eu-west-1")
            .with_static_credentials("AKIAEXAMPLEKEY", "very-secret-value");
        let shown = format!("{c:?}");
        assert!(shown.contains("eu-west-1"), "{shown}");
        assert!(
            !shown.contains("AKIAEXAMPLEKEY") && !shown.contains("very-secret-value"),
            "{shown}"
        );
        assert!(shown.contains("redacted"), "{shown}");
    }
}
