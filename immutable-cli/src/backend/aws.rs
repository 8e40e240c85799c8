//! The AWS backend: EC2 AMIs, EC2 instances or Auto Scaling groups, an ALB listener (or
//! rule); and `demo-setup` on an emulator.

use std::sync::Arc;

use aws_sdk_ec2::types::{
    Filter, InstanceType, RequestLaunchTemplateData, ResourceType, Tag, TagSpecification,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ProtocolEnum,
};
use immutable_aws::{
    AsgFleet, AwsClients, AwsFleet, AwsImageStore, AwsRouter, EntryPoint, LaunchTemplate,
    TargetGroupSettings,
};
use immutable_core::{Backends, Engine, EngineBuilder};

use super::aws_clients;
use crate::cli::{AwsFlags, FleetKind};
use crate::exit::Failure;
use crate::output::{DemoImage, DemoSetupDoc};

/// An engine builder with the AWS backend for `service`: bare instances or Auto Scaling
/// groups, as `--fleet` says, with every capability they have (a preview listener when the
/// service has one, adoption, and scaling control for groups).
pub(super) async fn engine(aws: &AwsFlags, service: &str) -> Result<EngineBuilder, Failure> {
    let clients = aws_clients(aws).await;
    let router = AwsRouter::builder(&clients).service(service, entry_point(aws)?);
    let images = Arc::new(AwsImageStore::new(&clients));
    let backends = match aws.fleet.unwrap_or_default() {
        FleetKind::Instances => {
            let fleet = Arc::new(instances(&clients, aws)?);
            let router = Arc::new(router.build()?);
            Backends::new(images, fleet.clone(), router.clone())
                .with_preview(router.clone())
                .with_adoption(fleet, router)
        }
        FleetKind::Asg => {
            let fleet = groups(&clients, aws)?;
            let router = Arc::new(router.membership(fleet.membership()).build()?);
            let fleet = Arc::new(fleet);
            Backends::new(images, fleet.clone(), router.clone())
                .with_preview(router.clone())
                .with_scaling(fleet.clone())
                .with_adoption(fleet, router)
        }
    };
    Ok(Engine::builder().backends(backends))
}

fn template(aws: &AwsFlags) -> Option<LaunchTemplate> {
    aws.launch_template.as_ref().map(|t| {
        if t.starts_with("lt-") {
            LaunchTemplate::Id(t.clone())
        } else {
            LaunchTemplate::Name(t.clone())
        }
    })
}

fn instances(clients: &AwsClients, aws: &AwsFlags) -> Result<AwsFleet, Failure> {
    let mut fleet = AwsFleet::builder(clients).subnets(aws.subnets.clone());
    if let Some(t) = template(aws) {
        fleet = fleet.launch_template(t);
    }
    if let Some(t) = &aws.instance_type {
        fleet = fleet.instance_type(t);
    }
    if !aws.security_groups.is_empty() {
        fleet = fleet.security_groups(aws.security_groups.clone());
    }
    Ok(fleet.build()?)
}

fn groups(clients: &AwsClients, aws: &AwsFlags) -> Result<AsgFleet, Failure> {
    let Some(t) = template(aws) else {
        return Err(Failure::refused(
            "--fleet asg launches from a launch template: pass --launch-template (or \
             launch_template in [aws] of the service file)",
        ));
    };
    let mut fleet = AsgFleet::builder(clients)
        .launch_template(t)
        .subnets(aws.subnets.clone());
    if let (Some(min), Some(max)) = (aws.min_size, aws.max_size) {
        fleet = fleet.size_limits(min, max);
    } else if aws.min_size.is_some() || aws.max_size.is_some() {
        return Err(Failure::refused(
            "--min-size and --max-size go together: pass both, or neither (the group is then \
             sized to the capacity)",
        ));
    }
    if aws.keep_template_versions {
        fleet = fleet.keep_template_versions();
    }
    Ok(fleet.build()?)
}

fn entry_point(aws: &AwsFlags) -> Result<EntryPoint, Failure> {
    let mut entry = match (&aws.listener_arn, &aws.rule_arn) {
        (Some(l), None) => EntryPoint::listener(l),
        (None, Some(r)) => EntryPoint::rule(r),
        _ => {
            return Err(Failure::refused(
                "the AWS backend routes through one ALB listener or rule: pass --listener-arn \
                 or --rule-arn (or listener_arn / rule_arn in [aws] of the service file)",
            ));
        }
    };
    if let Some(p) = &aws.preview_listener_arn {
        entry = entry.with_preview_listener(p);
    }
    if let Some(vpc) = &aws.vpc_id {
        let mut group = TargetGroupSettings::http(aws.port.unwrap_or(80), vpc);
        if let Some(path) = &aws.health_check_path {
            group = group.with_health_check_path(path);
        }
        entry = entry.with_target_group(group);
    }
    Ok(entry)
}

type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Creates a VPC with two subnets, an ALB with a listener (and a preview listener), a launch
/// template and two AMIs of `service`, on an emulator only; returns the flags that use them.
pub(crate) async fn demo_setup(aws: &AwsFlags, service: &str) -> Result<DemoSetupDoc, Failure> {
    if aws.endpoint_url.is_none() {
        return Err(Failure::refused(
            "demo-setup creates resources: it runs only against an emulator (set \
             --endpoint-url or AWS_ENDPOINT_URL)",
        ));
    }
    let clients = aws_clients(aws).await;
    build_world(&clients, service)
        .await
        .map_err(|e| Failure::error(format!("demo-setup: {e}")))
}

async fn build_world(clients: &AwsClients, service: &str) -> BoxResult<DemoSetupDoc> {
    let ec2 = &clients.ec2;
    let vpc = ec2.create_vpc().cidr_block("10.0.0.0/16").send().await?;
    let vpc = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .ok_or("no VPC id")?
        .to_owned();
    let region = clients
        .sdk
        .region()
        .map_or("us-east-1".into(), |r| r.to_string());
    let mut subnets = Vec::new();
    for (i, az) in ["a", "b"].iter().enumerate() {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.0.{}.0/20", 16 * (i + 1)))
            .availability_zone(format!("{region}{az}"))
            .send()
            .await?;
        let id = s
            .subnet()
            .and_then(|s| s.subnet_id())
            .ok_or("no subnet id")?;
        subnets.push(id.to_owned());
    }
    let (listener, preview) = build_alb(clients, &subnets).await?;
    ec2.create_launch_template()
        .launch_template_name("immutable-demo")
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .instance_type(InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await?;
    let images = build_images(clients, service, &subnets[0]).await?;
    Ok(DemoSetupDoc {
        listener_arn: Some(listener),
        preview_listener_arn: Some(preview),
        launch_template: Some("immutable-demo".to_owned()),
        subnets,
        vpc_id: Some(vpc),
        root: None,
        images: images.into_iter().map(DemoImage::Named).collect(),
    })
}

/// An ALB whose listeners answer 503 until a deployment routes them.
async fn build_alb(clients: &AwsClients, subnets: &[String]) -> BoxResult<(String, String)> {
    let elb = &clients.elbv2;
    let lb = elb
        .create_load_balancer()
        .name("immutable-demo")
        .set_subnets(Some(subnets.to_vec()))
        .send()
        .await?;
    let lb = lb
        .load_balancers()
        .first()
        .and_then(|l| l.load_balancer_arn())
        .ok_or("no ALB ARN")?
        .to_owned();
    let fixed = Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(
            FixedResponseActionConfig::builder()
                .status_code("503")
                .build(),
        )
        .build();
    let mut arns = Vec::new();
    for port in [80, 8080] {
        let l = elb
            .create_listener()
            .load_balancer_arn(&lb)
            .protocol(ProtocolEnum::Http)
            .port(port)
            .default_actions(fixed.clone())
            .send()
            .await?;
        let arn = l.listeners().first().and_then(|l| l.listener_arn());
        arns.push(arn.ok_or("no listener ARN")?.to_owned());
    }
    Ok((arns[0].clone(), arns[1].clone()))
}

/// Two AMIs of `service`, `<service>-v1` and `<service>-v2`, baked from throwaway instances.
async fn build_images(clients: &AwsClients, service: &str, subnet: &str) -> BoxResult<Vec<String>> {
    let ec2 = &clients.ec2;
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
    let mut names = Vec::new();
    for name in [format!("{service}-v1"), format!("{service}-v2")] {
        let run = ec2
            .run_instances()
            .image_id(&base)
            .min_count(1)
            .max_count(1)
            .instance_type(InstanceType::T3Micro)
            .subnet_id(subnet)
            .send()
            .await?;
        let builder = run
            .instances()
            .first()
            .and_then(|i| i.instance_id())
            .ok_or("no instance id")?
            .to_owned();
        let tag = Tag::builder()
            .key(immutable_core::tags::SERVICE)
            .value(service)
            .build();
        ec2.create_image()
            .instance_id(&builder)
            .name(&name)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Image)
                    .tags(tag)
                    .build(),
            )
            .send()
            .await?;
        ec2.terminate_instances()
            .instance_ids(builder)
            .send()
            .await?;
        names.push(name);
    }
    Ok(names)
}
