//! The straight-line script: the minimal calls of a blue-green swap with the same clients.

use std::time::Instant;

use aws_sdk_ec2::types::{
    Filter, InstanceStateName, InstanceType, ResourceType, Tag, TagSpecification,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, ProtocolEnum, TargetDescription, TargetGroupTuple,
    TargetHealthStateEnum, TargetTypeEnum,
};

use crate::world::Bench;
use crate::{POLL, SERVICE, Sample, request};

/// The target group the listener forwards everything to.
async fn serving_group(bench: &Bench) -> String {
    let elb = &bench.clients.elbv2;
    let out = elb
        .describe_listeners()
        .listener_arns(&bench.listener)
        .send()
        .await
        .unwrap();
    let action = &out.listeners()[0].default_actions()[0];
    action
        .target_group_arn()
        .map(str::to_owned)
        .or_else(|| {
            let groups = action.forward_config()?.target_groups();
            let serving = groups.iter().find(|g| g.weight().unwrap_or(1) > 0)?;
            serving.target_group_arn().map(str::to_owned)
        })
        .expect("the listener forwards to a group")
}

/// The group's registered instances, and how many are healthy.
async fn group_targets(bench: &Bench, group: &str) -> (Vec<String>, usize) {
    let out = bench
        .clients
        .elbv2
        .describe_target_health()
        .target_group_arn(group)
        .send()
        .await
        .unwrap();
    let all = out.target_health_descriptions();
    let healthy = all
        .iter()
        .filter(|d| {
            d.target_health().and_then(|h| h.state()) == Some(&TargetHealthStateEnum::Healthy)
        })
        .count();
    let ids = all
        .iter()
        .filter_map(|d| d.target()?.id().map(str::to_owned))
        .collect();
    (ids, healthy)
}

/// `RunInstances` per subnet, tagged as a script would tag them.
async fn run_instances(bench: &Bench, image: &str, capacity: u32) -> Vec<String> {
    let ec2 = &bench.clients.ec2;
    let mut ids = Vec::new();
    let n = bench.subnets.len() as u32;
    for (i, subnet) in bench.subnets.iter().enumerate() {
        let count = capacity / n + u32::from((i as u32) < capacity % n);
        if count == 0 {
            continue;
        }
        // As many tags as the engine writes: moto reads tags in time that grows with all the
        // tags of the region, so fewer tags would flatter the script.
        let spec = |kind| {
            let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
            TagSpecification::builder()
                .resource_type(kind)
                .tags(tag("script:service", SERVICE))
                .tags(tag("script:fleet", "script-v2"))
                .tags(tag("script:deployment", "v2"))
                .tags(tag("script:managed-by", "script"))
                .tags(tag("script:key", "v2"))
                .tags(tag("script:capacity", &capacity.to_string()))
                .tags(tag("Name", "web-v2"))
                .build()
        };
        let out = ec2
            .run_instances()
            .image_id(image)
            .instance_type(InstanceType::T3Micro)
            .subnet_id(subnet)
            .min_count(count as i32)
            .max_count(count as i32)
            .tag_specifications(spec(ResourceType::Instance))
            .tag_specifications(spec(ResourceType::Volume))
            .send()
            .await
            .unwrap();
        ids.extend(
            out.instances()
                .iter()
                .filter_map(|i| i.instance_id().map(str::to_owned)),
        );
    }
    ids
}

/// Polls `DescribeInstances` by id until every instance runs.
async fn await_running(bench: &Bench, ids: &[String]) {
    loop {
        let out = bench
            .clients
            .ec2
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .unwrap();
        let running = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| i.state().and_then(|s| s.name()) == Some(&InstanceStateName::Running))
            .count();
        if running == ids.len() {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

fn targets(ids: &[String]) -> Option<Vec<TargetDescription>> {
    Some(
        ids.iter()
            .map(|id| TargetDescription::builder().id(id).build())
            .collect(),
    )
}

/// The minimal calls of a blue-green swap, straight-line: 12 requests when each wait is done
/// at its first poll.
async fn baseline_swap(bench: &Bench, capacity: u32, image: &str) -> Sample {
    let start = Instant::now();
    let old_group = serving_group(bench).await;
    let (old_ids, _) = group_targets(bench, &old_group).await;
    let ids = run_instances(bench, image, capacity).await;
    await_running(bench, &ids).await;
    let group = attach(bench, &ids).await;
    while group_targets(bench, &group).await.1 < ids.len() {
        tokio::time::sleep(POLL).await;
    }
    switch_to(bench, &group).await;
    let to_switch = start.elapsed();
    retire(bench, &old_group, old_ids).await;
    Sample {
        to_switch,
        total: start.elapsed(),
        requests: bench.calls.take().len(),
        // The script neither labels nor retires images.
        retention: 0,
    }
}

/// A new target group with the instances registered: its ARN.
async fn attach(bench: &Bench, ids: &[String]) -> String {
    let elb = &bench.clients.elbv2;
    let group = elb
        .create_target_group()
        .name("script-v2")
        .protocol(ProtocolEnum::Http)
        .port(80)
        .vpc_id(&bench.vpc)
        .target_type(TargetTypeEnum::Instance)
        .health_check_path("/health")
        .send()
        .await
        .unwrap();
    let group = group.target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_owned();
    elb.register_targets()
        .target_group_arn(&group)
        .set_targets(targets(ids))
        .send()
        .await
        .unwrap();
    group
}

/// Everything to `group`, in one `ModifyListener`.
async fn switch_to(bench: &Bench, group: &str) {
    let all = TargetGroupTuple::builder()
        .target_group_arn(group)
        .weight(100)
        .build();
    let forward = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(ForwardActionConfig::builder().target_groups(all).build())
        .build();
    bench
        .clients
        .elbv2
        .modify_listener()
        .listener_arn(&bench.listener)
        .default_actions(forward)
        .send()
        .await
        .unwrap();
}

/// Deregisters the old instances, terminates them, deletes the old group.
async fn retire(bench: &Bench, old_group: &str, old_ids: Vec<String>) {
    let elb = &bench.clients.elbv2;
    elb.deregister_targets()
        .target_group_arn(old_group)
        .set_targets(targets(&old_ids))
        .send()
        .await
        .unwrap();
    bench
        .clients
        .ec2
        .terminate_instances()
        .set_instance_ids(Some(old_ids))
        .send()
        .await
        .unwrap();
    elb.delete_target_group()
        .target_group_arn(old_group)
        .send()
        .await
        .unwrap();
}

/// The baseline's v1 -> v2, after the engine deployed v1 (unmeasured).
pub(crate) async fn baseline(capacity: u32) -> Sample {
    let bench = Bench::new().await;
    let engine = bench.engine();
    let first = engine.deploy(request("web-v1", capacity)).await.unwrap();
    assert!(first.succeeded(), "{:?}", first.outcome);
    let images = bench
        .clients
        .ec2
        .describe_images()
        .filters(Filter::builder().name("name").values("web-v2").build())
        .send()
        .await
        .unwrap();
    let v2 = images.images()[0].image_id().unwrap().to_owned();
    bench.calls.take();
    baseline_swap(&bench, capacity, &v2).await
}
