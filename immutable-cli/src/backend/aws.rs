//! The AWS backend: EC2 AMIs, EC2 instances or Auto Scaling groups, an ALB listener (or
//! rule); and `demo-setup` on an emulator.

use immutable_aws::sandbox::{self, Sandbox};
use immutable_aws::{
    AsgFleet, AwsClients, AwsFleet, AwsImageStore, AwsRouter, EntryPoint, LaunchTemplate,
    TargetGroupSettings, group_backends, instance_backends,
};
use immutable_core::{Engine, EngineBuilder, Error};

use super::aws_clients;
use crate::cli::{AwsFlags, FleetKind};
use crate::exit::Failure;
use crate::output::{DemoImage, DemoSetupDoc};

/// An engine builder with the AWS backend for `service`: bare instances or Auto Scaling
/// groups, as `--fleet` says, with every capability they have (a preview listener when the
/// service has one, adoption, and scaling control for groups).
pub(super) async fn engine(aws: &AwsFlags, service: &str) -> Result<EngineBuilder, Failure> {
    let clients = super::aws_clients_in_region(aws).await?;
    let router = AwsRouter::builder(&clients).service(service, entry_point(aws)?);
    let images = AwsImageStore::new(&clients);
    let backends = match aws.fleet.unwrap_or_default() {
        FleetKind::Instances => {
            instance_backends(images, instances(&clients, aws)?, router.build()?)
        }
        FleetKind::Asg => {
            let fleet = groups(&clients, aws)?;
            let router = router.membership(fleet.membership()).build()?;
            group_backends(images, fleet, router)
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

pub(super) fn instances(clients: &AwsClients, aws: &AwsFlags) -> Result<AwsFleet, Failure> {
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

pub(super) fn groups(clients: &AwsClients, aws: &AwsFlags) -> Result<AsgFleet, Failure> {
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

/// On an emulator, what a Packer build leaves: an untagged AMI `<service>-packer-1`, and
/// the manifest Packer's `manifest` post-processor writes, at `path`. Returns the AMI's name.
pub(crate) async fn demo_packer(
    aws: &AwsFlags,
    service: &str,
    path: &std::path::Path,
) -> Result<String, Failure> {
    let clients = aws_clients(aws).await;
    let name = format!("{service}-packer-1");
    let ami = clients
        .ec2
        .register_image()
        .name(&name)
        .description("an AMI as Packer would build it (immutable demo-setup)")
        .send()
        .await
        .map_err(|e| Failure::error(format!("demo-setup: RegisterImage: {e}")))?
        .image_id()
        .map(str::to_owned)
        .ok_or_else(|| Failure::error("demo-setup: RegisterImage gave no image id"))?;
    let region = clients
        .sdk
        .region()
        .map_or_else(|| "us-east-1".to_owned(), |r| r.to_string());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let run = format!("demo-{now}");
    let manifest = serde_json::json!({
        "builds": [{
            "name": "app",
            "builder_type": "amazon-ebs",
            "build_time": now,
            "files": null,
            "artifact_id": format!("{region}:{ami}"),
            "packer_run_uuid": run,
            "custom_data": { "git_sha": "0123abc" },
        }],
        "last_run_uuid": run,
    });
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| Failure::error(format!("demo-setup: {e}")))?;
    std::fs::write(path, text)
        .map_err(|e| Failure::refused(format!("cannot write {}: {e}", path.display())))?;
    Ok(name)
}

async fn build_world(clients: &AwsClients, service: &str) -> Result<DemoSetupDoc, Error> {
    let world = Sandbox::create(clients, "immutable-demo").await?;
    sandbox::create_launch_template(clients, "immutable-demo", None).await?;
    let base = sandbox::base_image(clients).await?;
    let mut images = Vec::new();
    for name in [format!("{service}-v1"), format!("{service}-v2")] {
        sandbox::bake_image(clients, &base, service, &name, Some(&world.subnets[0])).await?;
        images.push(DemoImage::Named(name));
    }
    Ok(DemoSetupDoc {
        listener_arn: Some(world.listener),
        preview_listener_arn: Some(world.preview_listener),
        launch_template: Some("immutable-demo".to_owned()),
        subnets: world.subnets,
        vpc_id: Some(world.vpc),
        root: None,
        images,
    })
}
