//! Adopting a service whose fleet is an Auto Scaling group made by hand, on moto: the listener
//! forwards to a hand-made target group attached to a hand-made group, launched from the team's
//! own launch template. Deploy is refused; the dry run tags nothing; the adoption tags the
//! group; the next deployment copies its settings and retires it, and the team's launch
//! template keeps every version.

use std::time::Duration;

use crate::common::*;
use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
use immutable_core::{AdoptMode, DeploymentRequest, Error, ImageRef, tags};

fn request(image: &str) -> DeploymentRequest {
    DeploymentRequest::new(SERVICE, ImageRef::name(image))
        .capacity(3)
        .bake_time(Duration::from_millis(500))
        .health_timeout(Duration::from_secs(3))
}

/// A target group and a group of 2 to 6 instances made by hand from the team's own launch
/// template, the group attached to the target group, the listener forwarding all to it.
async fn serve_by_hand(w: &World, team_template: &str) -> String {
    let target = w.target_group_by_hand("legacy-web").await;
    w.asg()
        .create_auto_scaling_group()
        .auto_scaling_group_name("legacy-web-asg")
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_id(team_template)
                .version("$Default")
                .build(),
        )
        .min_size(2)
        .max_size(6)
        .desired_capacity(2)
        .vpc_zone_identifier(w.subnets.join(","))
        .target_group_arns(&target)
        .send()
        .await
        .unwrap();
    w.forward_all_by_hand(&target).await;
    target
}

async fn group_tags(w: &World, name: &str) -> Vec<(String, String)> {
    let groups = w.groups().await;
    let g = groups
        .iter()
        .find(|g| g.auto_scaling_group_name() == Some(name))
        .unwrap();
    g.tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
        .filter(|(k, _)| k.starts_with(tags::PREFIX))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_made_auto_scaling_group_is_adopted_then_replaced() {
    let w = World::new().await;
    w.bake_image(SERVICE, "web-v2").await;
    let team_template = w.launch_template("team-web").await;
    let ours = w.launch_template("web").await;
    let target = serve_by_hand(&w, &team_template).await;
    let fleet = w.asg_fleet(&ours);
    let engine = w.asg_engine(&fleet);

    let refused = engine.deploy(request("web-v2")).await.unwrap_err();
    assert!(
        matches!(refused, Error::ServingTargetNotOwned { .. }),
        "{refused:?}"
    );

    let preview = engine.adopt(SERVICE, AdoptMode::DryRun).await.unwrap();
    assert_eq!(preview.fleet.id.as_str(), "legacy-web-asg");
    assert_eq!(preview.fleet.instances.len(), 2);
    assert_eq!(preview.fleet.image.as_str(), w.base_image);
    assert!(
        group_tags(&w, "legacy-web-asg").await.is_empty(),
        "the dry run tagged the group"
    );

    let adopted = engine.adopt(SERVICE, AdoptMode::Apply).await.unwrap();
    assert_eq!(adopted.fleet.id.as_str(), "legacy-web-asg");
    let tagged = group_tags(&w, "legacy-web-asg").await;
    for key in [
        tags::SERVICE,
        tags::FLEET,
        tags::DEPLOYMENT,
        tags::FLEET_KEY,
        tags::IMAGE,
    ] {
        assert!(
            tagged.iter().any(|(k, _)| k == key),
            "{key} missing: {tagged:?}"
        );
    }
    assert!(
        tagged.iter().all(|(k, _)| k != tags::TEMPLATE_VERSION),
        "the team's template version is not the SDK's to delete"
    );

    let v2 = engine.deploy(request("web-v2")).await.unwrap();
    assert!(v2.succeeded(), "{:?}", v2.outcome);
    assert_eq!(v2.record.blue.as_ref().unwrap().target.as_str(), target);
    let groups = w.groups().await;
    assert_eq!(groups.len(), 1, "the adopted group is retired");
    let g = &groups[0];
    assert_ne!(g.auto_scaling_group_name(), Some("legacy-web-asg"));
    assert_eq!(
        (g.min_size(), g.max_size(), g.desired_capacity()),
        (Some(2), Some(6), Some(3)),
        "the new group copied the adopted group's limits"
    );
    let new_target = v2.record.green.target.clone().unwrap().to_string();
    assert_eq!(
        w.listener_forwards(&w.listener).await,
        vec![(new_target.clone(), 100)]
    );
    assert_eq!(w.target_groups().await, vec![new_target]);
    let versions = w
        .ec2()
        .describe_launch_template_versions()
        .launch_template_id(&team_template)
        .send()
        .await
        .unwrap();
    assert_eq!(
        versions.launch_template_versions().len(),
        1,
        "the team's launch template is untouched"
    );
}
