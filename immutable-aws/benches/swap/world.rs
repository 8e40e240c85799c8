//! The bench's AWS world on a fresh moto server, and a timer of every request.

use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum};
use immutable_aws::{
    AwsClients, AwsConfig, AwsFleet, AwsImageStore, AwsRouter, EntryPoint, TargetGroupSettings,
};
use immutable_core::{Engine, InMemoryStore, Settings, tags};

use crate::common::{CallCounter, Moto, create_subnet};
use crate::{OPERATION_TIMEOUT, POLL, SERVICE, ms};

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
        let (ec2, elb) = (&plain.ec2, &plain.elbv2);
        let vpc = ec2.create_vpc().cidr_block("10.0.0.0/16").send().await;
        let vpc = vpc.unwrap().vpc().unwrap().vpc_id().unwrap().to_owned();
        let mut subnets = Vec::new();
        for (i, az) in ["us-east-1a", "us-east-1b"].into_iter().enumerate() {
            subnets.push(create_subnet(ec2, &vpc, i + 1, az).await);
        }
        let listener = listener(elb, &subnets).await;
        let bench = Bench {
            _moto: moto,
            clients,
            calls,
            vpc,
            subnets,
            listener,
        };
        bench.bake_image("web-v1").await;
        bench.bake_image("web-v2").await;
        bench
    }

    /// An AMI of the service, baked from a throwaway instance.
    async fn bake_image(&self, name: &str) -> String {
        let ec2 = &self.clients.ec2;
        let base = ec2.describe_images().owners("amazon").send().await.unwrap();
        let base = base.images()[0].image_id().unwrap().to_owned();
        let run = ec2
            .run_instances()
            .image_id(base)
            .min_count(1)
            .max_count(1)
            .instance_type(InstanceType::T3Micro)
            .send()
            .await
            .unwrap();
        let instance = run.instances()[0].instance_id().unwrap().to_owned();
        let tag = Tag::builder().key(tags::SERVICE).value(SERVICE).build();
        let image = ec2
            .create_image()
            .instance_id(&instance)
            .name(name)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Image)
                    .tags(tag)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let image = image.image_id().unwrap().to_owned();
        ec2.terminate_instances()
            .instance_ids(instance)
            .send()
            .await
            .unwrap();
        image
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

/// An ALB over `subnets` and its listener on port 80, answering 503 at first: its ARN.
async fn listener(elb: &aws_sdk_elasticloadbalancingv2::Client, subnets: &[String]) -> String {
    let lb = elb
        .create_load_balancer()
        .name("web-alb")
        .set_subnets(Some(subnets.to_vec()))
        .send()
        .await
        .unwrap();
    let lb = lb.load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_owned();
    let fixed = Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(
            aws_sdk_elasticloadbalancingv2::types::FixedResponseActionConfig::builder()
                .status_code("503")
                .build(),
        )
        .build();
    let listener = elb
        .create_listener()
        .load_balancer_arn(&lb)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(fixed)
        .send()
        .await
        .unwrap();
    listener.listeners()[0].listener_arn().unwrap().to_owned()
}
