//! End-to-end deployments through the engine on moto's EC2 and ELBv2.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use immutable_core::{DeploymentRequest, EventKind, ImageRef, Outcome, RollbackCause, tags};

fn request(image: &str, capacity: u32) -> DeploymentRequest {
    DeploymentRequest::new(SERVICE, ImageRef::name(image))
        .capacity(capacity)
        .bake_time(Duration::from_millis(500))
        .health_timeout(Duration::from_secs(3))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_to_v2_on_ec2_and_an_alb() {
    let w = World::new().await;
    let v1 = w.bake_image(SERVICE, "web-v1").await;
    let v2 = w.bake_image(SERVICE, "web-v2").await;
    let engine = w.engine();

    let first = engine.deploy(request("web-v1", 3)).await.unwrap();
    assert!(first.succeeded(), "{:?}", first.outcome);
    let old_group = first.record.green.target.clone().unwrap().to_string();
    let old_fleet = first.record.green.fleet.clone().unwrap().to_string();
    assert_eq!(
        w.listener_forwards(&w.listener).await,
        vec![(old_group.clone(), 100)]
    );

    let second = engine.deploy(request("web-v2", 3)).await.unwrap();
    assert!(second.succeeded(), "{:?}", second.outcome);
    let new_group = second.record.green.target.clone().unwrap().to_string();
    let new_fleet = second.record.green.fleet.clone().unwrap().to_string();

    // The listener forwards only to the new group.
    assert_eq!(
        w.listener_forwards(&w.listener).await,
        vec![(new_group.clone(), 100)]
    );
    // The old group is deleted; the new one is the only group left.
    assert_eq!(w.target_groups().await, vec![new_group.clone()]);
    // The old instances are terminated.
    let old = w.instances(&[("tag:immutable:fleet", &old_fleet)]).await;
    assert_eq!(old.len(), 3);
    assert!(old.iter().all(|(_, s)| s == "terminated"), "{old:?}");
    // Exactly `capacity` new instances run, tagged, from v2, across both subnets.
    let running = w
        .instances(&[
            ("tag:immutable:service", SERVICE),
            ("instance-state-name", "running"),
        ])
        .await;
    assert_eq!(running.len(), 3, "{running:?}");
    let described = w
        .ec2()
        .describe_instances()
        .set_instance_ids(Some(running.iter().map(|(i, _)| i.clone()).collect()))
        .send()
        .await
        .unwrap();
    let mut subnets = std::collections::BTreeSet::new();
    for i in described.reservations().iter().flat_map(|r| r.instances()) {
        let t: BTreeMap<_, _> = i
            .tags()
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        assert_eq!(t.get(tags::SERVICE), Some(&SERVICE));
        assert_eq!(t.get(tags::FLEET), Some(&new_fleet.as_str()));
        assert_eq!(t.get(tags::DEPLOYMENT), Some(&second.record.id.as_str()));
        assert_eq!(i.image_id(), Some(v2.as_str()));
        subnets.insert(i.subnet_id().unwrap().to_owned());
    }
    assert_eq!(
        subnets.len(),
        2,
        "instances were not spread over both subnets"
    );
    // v1 is kept for rollback; v2 is marked promoted.
    let images = w
        .ec2()
        .describe_images()
        .image_ids(v1.as_str())
        .image_ids(v2.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(images.images().len(), 2);
    let v2_tags: Vec<_> = images
        .images()
        .iter()
        .find(|i| i.image_id() == Some(v2.as_str()))
        .unwrap()
        .tags()
        .iter()
        .map(|t| t.key().unwrap().to_owned())
        .collect();
    assert!(v2_tags.contains(&tags::PROMOTED.to_owned()), "{v2_tags:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_instances_never_become_healthy_and_the_deployment_rolls_back() {
    let w = World::new().await;
    w.bake_image(SERVICE, "web-v1").await;
    w.bake_image(SERVICE, "web-v2").await;
    let engine = w.engine();
    let first = engine.deploy(request("web-v1", 2)).await.unwrap();
    assert!(first.succeeded());
    let listener_before = w.listener_forwards(&w.listener).await;

    // Stop the new instances as soon as they are registered: the ALB reports them unused.
    let ec2 = w.ec2().clone();
    let fleet = Arc::new(Mutex::new(None));
    let seen = fleet.clone();
    engine.subscribe(move |e| match &e.kind {
        EventKind::FleetLaunched { fleet, .. } => *seen.lock().unwrap() = Some(fleet.to_string()),
        EventKind::TargetAttached { .. } => {
            let fleet = seen.lock().unwrap().clone().unwrap();
            let ec2 = ec2.clone();
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async move {
                    let out = ec2
                        .describe_instances()
                        .filters(
                            aws_sdk_ec2::types::Filter::builder()
                                .name("tag:immutable:fleet")
                                .values(&fleet)
                                .build(),
                        )
                        .send()
                        .await
                        .unwrap();
                    let ids: Vec<String> = out
                        .reservations()
                        .iter()
                        .flat_map(|r| r.instances())
                        .map(|i| i.instance_id().unwrap().to_owned())
                        .collect();
                    ec2.stop_instances()
                        .set_instance_ids(Some(ids))
                        .send()
                        .await
                        .unwrap();
                })
            });
        }
        _ => {}
    });
    let report = engine.deploy(request("web-v2", 2)).await.unwrap();
    match &report.outcome {
        Outcome::RolledBack {
            cause: RollbackCause::HealthTimeout { .. },
        } => {}
        other => panic!("expected a rollback, got {other:?}"),
    }
    // The listener is unchanged, the new instances are terminated, the new group is deleted.
    assert_eq!(w.listener_forwards(&w.listener).await, listener_before);
    let new_fleet = fleet.lock().unwrap().clone().unwrap();
    let new = w.instances(&[("tag:immutable:fleet", &new_fleet)]).await;
    assert_eq!(new.len(), 2);
    assert!(new.iter().all(|(_, s)| s == "terminated"), "{new:?}");
    let new_group = report.record.green.target.clone().unwrap().to_string();
    let groups = w.target_groups().await;
    assert!(
        !groups.contains(&new_group),
        "the new group was not deleted: {groups:?}"
    );
    assert_eq!(
        groups,
        vec![first.record.green.target.clone().unwrap().to_string()]
    );
}

/// The large fleet of the calls-per-phase test.
const LARGE: u32 = 250;

/// AWS calls of a v1 -> v2 deployment, per phase.
async fn calls_per_phase(capacity: u32) -> BTreeMap<String, BTreeMap<String, usize>> {
    let w = World::new().await;
    w.bake_image(SERVICE, "web-v1").await;
    w.bake_image(SERVICE, "web-v2").await;
    let engine = w.engine();
    let request = |image: &str| request(image, capacity);
    crate::common::calls_per_phase(&w, &engine, request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_calls_do_not_grow_with_fleet_size() {
    // moto answers a tag-filtered DescribeInstances in time quadratic in the tagged resources
    // of the region: at 1,000 instances per fleet one call takes over a minute on 2 cores, past
    // the SDK's 30 s operation timeout. 250 per fleet keeps the run near a minute; batches are
    // of 1,000, so anything up to that is one call per batch either way.
    let small = calls_per_phase(2).await;
    let large = calls_per_phase(LARGE).await;
    assert_calls_constant(&small, &large, LARGE, "of bare instances");
    let expected = calls_table(&[
        (
            "plan",
            &[
                ("DescribeImages", 1),
                ("DescribeListeners", 1),
                ("DescribeTargetGroups", 1),
            ],
        ),
        // The launch and the attach look for what a lost attempt may have made first.
        (
            "provision",
            &[("DescribeInstances", 1), ("RunInstances", 2)],
        ),
        (
            "attach",
            &[
                ("CreateTargetGroup", 1),
                ("DescribeInstances", 1),
                ("DescribeTargetGroups", 1),
                ("RegisterTargets", 1),
            ],
        ),
        ("await_healthy", &[("DescribeTargetHealth", 1)]),
        (
            "rollout",
            &[("DescribeListeners", 2), ("ModifyListener", 2)],
        ),
        ("bake", &[("DescribeTargetHealth", 1)]),
        (
            "retire",
            &[
                ("CreateTags", 1),
                ("DeleteTargetGroup", 1),
                ("DeregisterTargets", 1),
                ("DescribeImages", 1),
                ("DescribeListeners", 3),
                ("DescribeTags", 1),
                ("DescribeTargetHealth", 2),
                ("ModifyListener", 1),
                ("TerminateInstances", 1),
            ],
        ),
    ]);
    // 28: plan's describe of the serving fleet, retire's deregistration delay (nothing drains)
    // and retention's fleet listing (nothing lies beyond retention) are gone from the 34; the
    // ownership read before terminating reads the tag index (DescribeTags), not the instances;
    // plan's routing and target reads share one DescribeListeners, the switch takes
    // AwaitHealthy's health read (nothing waits between them) instead of reading again, and
    // labelling the image reuses the ownership tag read when the plan resolved it. The launch's
    // and the attach's lookups are made every time (26 when a new deployment's first attempt
    // skipped them: a shortcut twelve places had to keep safe).
    assert_eq!(large, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_weights_land_on_the_alb_listener_one_call_per_step() {
    use immutable_core::Steps;
    let w = World::new().await;
    w.bake_image(SERVICE, "web-v1").await;
    w.bake_image(SERVICE, "web-v2").await;
    let engine = w.engine();
    let first = engine.deploy(request("web-v1", 2)).await.unwrap();
    let blue = first.record.green.target.clone().unwrap().to_string();

    // After each weight change, read the listener back through the AWS API.
    let elb = w.elb().clone();
    let listener = w.listener.clone();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    engine.subscribe(move |e| {
        if let EventKind::WeightsSet { .. } = e.kind {
            let (elb, listener, sink) = (elb.clone(), listener.clone(), sink.clone());
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async move {
                    let weights = listener_forwards(&elb, &listener).await;
                    sink.lock().unwrap().push(weights);
                })
            });
        }
    });
    w.calls.take();
    let canary = Steps::canary([10, 50, 100], Duration::from_millis(300));
    let report = engine
        .deploy(request("web-v2", 2).strategy(canary))
        .await
        .unwrap();
    assert!(report.succeeded(), "{:?}", report.outcome);
    let green = report.record.green.target.clone().unwrap().to_string();
    let by_group = |v: &Vec<(String, i32)>| {
        let get = |arn: &str| v.iter().find(|(a, _)| a == arn).map_or(0, |(_, w)| *w);
        (get(&blue), get(&green))
    };
    let splits: Vec<_> = seen.lock().unwrap().iter().map(by_group).collect();
    assert_eq!(splits, [(90, 10), (50, 50), (0, 100)]);
    let modifies = w
        .calls
        .take()
        .iter()
        .filter(|c| *c == "ModifyListener")
        .count();
    // One per weight step on the live listener, plus routing and clearing the preview listener.
    assert_eq!(modifies, 3 + 2, "one ModifyListener per weight step");
}
