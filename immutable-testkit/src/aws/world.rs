//! The AWS world of the immutable-aws tests: an account on moto with a VPC, two subnets and
//! an ALB whose listeners answer 503 (built by [`immutable_aws::sandbox`], as `demo-setup`
//! builds its own), clients that count their calls, and the backends over them.

use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum};
use immutable_aws::sandbox::{self, Sandbox};
use immutable_aws::{
    AsgFleet, AwsClients, AwsFleet, AwsImageStore, AwsRouter, EntryPoint, LaunchTemplate,
    TargetGroupSettings, group_backends, instance_backends,
};
use immutable_core::conformance::{Fixture, UnknownIds};
use immutable_core::{Backends, Engine, ImageId, ImageRef, ServiceName, Settings};

use super::{Account, CallCounter, clients_through, listener_forwards};

/// A VPC with two subnets, an ALB with a listener that serves a fixed 503 at first, and
/// clients that count their calls.
pub struct World {
    /// The account on moto that holds it all.
    pub account: Account,
    /// Clients in the account whose calls `calls` counts.
    pub clients: AwsClients,
    /// The calls made through `clients`.
    pub calls: CallCounter,
    /// The VPC.
    pub vpc: String,
    /// Its two subnets.
    pub subnets: Vec<String>,
    /// The live listener (port 80).
    pub listener: String,
    /// The preview listener (port 8080), also billing's live one.
    pub preview_listener: String,
    /// An Amazon AMI to bake from.
    pub base_image: String,
}

/// The service the world serves.
pub const SERVICE: &str = "web";

/// Polls every 200 ms, leases of 30 s.
pub fn engine_settings() -> Settings {
    Settings::default()
        .with_poll_interval(Duration::from_millis(200))
        .with_lease_ttl(Duration::from_secs(30))
}

/// A subnet of `vpc`: the `n`th /20 of 10.0.0.0/16, in `az`; its id.
pub async fn create_subnet(ec2: &aws_sdk_ec2::Client, vpc: &str, n: usize, az: &str) -> String {
    sandbox::create_subnet(ec2, vpc, n, az).await.unwrap()
}

impl World {
    /// The world in a fresh account of the test binary's moto server.
    pub async fn new() -> World {
        let account = Account::fresh();
        let plain = account.clients().await;
        let calls = CallCounter::default();
        let clients = clients_through(&plain.sdk, &calls);
        let world = Sandbox::create(&plain, "web-alb").await.unwrap();
        let base_image = sandbox::base_image(&plain).await.unwrap();
        World {
            account,
            clients,
            calls,
            vpc: world.vpc,
            subnets: world.subnets,
            listener: world.listener,
            preview_listener: world.preview_listener,
            base_image,
        }
    }

    /// EC2, counted.
    pub fn ec2(&self) -> &aws_sdk_ec2::Client {
        &self.clients.ec2
    }

    /// ELBv2, counted.
    pub fn elb(&self) -> &aws_sdk_elasticloadbalancingv2::Client {
        &self.clients.elbv2
    }

    /// Auto Scaling, counted.
    pub fn asg(&self) -> &aws_sdk_autoscaling::Client {
        &self.clients.autoscaling
    }

    /// A launch template for the service's Auto Scaling groups: t3.micro from the base image.
    pub async fn launch_template(&self, name: &str) -> String {
        sandbox::create_launch_template(&self.clients, name, Some(&self.base_image))
            .await
            .unwrap()
    }

    /// Fleets as Auto Scaling groups over the two subnets, sized 1..10 at first.
    pub fn asg_fleet(&self, template: &str) -> AsgFleet {
        AsgFleet::builder(&self.clients)
            .launch_template(LaunchTemplate::Id(template.to_owned()))
            .subnets(self.subnets.clone())
            .size_limits(1, 10)
            .health_check("ELB", 60)
            // moto 5.2.5 has no DeleteLaunchTemplateVersions; the call is tested in
            // src/asg with a mocked client.
            .keep_template_versions()
            .build()
            .unwrap()
    }

    /// The router, with fleets joining their groups through `fleet`'s membership.
    pub fn asg_router(&self, fleet: &AsgFleet) -> AwsRouter {
        AwsRouter::builder(&self.clients)
            .service(SERVICE, self.entry_point())
            .service("billing", EntryPoint::listener(&self.preview_listener))
            .drain_poll_interval(Duration::from_millis(100))
            .membership(fleet.membership())
            .build()
            .unwrap()
    }

    /// A target group made by hand (untagged, as another tool would make it): its ARN.
    pub async fn target_group_by_hand(&self, name: &str) -> String {
        self.elb()
            .create_target_group()
            .name(name)
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(&self.vpc)
            .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Instance)
            .send()
            .await
            .unwrap()
            .target_groups()[0]
            .target_group_arn()
            .unwrap()
            .to_owned()
    }

    /// Points the listener's default action at one target group, by hand.
    pub async fn forward_all_by_hand(&self, target_group: &str) {
        let forward = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(target_group)
            .build();
        self.elb()
            .modify_listener()
            .listener_arn(&self.listener)
            .default_actions(forward)
            .send()
            .await
            .unwrap();
    }

    /// An engine over bare EC2 instances, the ALB and an in-memory store.
    pub fn engine(&self) -> Engine {
        self.engine_with(instance_backends(
            self.images(),
            self.fleet(),
            self.router(),
        ))
    }

    /// An engine whose fleets are Auto Scaling groups of `fleet`, with scaling control.
    pub fn asg_engine(&self, fleet: &AsgFleet) -> Engine {
        let router = self.asg_router(fleet);
        self.engine_with(group_backends(self.images(), fleet.clone(), router))
    }

    fn engine_with(&self, backends: Backends) -> Engine {
        Engine::builder()
            .backends(backends)
            .store(immutable_core::InMemoryStore::new())
            .settings(engine_settings())
            .build()
            .unwrap()
    }

    /// Bakes the images the conformance suite uses: web-v1 and web-v2 of web, billing-v1 of
    /// billing, and a billing image named like web's (names are scoped to the service).
    pub async fn bake_conformance_images(&self) {
        self.bake_image(SERVICE, "web-v1").await;
        self.bake_image(SERVICE, "web-v2").await;
        self.bake_image("billing", "billing-v1").await;
        self.bake_image("billing", "web-v1").await;
    }

    /// The conformance fixture for web (and billing as the other service), `unknown_fleet`
    /// in the fleet backend's id format.
    pub fn conformance_fixture(&self, unknown_fleet: &str) -> Fixture {
        Fixture {
            service: ServiceName::new(SERVICE).unwrap(),
            v1: ImageRef::name("web-v1"),
            v2: ImageRef::name("web-v2"),
            capacity: 3,
            settings: engine_settings(),
            wait_timeout: Duration::from_secs(60),
            unknown: UnknownIds {
                image: "ami-0123456789abcdef0".into(),
                fleet: unknown_fleet.into(),
                target: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nope/\
                         0123456789abcdef"
                    .into(),
            },
            other: Some((
                ServiceName::new("billing").unwrap(),
                ImageRef::name("billing-v1"),
            )),
        }
    }

    /// The Auto Scaling groups of the account.
    pub async fn groups(&self) -> Vec<aws_sdk_autoscaling::types::AutoScalingGroup> {
        self.asg()
            .describe_auto_scaling_groups()
            .send()
            .await
            .unwrap()
            .auto_scaling_groups()
            .to_vec()
    }

    /// Bakes an AMI owned by `service` (from a throwaway instance, as a build pipeline would).
    pub async fn bake_image(&self, service: &str, name: &str) -> ImageId {
        sandbox::bake_image(&self.clients, &self.base_image, service, name, None)
            .await
            .unwrap()
    }

    /// The image store.
    pub fn images(&self) -> AwsImageStore {
        AwsImageStore::new(&self.clients)
    }

    /// Fleets of bare instances over the two subnets, t3.micro, pages of 5.
    pub fn fleet(&self) -> AwsFleet {
        AwsFleet::builder(&self.clients)
            .instance_type("t3.micro")
            .subnets(self.subnets.clone())
            .page_size(5)
            .build()
            .unwrap()
    }

    /// web's entry point: both listeners, target groups on port 80 checking `/health`.
    pub fn entry_point(&self) -> EntryPoint {
        EntryPoint::listener(&self.listener)
            .with_preview_listener(&self.preview_listener)
            .with_target_group(
                TargetGroupSettings::http(80, &self.vpc).with_health_check_path("/health"),
            )
    }

    /// The router: web on the world's entry point, billing on the preview listener.
    pub fn router(&self) -> AwsRouter {
        AwsRouter::builder(&self.clients)
            .service(SERVICE, self.entry_point())
            .service("billing", EntryPoint::listener(&self.preview_listener))
            .drain_poll_interval(Duration::from_millis(100))
            .build()
            .unwrap()
    }

    /// Instance ids of a state, by tag filter.
    pub async fn instances(&self, filters: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut req = self.ec2().describe_instances();
        for (k, v) in filters {
            req = req.filters(Filter::builder().name(*k).values(*v).build());
        }
        req.send()
            .await
            .unwrap()
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| {
                (
                    i.instance_id().unwrap().to_owned(),
                    i.state().unwrap().name().unwrap().as_str().to_owned(),
                )
            })
            .collect()
    }

    /// Target group ARNs of the account.
    pub async fn target_groups(&self) -> Vec<String> {
        self.elb()
            .describe_target_groups()
            .send()
            .await
            .unwrap()
            .target_groups()
            .iter()
            .map(|g| g.target_group_arn().unwrap().to_owned())
            .collect()
    }

    /// The target groups the listener forwards to, with weights.
    pub async fn listener_forwards(&self, listener: &str) -> Vec<(String, i32)> {
        listener_forwards(self.elb(), listener).await
    }
}
