//! A throwaway AWS world to deploy into: a VPC with two subnets and an ALB whose listeners
//! answer 503 until a deployment routes them, plus the launch template and AMIs a first
//! deployment needs.
//!
//! `immutable demo-setup`, this crate's tests and its swap bench all start from it, on an
//! emulator such as moto.
//!
//! # Assumptions
//! The account is empty or disposable: nothing here looks for existing resources, and the
//! names given (the ALB's, the launch template's) must be free.
//!
//! # Caveats
//! It creates resources and deletes none. Point it at an emulator or a throwaway account,
//! never at one that serves traffic.
//!
//! # Errors
//! Every call's failure is mapped as the backends map theirs (see [`immutable_core::Error`]):
//! the VPC, subnets and launch template count as [`ResourceKind::Fleet`] resources, the ALB
//! and listeners as [`ResourceKind::EntryPoint`], AMIs as [`ResourceKind::Image`].

use aws_sdk_ec2::types::{
    Filter, InstanceType, RequestLaunchTemplateData, ResourceType, Tag, TagSpecification,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ProtocolEnum,
};
use immutable_core::{Error, ImageId, ResourceKind, tags};

use crate::AwsClients;
use crate::error::{Call, map_sdk};

/// The ports of the two listeners: live traffic, and the preview of a candidate fleet.
pub const LISTENER_PORTS: [u16; 2] = [80, 8080];

/// What [`Sandbox::create`] made: the ids an [`EntryPoint`](crate::EntryPoint),
/// [`TargetGroupSettings`](crate::TargetGroupSettings) and fleet builders need.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sandbox {
    /// The VPC, 10.0.0.0/16.
    pub vpc: String,
    /// Two subnets of the VPC, in the region's zones `a` and `b`.
    pub subnets: Vec<String>,
    /// The ALB's ARN.
    pub load_balancer: String,
    /// The listener on port 80, for live traffic; its default action answers 503.
    pub listener: String,
    /// The listener on port 8080, for previews; its default action answers 503.
    pub preview_listener: String,
}

impl Sandbox {
    /// Creates a VPC, two subnets (10.0.16.0/20 in zone `a`, 10.0.32.0/20 in zone `b` of the
    /// clients' region, us-east-1 when none is set) and an ALB named `alb_name` over them
    /// with HTTP listeners on [`LISTENER_PORTS`].
    pub async fn create(clients: &AwsClients, alb_name: &str) -> Result<Sandbox, Error> {
        let ec2 = &clients.ec2;
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .map_err(|e| map_sdk(Call::new("CreateVpc", ResourceKind::Fleet, ""), e))?;
        let vpc = vpc
            .vpc()
            .and_then(|v| v.vpc_id())
            .ok_or_else(|| missing("CreateVpc", "a VPC id"))?
            .to_owned();
        let region = clients
            .sdk
            .region()
            .map_or("us-east-1".into(), |r| r.to_string());
        let mut subnets = Vec::new();
        for (i, zone) in ["a", "b"].into_iter().enumerate() {
            subnets.push(create_subnet(ec2, &vpc, i + 1, &format!("{region}{zone}")).await?);
        }
        let (load_balancer, [listener, preview_listener]) =
            create_alb(clients, alb_name, &subnets).await?;
        Ok(Sandbox {
            vpc,
            subnets,
            load_balancer,
            listener,
            preview_listener,
        })
    }
}

/// Creates the `n`th /20 subnet of a 10.0.0.0/16 `vpc` (10.0.16·n.0/20) in availability
/// zone `zone`; its id. `n` is 1 to 15.
pub async fn create_subnet(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    n: usize,
    zone: &str,
) -> Result<String, Error> {
    let out = ec2
        .create_subnet()
        .vpc_id(vpc)
        .cidr_block(format!("10.0.{}.0/20", 16 * n))
        .availability_zone(zone)
        .send()
        .await
        .map_err(|e| map_sdk(Call::new("CreateSubnet", ResourceKind::Fleet, vpc), e))?;
    let id = out.subnet().and_then(|s| s.subnet_id());
    Ok(id
        .ok_or_else(|| missing("CreateSubnet", "a subnet id"))?
        .to_owned())
}

/// An ALB over `subnets` and its listeners, which answer 503 until a deployment routes them.
async fn create_alb(
    clients: &AwsClients,
    name: &str,
    subnets: &[String],
) -> Result<(String, [String; 2]), Error> {
    let elb = &clients.elbv2;
    let call = |op| Call::new(op, ResourceKind::EntryPoint, name);
    let lb = elb
        .create_load_balancer()
        .name(name)
        .set_subnets(Some(subnets.to_vec()))
        .send()
        .await
        .map_err(|e| map_sdk(call("CreateLoadBalancer"), e))?;
    let lb = lb
        .load_balancers()
        .first()
        .and_then(|l| l.load_balancer_arn())
        .ok_or_else(|| missing("CreateLoadBalancer", "an ALB ARN"))?
        .to_owned();
    let unrouted = Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(
            FixedResponseActionConfig::builder()
                .status_code("503")
                .build(),
        )
        .build();
    let mut arns = Vec::new();
    for port in LISTENER_PORTS {
        let out = elb
            .create_listener()
            .load_balancer_arn(&lb)
            .protocol(ProtocolEnum::Http)
            .port(i32::from(port))
            .default_actions(unrouted.clone())
            .send()
            .await
            .map_err(|e| map_sdk(call("CreateListener"), e))?;
        let arn = out.listeners().first().and_then(|l| l.listener_arn());
        arns.push(
            arn.ok_or_else(|| missing("CreateListener", "a listener ARN"))?
                .to_owned(),
        );
    }
    let [live, preview]: [String; 2] = arns.try_into().expect("one ARN per port");
    Ok((lb, [live, preview]))
}

/// The first Amazon-owned x86_64 AMI: a base to bake from.
pub async fn base_image(clients: &AwsClients) -> Result<String, Error> {
    let out = clients
        .ec2
        .describe_images()
        .owners("amazon")
        .filters(
            Filter::builder()
                .name("architecture")
                .values("x86_64")
                .build(),
        )
        .send()
        .await
        .map_err(|e| {
            map_sdk(
                Call::new("DescribeImages", ResourceKind::Image, "amazon"),
                e,
            )
        })?;
    let id = out.images().first().and_then(|i| i.image_id());
    Ok(id
        .ok_or_else(|| missing("DescribeImages", "an Amazon AMI"))?
        .to_owned())
}

/// Bakes an AMI named `name`, tagged as `service`'s, from a throwaway t3.micro instance of
/// `base` (in `subnet`, or the default one), as a build pipeline would; the instance is
/// terminated once the image exists.
pub async fn bake_image(
    clients: &AwsClients,
    base: &str,
    service: &str,
    name: &str,
    subnet: Option<&str>,
) -> Result<ImageId, Error> {
    let ec2 = &clients.ec2;
    let call = |op, id| Call::new(op, ResourceKind::Image, id);
    let run = ec2
        .run_instances()
        .image_id(base)
        .min_count(1)
        .max_count(1)
        .instance_type(InstanceType::T3Micro)
        .set_subnet_id(subnet.map(str::to_owned))
        .send()
        .await
        .map_err(|e| map_sdk(call("RunInstances", base), e))?;
    let builder = run
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .ok_or_else(|| missing("RunInstances", "an instance id"))?
        .to_owned();
    let tag = Tag::builder().key(tags::SERVICE).value(service).build();
    let image = ec2
        .create_image()
        .instance_id(&builder)
        .name(name)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Image)
                .tags(tag)
                .build(),
        )
        .send()
        .await
        .map_err(|e| map_sdk(call("CreateImage", name), e))?;
    let image = image
        .image_id()
        .ok_or_else(|| missing("CreateImage", "an AMI id"))?
        .to_owned();
    ec2.terminate_instances()
        .instance_ids(&builder)
        .send()
        .await
        .map_err(|e| {
            map_sdk(
                Call::new("TerminateInstances", ResourceKind::Instance, &builder),
                e,
            )
        })?;
    Ok(ImageId::new(image))
}

/// Creates a launch template named `name` for t3.micro instances (of `image`, when given; a
/// fleet names its own AMI otherwise); its id.
pub async fn create_launch_template(
    clients: &AwsClients,
    name: &str,
    image: Option<&str>,
) -> Result<String, Error> {
    let data = RequestLaunchTemplateData::builder()
        .set_image_id(image.map(str::to_owned))
        .instance_type(InstanceType::T3Micro)
        .build();
    let out = clients
        .ec2
        .create_launch_template()
        .launch_template_name(name)
        .launch_template_data(data)
        .send()
        .await
        .map_err(|e| {
            map_sdk(
                Call::new("CreateLaunchTemplate", ResourceKind::Fleet, name),
                e,
            )
        })?;
    let id = out.launch_template().and_then(|t| t.launch_template_id());
    Ok(id
        .ok_or_else(|| missing("CreateLaunchTemplate", "a template id"))?
        .to_owned())
}

/// An answer that lacks what every answer of `operation` carries.
fn missing(operation: &str, what: &str) -> Error {
    Error::Provider {
        message: format!("{operation} answered without {what}"),
        source: None,
    }
}
