//! The index is true after every kind of change, and what a call on one service reads through
//! it does not grow with other services.

use std::time::Duration;

use immutable_core::{
    AdoptMode, DeploymentRequest, Engine, ImageRef, Routing, ServiceName, TrafficRouter,
};

use super::Index;
use crate::state::owner;
use crate::{MockCloud, Timings};

fn engine(cloud: &MockCloud) -> Engine {
    Engine::builder()
        .backends(cloud.backends())
        .store(immutable_core::InMemoryStore::new())
        .build()
        .unwrap()
}

fn request(service: &str, image: &str) -> DeploymentRequest {
    DeploymentRequest::new(service, ImageRef::name(image))
        .capacity(2)
        .bake_time(Duration::ZERO)
}

#[track_caller]
fn assert_index_true(cloud: &MockCloud, after: &str) {
    let s = cloud.lock();
    assert_eq!(
        s.index.clone().normalized(),
        Index::rebuilt(&s),
        "the kept index differs from the resources after {after}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_index_matches_the_resources_after_every_kind_of_change() {
    let cloud = MockCloud::new();
    let engine = engine(&cloud);
    for (service, image) in [
        ("web", "web-v1"),
        ("web", "web-v2"),
        ("billing", "billing-v1"),
    ] {
        cloud.add_image(service, image);
    }
    let bad = cloud.add_image("web", "web-bad");
    cloud.boot_unhealthy(&bad);
    let legacy = cloud.add_foreign_image("legacy");
    let hand_made = cloud.add_foreign_fleet(&legacy, 2);
    let by_hand = cloud.add_foreign_target(&hand_made);
    cloud.route_by_hand("shop", Routing::all_to(&by_hand));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_index_true(&cloud, "foreign resources");

    let steps: [(&str, &str); 4] = [
        ("web", "web-v1"),
        ("billing", "billing-v1"),
        ("web", "web-v2"),  // retires web-v1's fleet and target
        ("web", "web-bad"), // rolls back: green detached and terminated
    ];
    for (service, image) in steps {
        let _ = engine.deploy(request(service, image)).await.unwrap();
        assert_index_true(&cloud, &format!("deploying {image}"));
    }

    let web = ServiceName::new("web").unwrap();
    let serving = cloud.routing(&web).await.unwrap();
    let target = cloud
        .snapshot()
        .target(serving.sole_target().unwrap())
        .cloned();
    let fleet = cloud
        .snapshot()
        .fleet(&target.unwrap().fleet)
        .cloned()
        .unwrap();
    cloud.stop_instance(&fleet.instances[0].0);
    cloud.kill_instance(&fleet.instances[0].0);
    cloud.kill_instance(&fleet.instances[1].0);
    assert_index_true(&cloud, "killing instances");

    engine.adopt("shop", AdoptMode::Apply).await.unwrap();
    assert_index_true(&cloud, "adopting a service served by hand");
    cloud.add_image("shop", "shop-v2");
    let report = engine.deploy(request("shop", "shop-v2")).await.unwrap();
    assert!(report.succeeded(), "{:?}", report.outcome);
    assert_index_true(&cloud, "replacing an adopted fleet");
}

#[tokio::test(start_paused = true)]
async fn a_services_lookups_do_not_grow_with_other_services() {
    let cloud = MockCloud::with_timings(Timings::instant());
    let engine = engine(&cloud);
    let web = ServiceName::new("web").unwrap();
    cloud.add_image("web", "web-v1");
    assert!(
        engine
            .deploy(request("web", "web-v1"))
            .await
            .unwrap()
            .succeeded()
    );
    let own = cloud.lock().index.services[&web].clone();

    for i in 0..50 {
        let service = format!("svc-{i}");
        cloud.add_image(&service, &format!("{service}-v1"));
        cloud.add_image(&service, "web-v1"); // names are per service
        let report = engine.deploy(request(&service, "web-v1")).await.unwrap();
        assert!(report.succeeded());
    }
    let legacy = cloud.add_foreign_image("web-v1");
    cloud.add_foreign_fleet(&legacy, 2);

    let s = cloud.lock();
    assert_eq!(s.fleets.len(), 52);
    assert_eq!(s.index.services[&web], own, "web's own index moved");
    // What a call on web walks: only web's image, fleet and target.
    let images: Vec<_> = s.images_of(Some(&web)).map(|i| &i.image.id).collect();
    let fleets: Vec<_> = s.fleets_of(&web).map(|f| &f.id).collect();
    let targets: Vec<_> = s.targets_of(&web).map(|(id, _)| id).collect();
    assert_eq!((images.len(), fleets.len(), targets.len()), (1, 1, 1));
    assert!(
        s.images_of(Some(&web))
            .all(|i| i.image.service.as_ref() == Some(&web))
    );
    assert!(
        s.fleets_of(&web)
            .all(|f| owner(&f.tags).as_ref() == Some(&web))
    );
    assert!(
        s.targets_of(&web)
            .all(|(_, t)| owner(&t.tags).as_ref() == Some(&web))
    );
    let fleet = fleets[0];
    assert_eq!(s.targets_fronting(fleet).count(), 1);
    let image = images[0];
    assert_eq!(s.instances_of(image).count(), 2);
}
