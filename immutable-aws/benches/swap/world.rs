//! The bench's AWS world ([`Sandbox`]) on a fresh moto server, and a timer of every request.

use std::time::{Duration, Instant};

use immutable_aws::sandbox::{self, Sandbox};
use immutable_aws::{
    AwsClients, AwsConfig, AwsFleet, AwsImageStore, AwsRouter, EntryPoint, TargetGroupSettings,
};
use immutable_core::{Engine, InMemoryStore, Settings};

use crate::{OPERATION_TIMEOUT, POLL, SERVICE, ms};
use immutable_testkit::aws::{CallCounter, Moto};

/// With `SWAP_CALLS` set, every request's operation and time on stderr.
#[derive(Debug, Clone)]
struct CallTimer;

#[derive(Debug, Clone)]
struct Started(Instant);

impl aws_smithy_types::config_bag::Storable for Started {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for CallTimer {
    fn name(&self) -> &'static str {
        "CallTimer"
    }

    fn read_before_execution(
        &self,
        _ctx: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        cfg.interceptor_state().store_put(Started(Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        _ctx: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<'_>,
        _rc: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let name = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map_or("unknown", |m| m.name());
        if let Some(Started(at)) = cfg.load::<Started>() {
            eprintln!("    {name:>30}: {}", ms(at.elapsed()));
        }
        Ok(())
    }
}

/// A VPC with two subnets, an ALB and its listener, two AMIs of the service, and clients that
/// count their requests.
pub(crate) struct Bench {
    _moto: Moto,
    pub(crate) clients: AwsClients,
    pub(crate) calls: CallCounter,
    pub(crate) vpc: String,
    pub(crate) subnets: Vec<String>,
    pub(crate) listener: String,
}

impl Bench {
    pub(crate) async fn new() -> Bench {
        let moto = Moto::start();
        let plain = AwsConfig::from_env()
            .with_region("us-east-1")
            .with_endpoint_url(&moto.url)
            .with_static_credentials("testing", "testing")
            .with_operation_timeout(OPERATION_TIMEOUT)
            .load()
            .await;
        let calls = CallCounter::default();
        let clients = counting_clients(&plain, &calls);
        let world = Sandbox::create(&plain, "web-alb").await.unwrap();
        let bench = Bench {
            _moto: moto,
            clients,
            calls,
            vpc: world.vpc,
            subnets: world.subnets,
            listener: world.listener,
        };
        bench.bake_image("web-v1").await;
        bench.bake_image("web-v2").await;
        bench
    }

    /// An AMI of the service, baked from a throwaway instance.
    async fn bake_image(&self, name: &str) -> String {
        let base = sandbox::base_image(&self.clients).await.unwrap();
        let image = sandbox::bake_image(&self.clients, &base, SERVICE, name, None);
        image.await.unwrap().as_str().to_owned()
    }

    pub(crate) fn engine(&self) -> Engine {
        let fleet = AwsFleet::builder(&self.clients)
            .instance_type("t3.micro")
            .subnets(self.subnets.clone())
            .build()
            .unwrap();
        let entry = EntryPoint::listener(&self.listener).with_target_group(
            TargetGroupSettings::http(80, &self.vpc).with_health_check_path("/health"),
        );
        let router = AwsRouter::builder(&self.clients)
            .service(SERVICE, entry)
            .drain_poll_interval(POLL)
            .build()
            .unwrap();
        let settings = Settings::default()
            .with_poll_interval(POLL)
            .with_lease_ttl(Duration::from_secs(600))
            .with_launch_timeout(Duration::from_secs(1800));
        Engine::builder()
            .images(AwsImageStore::new(&self.clients))
            .fleet(fleet)
            .router(router)
            .store(InMemoryStore::new())
            .settings(settings)
            .build()
            .unwrap()
    }
}

/// The clients of `plain` with `calls` counting their requests (and the timer, with
/// `SWAP_CALLS` set).
fn counting_clients(plain: &AwsClients, calls: &CallCounter) -> AwsClients {
    let timed = std::env::var_os("SWAP_CALLS").is_some();
    AwsClients {
        ec2: aws_sdk_ec2::Client::from_conf({
            let mut b = aws_sdk_ec2::config::Builder::from(&plain.sdk).interceptor(calls.clone());
            if timed {
                b = b.interceptor(CallTimer);
            }
            b.build()
        }),
        elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf({
            let mut b = aws_sdk_elasticloadbalancingv2::config::Builder::from(&plain.sdk)
                .interceptor(calls.clone());
            if timed {
                b = b.interceptor(CallTimer);
            }
            b.build()
        }),
        autoscaling: plain.autoscaling.clone(),
        sdk: plain.sdk.clone(),
    }
}
