//! Fleets as Auto Scaling groups on moto's server: the conformance suite, a v1 -> v2
//! deployment read back through the AWS API with the copied settings, a rollback that resumes
//! the old group's processes, a capacity outside the size limits refused before anything is
//! created, and an instance terminated by hand during the bake replaced by its group.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use aws_sdk_autoscaling::types::{AutoScalingGroup, StepAdjustment};
use immutable_aws::{AsgFleet, group_backends};
use immutable_core::conformance;
use immutable_core::{
    DeploymentRequest, Engine, EventKind, ImageRef, Outcome, Phase, RollbackCause, ServiceName,
};

fn request(image: &str, capacity: u32) -> DeploymentRequest {
    DeploymentRequest::new(SERVICE, ImageRef::name(image))
        .capacity(capacity)
        .bake_time(Duration::from_millis(500))
        .health_timeout(Duration::from_secs(3))
}

/// moto with web-v1 and web-v2 baked, the service's launch template, fleets as groups
/// launched from it, and an engine over them.
async fn asg_world() -> (World, String, AsgFleet, Engine) {
    let w = World::new().await;
    w.bake_image(SERVICE, "web-v1").await;
    w.bake_image(SERVICE, "web-v2").await;
    let template = w.launch_template("web").await;
    let fleet = w.asg_fleet(&template);
    let engine = w.asg_engine(&fleet);
    (w, template, fleet, engine)
}

async fn group(w: &World, name: &str) -> Option<AutoScalingGroup> {
    w.groups()
        .await
        .into_iter()
        .find(|g| g.auto_scaling_group_name() == Some(name))
}

fn suspended(g: &AutoScalingGroup) -> Vec<String> {
    let mut p: Vec<String> = g
        .suspended_processes()
        .iter()
        .filter_map(|p| p.process_name().map(str::to_owned))
        .collect();
    p.sort();
    p
}

fn tag<'a>(g: &'a AutoScalingGroup, key: &str) -> Option<&'a str> {
    g.tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_scaling_groups_pass_the_conformance_suite() {
    let w = World::new().await;
    w.bake_conformance_images().await;
    let template = w.launch_template("web").await;
    let fleet = w.asg_fleet(&template);
    let router = w.asg_router(&fleet);
    let backends = group_backends(w.images(), fleet, router);
    let fixture = w.conformance_fixture("imm-web-unknown");
    conformance::run_all(&backends, &fixture).await;
}

/// Gives the serving group settings, a policy, a schedule, a hook and a tag of its own, as a
/// team would after its first deployment.
async fn customise(w: &World, name: &str) {
    let asg = w.asg();
    asg.update_auto_scaling_group()
        .auto_scaling_group_name(name)
        .min_size(2)
        .max_size(8)
        .send()
        .await
        .unwrap();
    asg.put_scaling_policy()
        .auto_scaling_group_name(name)
        .policy_name("scale-out")
        .policy_type("StepScaling")
        .adjustment_type("ChangeInCapacity")
        .step_adjustments(
            StepAdjustment::builder()
                .metric_interval_lower_bound(0.0)
                .scaling_adjustment(1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    asg.put_scheduled_update_group_action()
        .auto_scaling_group_name(name)
        .scheduled_action_name("nightly")
        .recurrence("0 2 * * *")
        .desired_capacity(2)
        .send()
        .await
        .unwrap();
    asg.put_lifecycle_hook()
        .auto_scaling_group_name(name)
        .lifecycle_hook_name("warm-up")
        .lifecycle_transition("autoscaling:EC2_INSTANCE_LAUNCHING")
        .heartbeat_timeout(60)
        .default_result("CONTINUE")
        .send()
        .await
        .unwrap();
    asg.create_or_update_tags()
        .tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .key("team")
                .value("checkout")
                .propagate_at_launch(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// The names of a group's policies, schedules and hooks, read through the AWS API.
async fn extras(w: &World, name: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let asg = w.asg();
    let policies = asg
        .describe_policies()
        .auto_scaling_group_name(name)
        .send()
        .await
        .unwrap();
    let scheduled = asg
        .describe_scheduled_actions()
        .auto_scaling_group_name(name)
        .send()
        .await
        .unwrap();
    let hooks = asg
        .describe_lifecycle_hooks()
        .auto_scaling_group_name(name)
        .send()
        .await
        .unwrap();
    (
        policies
            .scaling_policies()
            .iter()
            .filter_map(|p| p.policy_name().map(str::to_owned))
            .collect(),
        scheduled
            .scheduled_update_group_actions()
            .iter()
            .filter_map(|a| a.scheduled_action_name().map(str::to_owned))
            .collect(),
        hooks
            .lifecycle_hooks()
            .iter()
            .filter_map(|h| h.lifecycle_hook_name().map(str::to_owned))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_to_v2_copies_the_serving_group_and_retires_it() {
    let w = World::new().await;
    w.bake_image(SERVICE, "web-v1").await;
    let v2 = w.bake_image(SERVICE, "web-v2").await;
    let template = w.launch_template("web").await;
    // moto's UpdateAutoScalingGroup ignores the cooldown and termination policies: the first
    // group takes them from the builder, the second must copy them.
    let fleet = immutable_aws::AsgFleet::builder(&w.clients)
        .launch_template(immutable_aws::LaunchTemplate::Id(template.clone()))
        .subnets(w.subnets.clone())
        .size_limits(1, 10)
        .health_check("ELB", 60)
        .default_cooldown(120)
        .termination_policies(["OldestInstance"])
        .capacity_rebalance(true)
        .keep_template_versions()
        .build()
        .unwrap();
    let engine = w.asg_engine(&fleet);

    let first = engine.deploy(request("web-v1", 2)).await.unwrap();
    assert!(first.succeeded(), "{:?}", first.outcome);
    let blue = first.record.green.fleet.clone().unwrap().to_string();
    let g1 = group(&w, &blue).await.expect("the first group");
    assert_eq!((g1.min_size(), g1.max_size()), (Some(1), Some(10)));
    assert_eq!(g1.health_check_type(), Some("ELB"));
    assert!(suspended(&g1).is_empty(), "a serving group acts on its own");
    customise(&w, &blue).await;

    let second = engine.deploy(request("web-v2", 3)).await.unwrap();
    assert!(second.succeeded(), "{:?}", second.outcome);
    let green = second.record.green.fleet.clone().unwrap().to_string();
    let new_target = second.record.green.target.clone().unwrap().to_string();
    assert_eq!(
        w.listener_forwards(&w.listener).await,
        vec![(new_target.clone(), 100)]
    );
    assert!(group(&w, &blue).await.is_none(), "the old group is gone");
    let old = w.instances(&[("tag:immutable:fleet", &blue)]).await;
    assert!(old.iter().all(|(_, s)| s == "terminated"), "{old:?}");

    let g2 = group(&w, &green).await.expect("the new group");
    assert_eq!(
        (g2.min_size(), g2.max_size(), g2.desired_capacity()),
        (Some(2), Some(8), Some(3))
    );
    assert_eq!(g2.default_cooldown(), Some(120));
    assert_eq!(g2.termination_policies(), ["OldestInstance"]);
    assert_eq!(g2.capacity_rebalance(), Some(true));
    assert_eq!(g2.vpc_zone_identifier(), g1.vpc_zone_identifier());
    assert_eq!(g2.health_check_type(), Some("ELB"));
    assert_eq!(g2.health_check_grace_period(), Some(60));
    assert_eq!(tag(&g2, "team"), Some("checkout"));
    assert_eq!(tag(&g2, "immutable:image"), Some(v2.as_str()));
    assert_eq!(g2.target_group_arns(), [new_target.as_str()]);
    assert!(
        suspended(&g2).is_empty(),
        "green acts on its own once it serves"
    );
    let (policies, scheduled, hooks) = extras(&w, &green).await;
    assert_eq!(policies, ["scale-out"]);
    assert_eq!(scheduled, ["nightly"]);
    assert_eq!(hooks, ["warm-up"]);
    let running = w
        .instances(&[
            ("tag:immutable:fleet", &green),
            ("instance-state-name", "running"),
        ])
        .await;
    assert_eq!(running.len(), 3, "the group's instances carry its tags");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_green_rolls_back_and_the_old_group_acts_again() {
    let (w, _, _, engine) = asg_world().await;
    let first = engine.deploy(request("web-v1", 2)).await.unwrap();
    assert!(first.succeeded());
    let blue = first.record.green.fleet.clone().unwrap().to_string();
    let listener_before = w.listener_forwards(&w.listener).await;

    // Stop green's instances once it is attached: the ALB never sees them healthy. While
    // green is checked, blue is held.
    let ec2 = w.ec2().clone();
    let asg = w.asg().clone();
    let held_seen = Arc::new(Mutex::new(None));
    let seen = held_seen.clone();
    let blue_name = blue.clone();
    engine.subscribe(move |e| {
        if let EventKind::TargetAttached { .. } = &e.kind {
            let (ec2, asg, blue, seen) =
                (ec2.clone(), asg.clone(), blue_name.clone(), seen.clone());
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async move {
                    let groups = asg.describe_auto_scaling_groups().send().await.unwrap();
                    for g in groups.auto_scaling_groups() {
                        let name = g.auto_scaling_group_name().unwrap();
                        if name == blue {
                            *seen.lock().unwrap() = Some(suspended(g));
                            continue;
                        }
                        let ids: Vec<String> = g
                            .instances()
                            .iter()
                            .filter_map(|i| i.instance_id().map(str::to_owned))
                            .collect();
                        ec2.stop_instances()
                            .set_instance_ids(Some(ids))
                            .send()
                            .await
                            .unwrap();
                    }
                })
            });
        }
    });
    let report = engine.deploy(request("web-v2", 2)).await.unwrap();
    match &report.outcome {
        Outcome::RolledBack {
            cause: RollbackCause::HealthTimeout { .. },
        } => {}
        other => panic!("expected a rollback, got {other:?}"),
    }
    assert_eq!(
        held_seen.lock().unwrap().clone().expect("blue was read"),
        ["AZRebalance", "AlarmNotification", "ScheduledActions"],
        "blue is held while green is checked"
    );
    let g1 = group(&w, &blue).await.expect("blue stays");
    assert!(
        suspended(&g1).is_empty(),
        "the rollback resumed blue's processes"
    );
    assert_eq!(w.listener_forwards(&w.listener).await, listener_before);
    let green = report.record.green.fleet.clone().unwrap().to_string();
    assert!(
        group(&w, &green).await.is_none(),
        "green's group is deleted"
    );
    assert_eq!(w.groups().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capacity_outside_the_size_limits_is_refused_before_anything_is_created() {
    let (w, template, _, engine) = asg_world().await;
    assert!(
        engine
            .deploy(request("web-v1", 2))
            .await
            .unwrap()
            .succeeded()
    );
    let versions = |w: &World| {
        let ec2 = w.ec2().clone();
        let template = template.clone();
        async move {
            ec2.describe_launch_template_versions()
                .launch_template_id(template)
                .send()
                .await
                .unwrap()
                .launch_template_versions()
                .len()
        }
    };
    let (groups_before, versions_before) = (w.groups().await.len(), versions(&w).await);
    w.calls.take();
    let report = engine.deploy(request("web-v2", 11)).await.unwrap();
    match &report.outcome {
        Outcome::RolledBack {
            cause: RollbackCause::ProviderError { error, .. },
        } => assert!(
            error.contains("capacity") && error.contains("1..10"),
            "{error}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let calls = CallCounter::counts(&w.calls.take());
    for created in [
        "CreateAutoScalingGroup",
        "CreateLaunchTemplateVersion",
        "CreateTargetGroup",
    ] {
        assert!(
            !calls.contains_key(created),
            "{created} was called: {calls:?}"
        );
    }
    assert_eq!(w.groups().await.len(), groups_before);
    assert_eq!(versions(&w).await, versions_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_terminated_during_the_bake_is_replaced_by_its_group() {
    let (w, _, _, engine) = asg_world().await;
    assert!(
        engine
            .deploy(request("web-v1", 2))
            .await
            .unwrap()
            .succeeded()
    );
    let asg = w.asg().clone();
    let terminated = Arc::new(Mutex::new(None));
    let gone = terminated.clone();
    engine.subscribe(move |e| {
        if let EventKind::PhaseEntered { phase: Phase::Bake } = &e.kind {
            let (asg, gone) = (asg.clone(), gone.clone());
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async move {
                    let groups = asg.describe_auto_scaling_groups().send().await.unwrap();
                    // The newest group is green.
                    let green = groups
                        .auto_scaling_groups()
                        .iter()
                        .max_by_key(|g| g.created_time().map(|t| t.secs()))
                        .unwrap();
                    let victim = green.instances()[0].instance_id().unwrap().to_owned();
                    asg.terminate_instance_in_auto_scaling_group()
                        .instance_id(&victim)
                        .should_decrement_desired_capacity(false)
                        .send()
                        .await
                        .unwrap();
                    *gone.lock().unwrap() = Some(victim);
                })
            });
        }
    });
    let report = engine
        .deploy(request("web-v2", 3).bake_time(Duration::from_secs(2)))
        .await
        .unwrap();
    assert!(report.succeeded(), "{:?}", report.outcome);
    let victim = terminated
        .lock()
        .unwrap()
        .clone()
        .expect("an instance was terminated");
    let green = report.record.green.fleet.clone().unwrap().to_string();
    let g = group(&w, &green).await.unwrap();
    let members: Vec<&str> = g
        .instances()
        .iter()
        .filter_map(|i| i.instance_id())
        .collect();
    assert_eq!(members.len(), 3, "the group is back to its size");
    assert!(
        !members.contains(&victim.as_str()),
        "the terminated instance was replaced"
    );
    let healthy: BTreeMap<String, String> = w
        .elb()
        .describe_target_health()
        .target_group_arn(report.record.green.target.clone().unwrap().as_str())
        .send()
        .await
        .unwrap()
        .target_health_descriptions()
        .iter()
        .filter_map(|d| {
            Some((
                d.target()?.id()?.to_owned(),
                d.target_health()?.state()?.as_str().to_owned(),
            ))
        })
        .collect();
    for id in &members {
        assert_eq!(
            healthy.get(*id).map(String::as_str),
            Some("healthy"),
            "the replacement joined the target group by itself: {healthy:?}"
        );
    }
}

/// The large fleet of the calls-per-phase test.
const LARGE: u32 = 1000;

async fn asg_calls_per_phase(capacity: u32) -> BTreeMap<String, BTreeMap<String, usize>> {
    let w = World::new().await;
    w.bake_image(SERVICE, "web-v1").await;
    w.bake_image(SERVICE, "web-v2").await;
    let template = w.launch_template("web").await;
    let fleet = immutable_aws::AsgFleet::builder(&w.clients)
        .launch_template(immutable_aws::LaunchTemplate::Id(template))
        .subnets(w.subnets.clone())
        .size_limits(1, 1000)
        .keep_template_versions()
        .build()
        .unwrap();
    let engine = w.asg_engine(&fleet);
    crate::common::calls_per_phase(&w, &engine, |image| request(image, capacity)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asg_calls_do_not_grow_with_fleet_size() {
    let small = asg_calls_per_phase(2).await;
    let large = asg_calls_per_phase(LARGE).await;
    assert_calls_constant(&small, &large, LARGE, "of groups");
    let expected = calls_table(&[
        (
            "plan",
            &[
                ("DescribeImages", 1),
                ("DescribeListeners", 1),
                ("DescribeTargetGroups", 1),
            ],
        ),
        (
            "provision",
            &[
                ("CreateAutoScalingGroup", 1),
                ("CreateLaunchTemplateVersion", 1),
                ("DescribeAutoScalingGroups", 4),
                ("DescribeLaunchTemplateVersions", 1),
                ("DescribeLifecycleHooks", 1),
                ("DescribePolicies", 1),
                ("DescribeScheduledActions", 1),
                ("DescribeWarmPool", 1),
                ("SuspendProcesses", 2),
            ],
        ),
        (
            "attach",
            &[
                ("AttachLoadBalancerTargetGroups", 1),
                ("CreateTargetGroup", 1),
                ("DescribeAutoScalingGroups", 1),
                ("DescribeTargetGroups", 1),
            ],
        ),
        ("await_healthy", &[("DescribeTargetHealth", 1)]),
        (
            "rollout",
            &[
                ("DescribeAutoScalingGroups", 1),
                ("DescribeListeners", 2),
                ("ModifyListener", 2),
                ("ResumeProcesses", 1),
            ],
        ),
        ("bake", &[("DescribeTargetHealth", 1)]),
        (
            "retire",
            &[
                ("CreateTags", 1),
                ("DeleteAutoScalingGroup", 1),
                ("DeleteTargetGroup", 1),
                ("DescribeAutoScalingGroups", 1),
                ("DescribeImages", 1),
                ("DescribeListeners", 3),
                ("DescribeTargetHealth", 1),
                ("DetachLoadBalancerTargetGroups", 1),
                ("ModifyListener", 1),
            ],
        ),
    ]);
    // 39: plan's read of the serving group (its image is in the record) and retention's
    // listing of groups (nothing lies beyond retention) are gone from the 44; plan's routing
    // and target reads share one DescribeListeners, the switch takes AwaitHealthy's health
    // read instead of reading again, and labelling reuses the image's ownership tag as read;
    // launch and attach look for the group and version a lost attempt may have made (3 calls:
    // there is no first-attempt shortcut to get wrong).
    assert_eq!(large, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_finds_a_foreign_group_by_its_tags_and_removes_it_when_named() {
    let (w, _, fleet, engine) = asg_world().await;
    let first = engine.deploy(request("web-v1", 2)).await.unwrap();
    assert!(first.succeeded());
    let serving = first.record.green.fleet.clone().unwrap();
    // A group launched under a key no deployment records: what a lost deploy tool leaves.
    let web = ServiceName::new(SERVICE).unwrap();
    let image = first.record.image.id.clone();
    let spec = immutable_core::FleetSpec::new(
        web.clone(),
        immutable_core::DeploymentId::generate(),
        image,
        1,
    );
    let orphan = immutable_core::Fleet::launch(&fleet, &spec).await.unwrap();
    let dry = engine.gc("web").await.unwrap();
    assert_eq!(dry.foreign_fleets, vec![orphan.id.clone()], "{dry:?}");
    assert_eq!(w.groups().await.len(), 2, "a dry run removes nothing");
    // Its deployment is unknown to this journal: only removed when named.
    let kept = engine
        .gc_with("web", immutable_core::GcMode::Remove)
        .await
        .unwrap();
    assert!(kept.removed_fleets.is_empty(), "{kept:?}");
    assert_eq!(
        w.groups().await.len(),
        2,
        "a foreign group was removed unnamed"
    );
    let named = immutable_core::GcMode::RemoveNamed {
        fleets: vec![orphan.id.clone()],
        targets: Vec::new(),
    };
    let removed = engine.gc_with("web", named).await.unwrap();
    assert_eq!(removed.removed_fleets, vec![orphan.id.clone()]);
    let left: Vec<String> = w
        .groups()
        .await
        .iter()
        .filter_map(|g| g.auto_scaling_group_name().map(str::to_owned))
        .collect();
    assert_eq!(
        left,
        [serving.to_string()],
        "only the serving group is left"
    );
}
