//! AMIs Packer built, brought into a service's catalog on moto: the manifest's build and
//! region pick the AMI, the import tags it in one call, and an unknown AMI, another service's
//! AMI or a refused label tags nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_types::region::Region;
use immutable_aws::AwsImageStore;
use immutable_aws::packer::{BUILD_LABEL, PackerManifest, RUN_LABEL};
use immutable_core::{
    Error, ImageId, ImageRef, ImageStore, Labels, ResourceKind, ServiceName, tags,
};
use serde_json::{Value, json};

use crate::common::*;

/// EC2 clients of the world's account in us-west-2, counted with the world's calls.
fn west(w: &World) -> aws_sdk_ec2::Client {
    let sdk = w
        .clients
        .sdk
        .to_builder()
        .region(Region::new("us-west-2"))
        .build();
    clients_through(&sdk, &w.calls).ec2
}

/// An AMI registered as a Packer build leaves it: named, untagged.
async fn register(ec2: &aws_sdk_ec2::Client, name: &str) -> ImageId {
    let out = ec2.register_image().name(name).send().await.unwrap();
    ImageId::new(out.image_id().unwrap())
}

/// A build entry as Packer's manifest post-processor writes it.
fn build(name: &str, run: &str, amis: &[(&str, &ImageId)], custom: Value) -> Value {
    let artifact: Vec<String> = amis.iter().map(|(r, a)| format!("{r}:{a}")).collect();
    json!({
        "name": name,
        "builder_type": "amazon-ebs",
        "build_time": 1_700_000_000,
        "files": null,
        "artifact_id": artifact.join(","),
        "packer_run_uuid": run,
        "custom_data": custom,
    })
}

/// Writes the manifest in `dir` and reads it back as the CLI would.
fn manifest(dir: &Path, builds: Vec<Value>, last_run: &str) -> (PathBuf, PackerManifest) {
    let path = dir.join("packer-manifest.json");
    let doc = json!({ "builds": builds, "last_run_uuid": last_run });
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let read = PackerManifest::from_file(&path).unwrap();
    (path, read)
}

/// The AMI's tags, as EC2 holds them.
async fn tags_of(ec2: &aws_sdk_ec2::Client, ami: &ImageId) -> BTreeMap<String, String> {
    let out = ec2
        .describe_images()
        .image_ids(ami.as_str())
        .send()
        .await
        .unwrap();
    out.images()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_owned(), t.value().unwrap().to_owned()))
        .collect()
}

/// Every AMI of the region that carries a tag, by `DescribeTags`.
async fn tagged_images(ec2: &aws_sdk_ec2::Client) -> Vec<String> {
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name("resource-type")
        .values("image")
        .build();
    let out = ec2.describe_tags().filters(filter).send().await.unwrap();
    let mut ids: Vec<String> = out
        .tags()
        .iter()
        .filter_map(|t| t.resource_id().map(str::to_owned))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_runs_ami_of_the_region_is_imported_tagged_and_resolves() {
    let w = World::new().await;
    let web = ServiceName::new(SERVICE).unwrap();
    let west_ec2 = west(&w);
    let old = [
        register(w.ec2(), "web-1").await,
        register(&west_ec2, "web-1").await,
    ];
    let new = [
        register(w.ec2(), "web-2").await,
        register(&west_ec2, "web-2").await,
    ];
    let dir = tempfile::tempdir().unwrap();
    let (_, m) = manifest(
        dir.path(),
        vec![
            build(
                "web",
                "run-1",
                &[("us-east-1", &old[0]), ("us-west-2", &old[1])],
                json!({ "git_sha": "1111111" }),
            ),
            build(
                "web",
                "run-2",
                &[("us-east-1", &new[0]), ("us-west-2", &new[1])],
                json!({ "git_sha": "2222222" }),
            ),
        ],
        "run-2",
    );
    let build = m.select(None).unwrap();
    let ami = build.ami_for("us-west-2").unwrap();
    assert_eq!(ami, new[1]);
    let store = AwsImageStore::from_client(west_ec2.clone());
    let newest = ImageRef::Newest(build.labels().unwrap());
    assert!(
        matches!(
            store.resolve(&web, &newest).await,
            Err(Error::NotFound { .. })
        ),
        "not the service's before the import"
    );

    w.calls.take();
    let image = store
        .import(&web, &ami, &build.labels().unwrap())
        .await
        .unwrap();
    assert_eq!(
        CallCounter::counts(&w.calls.take()),
        BTreeMap::from([
            ("CreateTags".to_owned(), 1),
            ("DescribeImages".to_owned(), 1)
        ])
    );
    let want = labels(&[
        (tags::SERVICE, SERVICE),
        (tags::MANAGED_BY, tags::MANAGED_BY_VALUE),
        ("git_sha", "2222222"),
        (BUILD_LABEL, "web"),
        (RUN_LABEL, "run-2"),
    ]);
    assert_eq!(tags_of(&west_ec2, &ami).await, want, "what EC2 holds");
    assert_eq!((&image.id, &image.name), (&ami, &"web-2".to_owned()));
    assert_eq!(image.service, Some(web.clone()));
    assert_eq!(image.labels, want, "the image as resolve gives it");
    assert_eq!(tagged_images(&west_ec2).await, [ami.to_string()]);
    assert!(
        tagged_images(w.ec2()).await.is_empty(),
        "us-east-1 untouched"
    );
    // The store remembers the owner it wrote: labelling needs no read (and no labels, no call).
    w.calls.take();
    store.label(&web, &ami, &Labels::new()).await.unwrap();
    assert!(w.calls.take().is_empty(), "the owner was read again");

    // The service's image now, by name, by its labels, and in its list.
    let by_name = store.resolve(&web, &ImageRef::name("web-2")).await.unwrap();
    assert_eq!(
        (by_name.id, by_name.service),
        (ami.clone(), Some(web.clone()))
    );
    assert_eq!(store.resolve(&web, &newest).await.unwrap(), image);
    let by_sha = ImageRef::newest([("git_sha", "2222222")]);
    assert_eq!(store.resolve(&web, &by_sha).await.unwrap().id, ami);
    let listed: Vec<_> = store
        .list(&web)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(listed, std::slice::from_ref(&ami));

    // A deployment marks it promoted; importing again adds labels and keeps the others.
    let promoted = labels(&[(tags::PROMOTED, "d-1")]);
    store.label(&web, &ami, &promoted).await.unwrap();
    let again = store
        .import(&web, &ami, &labels(&[("channel", "stable")]))
        .await
        .unwrap();
    let label = |key: &str| again.labels.get(key).map(String::as_str);
    assert_eq!(label("git_sha"), Some("2222222"));
    assert_eq!(label("channel"), Some("stable"));
    assert_eq!(label(tags::PROMOTED), Some("d-1"));

    // The same build in the other region: its own AMI there.
    let east = w
        .images()
        .import(
            &web,
            &build.ami_for("us-east-1").unwrap(),
            &build.labels().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(east.id, new[0]);
    assert_eq!(tagged_images(w.ec2()).await, [new[0].to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_named_is_the_one_imported() {
    let w = World::new().await;
    let web = ServiceName::new(SERVICE).unwrap();
    let web_ami = register(w.ec2(), "web-2").await;
    let worker_ami = register(w.ec2(), "worker-2").await;
    let dir = tempfile::tempdir().unwrap();
    let (_, m) = manifest(
        dir.path(),
        vec![
            build("web", "run-1", &[("us-east-1", &web_ami)], Value::Null),
            build(
                "worker",
                "run-1",
                &[("us-east-1", &worker_ami)],
                Value::Null,
            ),
        ],
        "run-1",
    );
    assert_eq!(
        m.select(None).unwrap().name,
        "worker",
        "the run's last build"
    );
    let build = m.select(Some("web")).unwrap();
    let image = w
        .images()
        .import(
            &web,
            &build.ami_for("us-east-1").unwrap(),
            &build.labels().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(image.id, web_ami);
    assert_eq!(tagged_images(w.ec2()).await, [web_ami.to_string()]);
    assert_eq!(
        tags_of(w.ec2(), &web_ami)
            .await
            .get(BUILD_LABEL)
            .map(String::as_str),
        Some("web")
    );
    match m.select(Some("api")) {
        Err(Error::InvalidInput { field, reason, .. }) => {
            assert_eq!(field, "build");
            assert!(reason.contains("web, worker"), "{reason}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_naming_an_ami_that_does_not_exist_tags_nothing() {
    let w = World::new().await;
    let web = ServiceName::new(SERVICE).unwrap();
    register(w.ec2(), "web-1").await;
    let missing = ImageId::new("ami-0123456789abcdef0");
    let dir = tempfile::tempdir().unwrap();
    let (_, m) = manifest(
        dir.path(),
        vec![build(
            "web",
            "run-1",
            &[("us-east-1", &missing)],
            json!({ "k": "v" }),
        )],
        "run-1",
    );
    let build = m.select(None).unwrap();
    w.calls.take();
    let refused = w
        .images()
        .import(
            &web,
            &build.ami_for("us-east-1").unwrap(),
            &build.labels().unwrap(),
        )
        .await;
    match refused {
        Err(Error::NotFound { kind, id, .. }) => {
            assert_eq!((kind, id.as_str()), (ResourceKind::Image, missing.as_str()));
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(w.calls.take(), ["DescribeImages"], "no CreateTags");
    assert!(tagged_images(w.ec2()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ami_of_another_service_is_refused_and_keeps_its_tags() {
    let w = World::new().await;
    let web = ServiceName::new(SERVICE).unwrap();
    let billing = ServiceName::new("billing").unwrap();
    let theirs = w.bake_image("billing", "billing-v1").await;
    let dir = tempfile::tempdir().unwrap();
    let (_, m) = manifest(
        dir.path(),
        vec![build(
            "billing",
            "run-1",
            &[("us-east-1", &theirs)],
            json!({ "k": "v" }),
        )],
        "run-1",
    );
    let build = m.select(None).unwrap();
    let before = tags_of(w.ec2(), &theirs).await;
    let store = w.images();
    w.calls.take();
    let refused = store.import(&web, &theirs, &build.labels().unwrap()).await;
    match refused {
        Err(Error::NotOwned { kind, id, service }) => {
            assert_eq!(kind, ResourceKind::Image);
            assert_eq!((id.as_str(), service.as_str()), (theirs.as_str(), SERVICE));
        }
        other => panic!("expected NotOwned, got {other:?}"),
    }
    assert_eq!(w.calls.take(), ["DescribeImages"], "no CreateTags");
    assert_eq!(tags_of(w.ec2(), &theirs).await, before);
    // Its own service imports it (idempotently: it owns it already).
    let image = store
        .import(&billing, &theirs, &build.labels().unwrap())
        .await
        .unwrap();
    assert_eq!(image.service, Some(billing));
    assert_eq!(
        tags_of(w.ec2(), &theirs).await.get("k").map(String::as_str),
        Some("v")
    );
    // A tag that names no service by the grammar is still someone's claim.
    let odd = register(w.ec2(), "odd").await;
    let claim = aws_sdk_ec2::types::Tag::builder()
        .key(tags::SERVICE)
        .value("Billing Team")
        .build();
    let ec2 = w.ec2().create_tags().resources(odd.as_str()).tags(claim);
    ec2.send().await.unwrap();
    assert!(matches!(
        store.import(&web, &odd, &Labels::new()).await,
        Err(Error::NotOwned { .. })
    ));
    assert_eq!(
        tags_of(w.ec2(), &odd).await,
        labels(&[(tags::SERVICE, "Billing Team")])
    );
    // And the refusal is not forgotten: web still may not label it.
    assert!(matches!(
        store.label(&web, &theirs, &labels(&[("k", "w")])).await,
        Err(Error::NotOwned { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_id_or_a_reserved_label_is_refused_before_any_call() {
    let w = World::new().await;
    let web = ServiceName::new(SERVICE).unwrap();
    let ami = register(w.ec2(), "web-1").await;
    let store = w.images();
    w.calls.take();
    for (id, asked, field) in [
        ("ami-XYZ", Labels::new(), "ami"),
        ("i-0123456789abcdef0", Labels::new(), "ami"),
        (
            ami.as_str(),
            labels(&[(tags::SERVICE, "billing")]),
            "labels",
        ),
        (ami.as_str(), labels(&[(tags::MANAGED_BY, "me")]), "labels"),
    ] {
        match store.import(&web, &ImageId::new(id), &asked).await {
            Err(Error::InvalidInput { field: named, .. }) => assert_eq!(named, field, "{id}"),
            other => panic!("{id}: expected InvalidInput, got {other:?}"),
        }
    }
    assert!(w.calls.take().is_empty(), "no call made");
    assert!(tagged_images(w.ec2()).await.is_empty());
}
