//! Adopting a service that already runs, on moto: a listener forwarding to a target group made
//! by hand, in front of instances launched by hand, is refused by deploy, previewed without a
//! change, adopted, then replaced by a v1 -> v2 deployment through the engine.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use crate::common::*;
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use immutable_core::{AdoptMode, DeploymentRequest, Error, ImageRef, tags};

fn request(image: &str) -> DeploymentRequest {
    DeploymentRequest::new(SERVICE, ImageRef::name(image))
        .capacity(2)
        .bake_time(Duration::from_millis(500))
        .health_timeout(Duration::from_secs(3))
}

/// Two instances launched by hand, registered in a target group made by hand, which the
/// listener forwards all traffic to: the group's ARN and the instance ids.
async fn serve_by_hand(w: &World) -> (String, Vec<String>) {
    let run = w
        .ec2()
        .run_instances()
        .image_id(&w.base_image)
        .min_count(2)
        .max_count(2)
        .subnet_id(&w.subnets[0])
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .send()
        .await
        .unwrap();
    let instances: Vec<String> = run
        .instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_owned())
        .collect();
    let group = w.target_group_by_hand("legacy-web").await;
    let targets = instances
        .iter()
        .map(|i| TargetDescription::builder().id(i).build());
    w.elb()
        .register_targets()
        .target_group_arn(&group)
        .set_targets(Some(targets.collect()))
        .send()
        .await
        .unwrap();
    w.forward_all_by_hand(&group).await;
    (group, instances)
}

/// The `immutable:` tags of a target group and of instances, read through the AWS API.
async fn sdk_tags(w: &World, group: &str, instances: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let described = w
        .elb()
        .describe_tags()
        .resource_arns(group)
        .send()
        .await
        .unwrap();
    for d in described.tag_descriptions() {
        found.extend(d.tags().iter().filter_map(|t| t.key()).map(str::to_owned));
    }
    let out = w
        .ec2()
        .describe_instances()
        .set_instance_ids(Some(instances.to_vec()))
        .send()
        .await
        .unwrap();
    for i in out.reservations().iter().flat_map(|r| r.instances()) {
        found.extend(i.tags().iter().filter_map(|t| t.key()).map(str::to_owned));
    }
    found.retain(|k| k.starts_with("immutable:"));
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_made_listener_target_group_and_instances_are_adopted_then_replaced() {
    let w = World::new().await;
    w.bake_image(SERVICE, "web-v1").await;
    w.bake_image(SERVICE, "web-v2").await;
    let (group, hand) = serve_by_hand(&w).await;
    let engine = w.engine();

    let refused = engine.deploy(request("web-v1")).await.unwrap_err();
    assert!(
        matches!(refused, Error::ServingTargetNotOwned { .. }),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("Engine::adopt"), "{refused}");

    // The dry run reads only, and no tag appears.
    w.calls.take();
    let preview = engine.adopt(SERVICE, AdoptMode::DryRun).await.unwrap();
    let calls = CallCounter::counts(&w.calls.take());
    let writes: Vec<_> = calls
        .keys()
        .filter(|c| !c.starts_with("Describe"))
        .collect();
    assert!(writes.is_empty(), "the dry run made writes: {writes:?}");
    assert_eq!(preview.target.as_str(), group);
    let mut previewed: Vec<String> = preview
        .fleet
        .instances
        .iter()
        .map(|i| i.id.to_string())
        .collect();
    previewed.sort();
    let mut expected = hand.clone();
    expected.sort();
    assert_eq!(previewed, expected);
    assert_eq!(preview.fleet.image.as_str(), w.base_image);
    assert_eq!(sdk_tags(&w, &group, &hand).await, Vec::<String>::new());

    let adopted = engine.adopt(SERVICE, AdoptMode::Apply).await.unwrap();
    let tagged = sdk_tags(&w, &group, &hand).await;
    for key in [
        tags::SERVICE,
        tags::FLEET,
        tags::DEPLOYMENT,
        tags::MANAGED_BY,
    ] {
        assert_eq!(
            tagged.iter().filter(|k| *k == key).count(),
            3,
            "{key} on the group and both instances: {tagged:?}"
        );
    }
    let fleet = adopted.fleet.id.to_string();
    assert_eq!(
        w.instances(&[("tag:immutable:fleet", &fleet)]).await.len(),
        2
    );

    let v1 = engine.deploy(request("web-v1")).await.unwrap();
    assert!(v1.succeeded(), "{:?}", v1.outcome);
    assert_eq!(v1.record.blue.as_ref().unwrap().target.as_str(), group);
    let v2 = engine.deploy(request("web-v2")).await.unwrap();
    assert!(v2.succeeded(), "{:?}", v2.outcome);

    let new_group = v2.record.green.target.clone().unwrap().to_string();
    assert_eq!(
        w.listener_forwards(&w.listener).await,
        vec![(new_group.clone(), 100)]
    );
    assert_eq!(
        w.target_groups().await,
        vec![new_group],
        "groups left behind"
    );
    let old = w.instances(&[("tag:immutable:fleet", &fleet)]).await;
    assert_eq!(old.len(), 2);
    assert!(
        old.iter().all(|(_, s)| s == "terminated"),
        "adopted instances still run: {old:?}"
    );
    let running = w
        .instances(&[
            ("tag:immutable:service", SERVICE),
            ("instance-state-name", "running"),
        ])
        .await;
    assert_eq!(running.len(), 2, "{running:?}");
}
