//! A small deploy tool on the AWS backend.
//!
//! ```text
//! # Against moto's server (nothing real is touched):
//! moto_server -p 5000 &
//! export AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_REGION=us-east-1 \
//!        AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
//! cargo run --example aws_deploy -- demo-setup        # prints the flags of a demo stack
//! cargo run --example aws_deploy -- deploy <those flags> --image web-v1 --capacity 3
//! cargo run --example aws_deploy -- deploy <those flags> --image web-v2 --capacity 3
//! ```
//!
//! Against a real account, pass your listener, launch template, subnets and image; the
//! region and credentials come from the standard AWS chain.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, SystemTime};

use aws_sdk_ec2::types::{
    Filter, InstanceType, RequestLaunchTemplateData, ResourceType, Tag, TagSpecification,
};
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, FixedResponseActionConfig};
use clap::{Args, Parser, Subcommand};
use immutable_aws::{
    AwsConfig, AwsFleet, AwsImageStore, AwsRouter, EntryPoint, LaunchTemplate, TargetGroupSettings,
};
use immutable_core::{
    DeploymentRequest, Engine, EventKind, FileStore, ImageRef, Outcome, Settings, TokioClock,
};

#[derive(Parser)]
#[command(about = "Blue-green deployments of EC2 fleets behind an ALB, with immutable")]
struct Cli {
    /// AWS region; default from the AWS chain (AWS_REGION, profile).
    #[arg(long, global = true)]
    region: Option<String>,
    /// Send every AWS call here (an emulator); default AWS_ENDPOINT_URL, if set.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Deploy an image to a service.
    Deploy(DeployArgs),
    /// Create a demo VPC, ALB, launch template and two AMIs on an emulator.
    DemoSetup,
}

#[derive(Args)]
struct DeployArgs {
    /// The service (its ownership tag).
    #[arg(long, default_value = "web")]
    service: String,
    /// The ALB listener whose default action routes the service.
    #[arg(long)]
    listener_arn: String,
    /// A launch template, by name or by id (lt-...).
    #[arg(long)]
    launch_template: String,
    /// Subnets to spread instances over (comma-separated).
    #[arg(long, value_delimiter = ',')]
    subnets: Vec<String>,
    /// The image: an AMI id (ami-...) or name.
    #[arg(long)]
    image: String,
    /// Instances in the new fleet.
    #[arg(long, default_value_t = 2)]
    capacity: u32,
    /// The VPC of new target groups, for a first deployment (later ones copy the live group).
    #[arg(long)]
    vpc_id: Option<String>,
    /// The port instances serve on, for a first deployment.
    #[arg(long, default_value_t = 80)]
    port: i32,
    /// Seconds the old fleet is kept after the switch.
    #[arg(long, default_value_t = 300)]
    bake_seconds: u64,
    /// Seconds the new fleet may take to become healthy.
    #[arg(long, default_value_t = 600)]
    health_timeout_seconds: u64,
    /// Where deployment records and leases are kept.
    #[arg(long, default_value = ".immutable")]
    state_dir: std::path::PathBuf,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let mut config = AwsConfig::from_env();
    if let Some(r) = &cli.region {
        config = config.with_region(r);
    }
    if let Some(u) = &cli.endpoint_url {
        config = config.with_endpoint_url(u);
    }
    let clients = config.load().await;
    let result = match cli.command {
        Command::Deploy(args) => deploy(&clients, args).await,
        Command::DemoSetup => match cli.endpoint_url {
            Some(_) => demo_setup(&clients).await,
            None => Err(
                "demo-setup creates resources: it runs only against an emulator \
                         (set --endpoint-url or AWS_ENDPOINT_URL)"
                    .into(),
            ),
        },
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn deploy(
    clients: &immutable_aws::AwsClients,
    a: DeployArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    let template = if a.launch_template.starts_with("lt-") {
        LaunchTemplate::Id(a.launch_template.clone())
    } else {
        LaunchTemplate::Name(a.launch_template.clone())
    };
    let fleet = AwsFleet::builder(clients)
        .launch_template(template)
        .subnets(a.subnets.clone())
        .build()?;
    let mut entry = EntryPoint::listener(&a.listener_arn);
    if let Some(vpc) = &a.vpc_id {
        entry = entry.with_target_group(TargetGroupSettings::http(a.port, vpc));
    }
    let router = AwsRouter::builder(clients)
        .service(&a.service, entry)
        .build()?;
    let start = SystemTime::now();
    let engine = Engine::builder()
        .images(AwsImageStore::new(clients))
        .fleet(fleet)
        .router(router)
        .store(FileStore::open(&a.state_dir)?)
        .settings(Settings::default().with_poll_interval(Duration::from_secs(2)))
        .clock(TokioClock::starting_at(start))
        .build()?;
    engine.subscribe(move |e| {
        if !matches!(e.kind, EventKind::StepStarted { .. }) {
            let t = e.at.duration_since(start).unwrap_or_default().as_secs_f64();
            println!("[{t:7.1}s] {}", e.kind);
        }
    });
    let image = if a.image.starts_with("ami-") {
        ImageRef::id(a.image.as_str())
    } else {
        ImageRef::name(a.image.as_str())
    };
    let report = engine
        .deploy(
            DeploymentRequest::new(&a.service, image)
                .capacity(a.capacity)
                .bake_time(Duration::from_secs(a.bake_seconds))
                .health_timeout(Duration::from_secs(a.health_timeout_seconds)),
        )
        .await?;
    match report.outcome {
        Outcome::Succeeded => println!(
            "deployment {} succeeded: fleet {} serves",
            report.record.id,
            report
                .record
                .green
                .fleet
                .map(|f| f.to_string())
                .unwrap_or_default()
        ),
        other => {
            return Err(format!("deployment {}: {other}", report.record.id).into());
        }
    }
    Ok(())
}

async fn demo_setup(clients: &immutable_aws::AwsClients) -> Result<(), Box<dyn std::error::Error>> {
    let ec2 = &clients.ec2;
    let elb = &clients.elbv2;
    let vpc = ec2.create_vpc().cidr_block("10.0.0.0/16").send().await?;
    let vpc = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .ok_or("no VPC id")?
        .to_owned();
    let mut subnets = Vec::new();
    for (i, az) in ["a", "b"].iter().enumerate() {
        let region = clients
            .sdk
            .region()
            .map_or("us-east-1".into(), |r| r.to_string());
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.0.{}.0/20", 16 * (i + 1)))
            .availability_zone(format!("{region}{az}"))
            .send()
            .await?;
        subnets.push(
            s.subnet()
                .and_then(|s| s.subnet_id())
                .ok_or("no subnet id")?
                .to_owned(),
        );
    }
    let lb = elb
        .create_load_balancer()
        .name("immutable-demo")
        .set_subnets(Some(subnets.clone()))
        .send()
        .await?;
    let lb = lb.load_balancers()[0]
        .load_balancer_arn()
        .ok_or("no ALB ARN")?
        .to_owned();
    let listener = elb
        .create_listener()
        .load_balancer_arn(&lb)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::FixedResponse)
                .fixed_response_config(
                    FixedResponseActionConfig::builder()
                        .status_code("503")
                        .build(),
                )
                .build(),
        )
        .send()
        .await?;
    let listener = listener.listeners()[0]
        .listener_arn()
        .ok_or("no listener ARN")?
        .to_owned();
    ec2.create_launch_template()
        .launch_template_name("immutable-demo")
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .instance_type(InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await?;
    let base = ec2
        .describe_images()
        .owners("amazon")
        .filters(
            Filter::builder()
                .name("architecture")
                .values("x86_64")
                .build(),
        )
        .send()
        .await?;
    let base = base
        .images()
        .first()
        .and_then(|i| i.image_id())
        .ok_or("no base AMI")?
        .to_owned();
    for name in ["web-v1", "web-v2"] {
        let run = ec2
            .run_instances()
            .image_id(&base)
            .min_count(1)
            .max_count(1)
            .instance_type(InstanceType::T3Micro)
            .subnet_id(&subnets[0])
            .send()
            .await?;
        let builder = run.instances()[0]
            .instance_id()
            .ok_or("no instance id")?
            .to_owned();
        ec2.create_image()
            .instance_id(&builder)
            .name(name)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Image)
                    .tags(
                        Tag::builder()
                            .key(immutable_core::tags::SERVICE)
                            .value("web")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await?;
        ec2.terminate_instances()
            .instance_ids(builder)
            .send()
            .await?;
    }
    println!(
        "--listener-arn {listener} --launch-template immutable-demo --subnets {} --vpc-id {vpc}",
        subnets.join(",")
    );
    Ok(())
}
