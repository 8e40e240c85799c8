//! moto's server, started per test on a free loopback port, and a small AWS world on it.
#![allow(dead_code, unreachable_pub, clippy::print_stderr, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, FixedResponseActionConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use immutable_aws::{
    AsgFleet, AwsClients, AwsConfig, AwsFleet, AwsImageStore, AwsRouter, EntryPoint,
    LaunchTemplate, TargetGroupSettings,
};
use immutable_core::conformance::{Fixture, UnknownIds};
use immutable_core::{
    DeploymentRequest, Engine, EventKind, ImageId, ImageRef, Phase, ServiceName, Settings, tags,
};

/// A moto server process, killed on drop.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("IMMUTABLE_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cache = std::env::var_os("XDG_CACHE_HOME").map_or(home.join(".cache"), PathBuf::from);
    cache.join("immutable/venv-moto-5.2.5/bin/moto_server")
}

impl Moto {
    /// Starts moto's server on a port it picks itself (so parallel tests never race for one)
    /// and waits until it says where it listens. Panics (never skips) when it cannot.
    pub fn start() -> Moto {
        let bin = moto_binary();
        assert!(
            bin.exists(),
            "moto_server not found at {}: run ./scripts/test.sh, which installs it, or set \
             IMMUTABLE_MOTO_SERVER",
            bin.display()
        );
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Werkzeug announces its address on stderr, then logs every request there: keep
        // draining it so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.split("Running on ").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => {
                let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
                let deadline = Instant::now() + Duration::from_secs(10);
                while TcpStream::connect(("127.0.0.1", port)).is_err() {
                    assert!(
                        Instant::now() < deadline,
                        "moto announced {url} but does not answer"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                Moto { child, url }
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("moto's server did not start within 60 s ({status:?})");
            }
        }
    }
}

/// Counts AWS operations by name.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(pub Arc<Mutex<Vec<String>>>);

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_serialization(
        &self,
        _ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = cfg.load::<Metadata>().map_or("unknown", |m| m.name());
        self.0.lock().unwrap().push(name.to_owned());
        Ok(())
    }
}

impl CallCounter {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    pub fn counts(calls: &[String]) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for c in calls {
            *m.entry(c.clone()).or_default() += 1;
        }
        m
    }
}

/// EC2, ELBv2 and Auto Scaling clients of `sdk` whose every call passes through `interceptor`.
pub fn clients_through(
    sdk: &aws_types::SdkConfig,
    interceptor: &(impl Intercept + Clone + 'static),
) -> AwsClients {
    AwsClients {
        ec2: aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(sdk)
                .interceptor(interceptor.clone())
                .build(),
        ),
        elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf(
            aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk)
                .interceptor(interceptor.clone())
                .build(),
        ),
        autoscaling: aws_sdk_autoscaling::Client::from_conf(
            aws_sdk_autoscaling::config::Builder::from(sdk)
                .interceptor(interceptor.clone())
                .build(),
        ),
        sdk: sdk.clone(),
    }
}

/// A VPC with two subnets, an ALB with a listener that serves a fixed 503 at first, and
/// clients that count their calls.
pub struct World {
    pub moto: Moto,
    pub clients: AwsClients,
    pub calls: CallCounter,
    pub vpc: String,
    pub subnets: Vec<String>,
    pub listener: String,
    pub preview_listener: String,
    pub base_image: String,
}

pub const SERVICE: &str = "web";

pub fn engine_settings() -> Settings {
    Settings::default()
        .with_poll_interval(Duration::from_millis(200))
        .with_lease_ttl(Duration::from_secs(30))
}

/// A subnet of `vpc`: the `n`th /20 of 10.0.0.0/16, in `az`; its id.
pub async fn create_subnet(ec2: &aws_sdk_ec2::Client, vpc: &str, n: usize, az: &str) -> String {
    let s = ec2
        .create_subnet()
        .vpc_id(vpc)
        .cidr_block(format!("10.0.{}.0/20", 16 * n))
        .availability_zone(az)
        .send()
        .await
        .unwrap();
    s.subnet().unwrap().subnet_id().unwrap().to_owned()
}

impl World {
    pub async fn new() -> World {
        let moto = Moto::start();
        let plain = AwsConfig::from_env()
            .with_region("us-east-1")
            .with_endpoint_url(&moto.url)
            .with_static_credentials("testing", "testing")
            .load()
            .await;
        let calls = CallCounter::default();
        let clients = clients_through(&plain.sdk, &calls);
        let ec2 = &plain.ec2;
        let elb = &plain.elbv2;
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .unwrap()
            .vpc()
            .unwrap()
            .vpc_id()
            .unwrap()
            .to_owned();
        let mut subnets = Vec::new();
        for (i, az) in ["us-east-1a", "us-east-1b"].into_iter().enumerate() {
            subnets.push(create_subnet(ec2, &vpc, i + 1, az).await);
        }
        let lb = elb
            .create_load_balancer()
            .name("web-alb")
            .set_subnets(Some(subnets.clone()))
            .send()
            .await
            .unwrap()
            .load_balancers()[0]
            .load_balancer_arn()
            .unwrap()
            .to_owned();
        let fixed = Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .status_code("503")
                    .build(),
            )
            .build();
        let mut listeners = Vec::new();
        for port in [80, 8080] {
            let l = elb
                .create_listener()
                .load_balancer_arn(&lb)
                .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
                .port(port)
                .default_actions(fixed.clone())
                .send()
                .await
                .unwrap();
            listeners.push(l.listeners()[0].listener_arn().unwrap().to_owned());
        }
        let base_image = ec2
            .describe_images()
            .owners("amazon")
            .send()
            .await
            .unwrap()
            .images()[0]
            .image_id()
            .unwrap()
            .to_owned();
        World {
            moto,
            clients,
            calls,
            vpc,
            subnets,
            listener: listeners[0].clone(),
            preview_listener: listeners[1].clone(),
            base_image,
        }
    }

    pub fn ec2(&self) -> &aws_sdk_ec2::Client {
        &self.clients.ec2
    }

    pub fn elb(&self) -> &aws_sdk_elasticloadbalancingv2::Client {
        &self.clients.elbv2
    }

    pub fn asg(&self) -> &aws_sdk_autoscaling::Client {
        &self.clients.autoscaling
    }

    /// A launch template for the service's Auto Scaling groups: t3.micro from the base image.
    pub async fn launch_template(&self, name: &str) -> String {
        self.ec2()
            .create_launch_template()
            .launch_template_name(name)
            .launch_template_data(
                aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                    .image_id(&self.base_image)
                    .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .launch_template()
            .unwrap()
            .launch_template_id()
            .unwrap()
            .to_owned()
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
        self.engine_with(self.fleet(), self.router())
    }

    /// An engine whose fleets are Auto Scaling groups of `fleet`.
    pub fn asg_engine(&self, fleet: &AsgFleet) -> Engine {
        self.engine_with(fleet.clone(), self.asg_router(fleet))
    }

    fn engine_with(&self, fleet: impl immutable_core::Fleet, router: AwsRouter) -> Engine {
        Engine::builder()
            .images(self.images())
            .fleet(fleet)
            .router(router)
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
        let ec2 = self.ec2();
        let builder = ec2
            .run_instances()
            .image_id(&self.base_image)
            .min_count(1)
            .max_count(1)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .send()
            .await
            .unwrap();
        let instance = builder.instances()[0].instance_id().unwrap().to_owned();
        let image = ec2
            .create_image()
            .instance_id(&instance)
            .name(name)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Image)
                    .tags(Tag::builder().key(tags::SERVICE).value(service).build())
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .image_id()
            .unwrap()
            .to_owned();
        ec2.terminate_instances()
            .instance_ids(instance)
            .send()
            .await
            .unwrap();
        ImageId::new(image)
    }

    pub fn images(&self) -> AwsImageStore {
        AwsImageStore::new(&self.clients)
    }

    pub fn fleet(&self) -> AwsFleet {
        AwsFleet::builder(&self.clients)
            .instance_type("t3.micro")
            .subnets(self.subnets.clone())
            .page_size(5)
            .build()
            .unwrap()
    }

    pub fn entry_point(&self) -> EntryPoint {
        EntryPoint::listener(&self.listener)
            .with_preview_listener(&self.preview_listener)
            .with_target_group(
                TargetGroupSettings::http(80, &self.vpc).with_health_check_path("/health"),
            )
    }

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
            req = req.filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name(*k)
                    .values(*v)
                    .build(),
            );
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

/// The target groups a listener's default action forwards to, with their weights, read
/// through the AWS API.
pub async fn listener_forwards(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    listener: &str,
) -> Vec<(String, i32)> {
    let out = elb
        .describe_listeners()
        .listener_arns(listener)
        .send()
        .await
        .unwrap();
    out.listeners()[0]
        .default_actions()
        .iter()
        .filter_map(|a| a.forward_config())
        .flat_map(|f| f.target_groups())
        .map(|t| {
            (
                t.target_group_arn().unwrap().to_owned(),
                t.weight().unwrap_or(1),
            )
        })
        .collect()
}

/// AWS calls of a v1 -> v2 deployment through `engine`, per phase, with the polls of each wait
/// counted once (their number follows timing, not fleet size).
pub async fn calls_per_phase(
    w: &World,
    engine: &Engine,
    request: impl Fn(&str) -> DeploymentRequest,
) -> BTreeMap<String, BTreeMap<String, usize>> {
    let first = engine.deploy(request("web-v1")).await.unwrap();
    assert!(first.succeeded(), "{:?}", first.outcome);
    w.calls.take();
    let per_phase: Arc<Mutex<BTreeMap<String, BTreeMap<String, usize>>>> = Arc::default();
    let calls = w.calls.clone();
    let sink = per_phase.clone();
    let current = Arc::new(Mutex::new(Phase::Plan.to_string()));
    engine.subscribe(move |e| {
        if let EventKind::PhaseEntered { phase } = e.kind {
            let mut cur = current.lock().unwrap();
            let bucket = std::mem::replace(&mut *cur, phase.to_string());
            let mut sink = sink.lock().unwrap();
            let entry = sink.entry(bucket).or_default();
            for (op, n) in CallCounter::counts(&calls.take()) {
                *entry.entry(op).or_default() += n;
            }
        }
    });
    let second = engine.deploy(request("web-v2")).await.unwrap();
    assert!(second.succeeded(), "{:?}", second.outcome);
    let mut out = per_phase.lock().unwrap().clone();
    // Calls after the last phase change (the lease release makes none).
    let rest = CallCounter::counts(&w.calls.take());
    if !rest.is_empty() {
        out.insert("after done".into(), rest);
    }
    for (phase, ops) in out.iter_mut() {
        if matches!(phase.as_str(), "attach" | "await_healthy" | "bake") {
            for op in [
                "DescribeInstances",
                "DescribeTargetHealth",
                "DescribeAutoScalingGroups",
            ] {
                if let Some(n) = ops.get_mut(op) {
                    *n = (*n).min(1);
                }
            }
        }
    }
    out
}

/// Calls per phase written as a table: `(phase, [(operation, calls)])`.
pub fn calls_table(
    table: &[(&str, &[(&str, usize)])],
) -> BTreeMap<String, BTreeMap<String, usize>> {
    table
        .iter()
        .map(|(phase, ops)| {
            let ops = ops.iter().map(|(op, n)| ((*op).to_owned(), *n)).collect();
            ((*phase).to_owned(), ops)
        })
        .collect()
}

/// Asserts that calls per phase are the same for a small and a large fleet, printing them.
pub fn assert_calls_constant(
    small: &BTreeMap<String, BTreeMap<String, usize>>,
    large: &BTreeMap<String, BTreeMap<String, usize>>,
    large_size: u32,
    what: &str,
) {
    for (phase, ops) in large {
        println!("{phase:>14}: {ops:?}");
    }
    assert_eq!(
        small, large,
        "calls per phase differ between 2 and {large_size} instances"
    );
    let total: usize = large.values().flat_map(|o| o.values()).sum();
    println!("total AWS calls of a v1 -> v2 deployment {what} (one poll per wait): {total}");
}
