//! An account of its own on a shared moto server: moto files each request under the account
//! its `x-moto-account-id` header names, so tests that run at once on one server never see
//! each other's VPCs, groups or tables.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use immutable_aws::{AwsClients, AwsConfig};

use super::Moto;

/// An account on a moto server.
#[derive(Debug, Clone)]
pub struct Account {
    /// The server's address.
    pub url: String,
    /// The 12-digit account id, never moto's default (123456789012).
    pub id: String,
}

impl Account {
    /// A new account on the test binary's shared server.
    pub fn fresh() -> Account {
        Moto::shared().account()
    }

    pub(super) fn on(url: &str) -> Account {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Account {
            url: url.to_owned(),
            id: format!("{:012}", 200_000_000_000 + n),
        }
    }

    /// Clients in this account, region us-east-1, with fake credentials. Every client built
    /// from their `sdk` (DynamoDB, CloudWatch) is in the account too.
    pub async fn clients(&self) -> AwsClients {
        self.clients_from(AwsConfig::from_env()).await
    }

    /// As [`clients`](Self::clients), from `config` (an operation timeout, say).
    pub async fn clients_from(&self, config: AwsConfig) -> AwsClients {
        let plain = config
            .with_region("us-east-1")
            .with_endpoint_url(&self.url)
            .with_static_credentials("testing", "testing")
            .load()
            .await;
        let http = AccountHeader {
            inner: aws_smithy_http_client::Builder::new().build_http(),
            account: self.id.clone(),
        };
        let sdk = plain
            .sdk
            .to_builder()
            .http_client(SharedHttpClient::new(http))
            .build();
        AwsClients {
            ec2: aws_sdk_ec2::Client::new(&sdk),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(&sdk),
            sdk,
        }
    }
}

/// An HTTP client that names the account on every request.
#[derive(Debug)]
struct AccountHeader {
    inner: SharedHttpClient,
    account: String,
}

impl HttpClient for AccountHeader {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(AccountConnector {
            inner: self.inner.http_connector(settings, components),
            account: self.account.clone(),
        })
    }
}

#[derive(Debug)]
struct AccountConnector {
    inner: SharedHttpConnector,
    account: String,
}

impl HttpConnector for AccountConnector {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        request
            .headers_mut()
            .insert("x-moto-account-id", self.account.clone());
        self.inner.call(request)
    }
}
