//! AMIs on moto: resolution, labels, retirement with snapshots, and refusals (of a retirement
//! or a label that is not the service's to make).

use crate::common::*;
use immutable_core::{
    DeploymentId, Error, Fleet, FleetSpec, ImageRef, ImageStore, Labels, ServiceName, tags,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_resolve_by_id_name_and_newest_labels() {
    let w = World::new().await;
    let web = ServiceName::new(SERVICE).unwrap();
    let v1 = w.bake_image(SERVICE, "web-v1").await;
    // Creation times have a one-second resolution.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let v2 = w.bake_image(SERVICE, "web-v2").await;
    let store = w.images();
    assert_eq!(
        store
            .resolve(&web, &ImageRef::Id(v1.clone()))
            .await
            .unwrap()
            .id,
        v1
    );
    assert_eq!(
        store
            .resolve(&web, &ImageRef::name("web-v2"))
            .await
            .unwrap()
            .id,
        v2
    );
    let label = Labels::from([("channel".to_owned(), "stable".to_owned())]);
    store.label(&web, &v1, &label).await.unwrap();
    let newest = store
        .resolve(&web, &ImageRef::newest([("channel", "stable")]))
        .await
        .unwrap();
    assert_eq!(newest.id, v1, "only v1 carries the label");
    assert_eq!(newest.service, Some(web.clone()));
    let newest_any = store
        .resolve(&web, &ImageRef::Newest(Labels::new()))
        .await
        .unwrap();
    assert_eq!(newest_any.id, v2);
    let mut listed: Vec<_> = store
        .list(&web)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    listed.sort();
    let mut want = vec![v1, v2];
    want.sort();
    assert_eq!(listed, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retiring_deregisters_the_ami_and_deletes_its_snapshots() {
    let w = World::new().await;
    let web = ServiceName::new(SERVICE).unwrap();
    let v1 = w.bake_image(SERVICE, "web-v1").await;
    let described = w
        .ec2()
        .describe_images()
        .image_ids(v1.as_str())
        .send()
        .await
        .unwrap();
    let snapshots: Vec<String> = described.images()[0]
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs()?.snapshot_id().map(str::to_owned))
        .collect();
    assert!(!snapshots.is_empty(), "the test AMI should have a snapshot");
    w.images().retire(&web, &v1).await.unwrap();
    let after = w
        .ec2()
        .describe_images()
        .owners("self")
        .send()
        .await
        .unwrap();
    assert!(
        after
            .images()
            .iter()
            .all(|i| i.image_id() != Some(v1.as_str()))
    );
    let snaps = w
        .ec2()
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .unwrap();
    for s in &snapshots {
        assert!(
            snaps
                .snapshots()
                .iter()
                .all(|x| x.snapshot_id() != Some(s.as_str())),
            "snapshot {s} survived"
        );
    }
    assert!(matches!(
        w.images().retire(&web, &v1).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ami_in_use_or_of_another_service_is_not_retired() {
    let w = World::new().await;
    let web = ServiceName::new(SERVICE).unwrap();
    let v1 = w.bake_image(SERVICE, "web-v1").await;
    let other = w.bake_image("billing", "billing-v1").await;
    let fleet = w.fleet();
    fleet
        .launch(&FleetSpec::new(
            web.clone(),
            DeploymentId::generate(),
            v1.clone(),
            1,
        ))
        .await
        .unwrap();
    assert!(matches!(
        w.images().retire(&web, &v1).await,
        Err(Error::ImageInUse { .. })
    ));
    assert!(matches!(
        w.images().retire(&web, &other).await,
        Err(Error::NotOwned { .. })
    ));
    assert!(matches!(
        w.images().label(&web, &other, &Labels::new()).await,
        Err(Error::NotOwned { .. })
    ));
    let still = w
        .ec2()
        .describe_images()
        .image_ids(v1.as_str())
        .image_ids(other.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(still.images().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_never_rewrites_the_amis_ownership_tag() {
    let w = World::new().await;
    let web = ServiceName::new(SERVICE).unwrap();
    let v1 = w.bake_image(SERVICE, "web-v1").await;
    let moving = Labels::from([
        (tags::SERVICE.to_owned(), "billing".to_owned()),
        ("channel".to_owned(), "stable".to_owned()),
    ]);
    match w.images().label(&web, &v1, &moving).await {
        Err(Error::InvalidInput { field, reason, .. }) => {
            assert_eq!(field, "labels");
            assert!(reason.contains(tags::SERVICE), "{reason}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    // What EC2 holds, read past the store: the ownership tag as baked, and no tag of the
    // refused request.
    let described = w
        .ec2()
        .describe_images()
        .image_ids(v1.as_str())
        .send()
        .await
        .unwrap();
    let ami_tags: Vec<(&str, &str)> = described.images()[0]
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    assert!(ami_tags.contains(&(tags::SERVICE, SERVICE)), "{ami_tags:?}");
    assert!(
        ami_tags.iter().all(|(k, _)| *k != "channel"),
        "a refused request wrote a tag: {ami_tags:?}"
    );
    // The engine's own label is still accepted.
    let promoted = Labels::from([(tags::PROMOTED.to_owned(), "d-1".to_owned())]);
    w.images().label(&web, &v1, &promoted).await.unwrap();
}
