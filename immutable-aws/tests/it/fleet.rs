//! EC2 fleets on moto: idempotent launch, pagination, partial launches.

use crate::common::*;
use immutable_aws::AwsFleet;
use immutable_core::{DeploymentId, Error, Fleet, FleetSpec, InstanceState, ServiceName};

fn spec(image: &immutable_core::ImageId, capacity: u32) -> FleetSpec {
    FleetSpec::new(
        ServiceName::new(SERVICE).unwrap(),
        DeploymentId::generate(),
        image.clone(),
        capacity,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launching_a_key_twice_launches_once() {
    let w = World::new().await;
    let image = w.bake_image(SERVICE, "web-v1").await;
    let fleet = w.fleet();
    let spec = spec(&image, 4);
    let first = fleet.launch(&spec).await.unwrap();
    w.calls.take();
    let second = fleet.launch(&spec).await.unwrap();
    assert_eq!(first.id, second.id);
    let mut a: Vec<_> = first.instances.iter().map(|i| i.id.clone()).collect();
    let mut b: Vec<_> = second.instances.iter().map(|i| i.id.clone()).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert!(
        !w.calls.take().contains(&"RunInstances".to_owned()),
        "the second launch ran instances"
    );
    let all = w
        .instances(&[("tag:immutable:fleet-key", spec.key.as_str())])
        .await;
    assert_eq!(all.len(), 4, "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_short_of_its_capacity_is_topped_up() {
    let w = World::new().await;
    let image = w.bake_image(SERVICE, "web-v1").await;
    let fleet = w.fleet();
    let spec = spec(&image, 4);
    let info = fleet.launch(&spec).await.unwrap();
    // An instance dies; launching the key again brings the fleet back to 4.
    let dead = info.instances[0].id.to_string();
    w.ec2()
        .terminate_instances()
        .instance_ids(&dead)
        .send()
        .await
        .unwrap();
    let again = fleet.launch(&spec).await.unwrap();
    assert_eq!(
        again.count(InstanceState::Running) + again.count(InstanceState::Pending),
        4
    );
    assert!(again.instances.iter().all(|i| i.id.as_str() != dead));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describes_and_lists_read_every_page() {
    let w = World::new().await;
    let image = w.bake_image(SERVICE, "web-v1").await;
    let fleet = w.fleet(); // 5 reservations per page; each fleet is one per subnet
    let mut launched = Vec::new();
    for _ in 0..4 {
        launched.push(fleet.launch(&spec(&image, 2)).await.unwrap().id);
    }
    w.calls.take();
    let listed = fleet
        .list(&ServiceName::new(SERVICE).unwrap())
        .await
        .unwrap();
    let pages = w
        .calls
        .take()
        .iter()
        .filter(|c| *c == "DescribeInstances")
        .count();
    assert!(
        pages >= 2,
        "8 reservations at 5 per page took {pages} page(s)"
    );
    let mut ids: Vec<_> = listed.iter().map(|f| f.id.clone()).collect();
    ids.sort();
    launched.sort();
    assert_eq!(ids, launched);
    assert!(listed.iter().all(|f| f.instances.len() == 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_subnet_is_made_up_for_by_the_others() {
    let w = World::new().await;
    let image = w.bake_image(SERVICE, "web-v1").await;
    let fleet = AwsFleet::builder(&w.clients)
        .instance_type("t3.micro")
        .subnets([w.subnets[0].clone(), "subnet-0000000000bogus00".to_owned()])
        .build()
        .unwrap();
    let info = fleet.launch(&spec(&image, 4)).await.unwrap();
    assert_eq!(info.instances.len(), 4);
    let running = w
        .instances(&[
            ("tag:immutable:fleet", info.id.as_str()),
            ("subnet-id", &w.subnets[0]),
        ])
        .await;
    assert_eq!(
        running.len(),
        4,
        "all four should run in the working subnet"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_nothing_can_fill_reports_each_subnet() {
    let w = World::new().await;
    let image = w.bake_image(SERVICE, "web-v1").await;
    let fleet = AwsFleet::builder(&w.clients)
        .instance_type("t3.micro")
        .subnets(["subnet-0000000000bogus01", "subnet-0000000000bogus02"])
        .build()
        .unwrap();
    match fleet.launch(&spec(&image, 2)).await {
        Err(Error::NotFound { .. } | Error::InvalidInput { .. } | Error::Provider { .. }) => {}
        other => panic!("expected the subnet error, got {other:?}"),
    }
    let left = w.instances(&[("tag:immutable:service", SERVICE)]).await;
    assert!(left.is_empty(), "a failed launch left instances: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_fleet_settings_name_the_field() {
    let w = World::new().await;
    let cases = [
        (AwsFleet::builder(&w.clients).build(), "instance_type"),
        (
            AwsFleet::builder(&w.clients)
                .instance_type("t3.micro")
                .page_size(1)
                .build(),
            "page_size",
        ),
        (
            AwsFleet::builder(&w.clients)
                .instance_type("t3.micro")
                .concurrent_launches(0)
                .build(),
            "concurrent_launches",
        ),
        (
            AwsFleet::builder(&w.clients)
                .instance_type("t3.micro")
                .subnets([""])
                .build(),
            "subnets",
        ),
    ];
    for (result, field) in cases {
        match result {
            Err(Error::InvalidInput { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected InvalidInput on {field}, got {other:?}"),
        }
    }
}

/// Counts `RunInstances` requests in flight, and the most at once.
#[derive(Debug, Clone, Default)]
struct InFlight(std::sync::Arc<std::sync::Mutex<(usize, usize)>>);

impl InFlight {
    fn is_launch(cfg: &aws_smithy_types::config_bag::ConfigBag) -> bool {
        use aws_smithy_runtime_api::client::orchestrator::Metadata;
        cfg.load::<Metadata>()
            .is_some_and(|m| m.name() == "RunInstances")
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for InFlight {
    fn name(&self) -> &'static str {
        "InFlight"
    }

    fn read_before_transmit(
        &self,
        _: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if Self::is_launch(cfg) {
            let mut n = self.0.lock().unwrap();
            n.0 += 1;
            n.1 = n.1.max(n.0);
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        _: &aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if Self::is_launch(cfg) {
            self.0.lock().unwrap().0 -= 1;
        }
        Ok(())
    }
}

/// A launch over four subnets sends its four `RunInstances` at most `concurrent_launches` at
/// a time, and places every instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launches_over_many_subnets_are_bounded_per_client() {
    let w = World::new().await;
    let image = w.bake_image(SERVICE, "web-v1").await;
    let mut subnets = w.subnets.clone();
    for (i, az) in ["us-east-1c", "us-east-1d"].into_iter().enumerate() {
        subnets.push(create_subnet(&w.clients.ec2, &w.vpc, i + 8, az).await);
    }
    assert_eq!(subnets.len(), 4);
    for bound in [1, 2, 4] {
        let in_flight = InFlight::default();
        let ec2 = aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(&w.clients.sdk)
                .interceptor(in_flight.clone())
                .build(),
        );
        let fleet = AwsFleet::builder_from_client(ec2)
            .instance_type("t3.micro")
            .subnets(subnets.clone())
            .concurrent_launches(bound)
            .build()
            .unwrap();
        let info = fleet.launch(&spec(&image, 8)).await.unwrap();
        assert_eq!(info.instances.len(), 8);
        let (now, seen) = *in_flight.0.lock().unwrap();
        assert_eq!(now, 0);
        assert!(seen <= bound, "bound {bound}: {seen} RunInstances at once");
        if bound == 4 {
            // Unbounded by the setting, the four calls do overlap: the count sees it.
            assert!(seen > 1, "four launches never overlapped");
        }
    }
}

/// Attaching a fleet twice finds the group the first attach made: there is never a second
/// group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attaching_twice_never_makes_a_second_group() {
    use immutable_core::TrafficRouter;
    let w = World::new().await;
    let image = w.bake_image(SERVICE, "web-v1").await;
    let info = w.fleet().launch(&spec(&image, 2)).await.unwrap();
    let router = w.router();
    let groups_before = w.target_groups().await.len();
    let first = router.attach(&info).await.unwrap();
    let again = router.attach(&info).await.unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(w.target_groups().await.len(), groups_before + 1);
}
