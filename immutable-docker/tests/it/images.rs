//! The image catalog on a real daemon: imports by reference and from a `docker save` archive,
//! names and ownership, the pin tag, and what retire leaves.

use futures::StreamExt;
use immutable_core::{Error, ImageId, ImageRef, ImageStore, Labels, ServiceName};
use immutable_docker::{ImageSource, ImportRequest, ScratchImage};

use crate::common::{DEMO_APP, Lab, demo_image};

fn svc(lab: &Lab, s: &str) -> ServiceName {
    ServiceName::new(lab.svc(s)).unwrap()
}

async fn has_image(lab: &Lab, reference: &str) -> bool {
    let host = lab.hosts.iter().next().unwrap();
    host.client().inspect_image(reference).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_are_scoped_pinned_and_idempotent() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start(&["web", "billing"]).await;
    let v1 = demo_image("v1", false).await;
    let web = svc(&lab, "web");
    let request = |name: &str, id: &ImageId| {
        ImportRequest::new(web.as_str(), name, ImageSource::Docker(id.to_string()))
            .label("channel", "beta")
    };
    let first = lab.images.import(request("web-v1", &v1)).await.unwrap();
    assert_eq!(first.id, v1);
    // The demo image's Docker label is copied into the catalog, with the import's own.
    assert_eq!(
        first.labels.get("org.example.version").map(String::as_str),
        Some("v1")
    );
    assert_eq!(
        first.labels.get("channel").map(String::as_str),
        Some("beta")
    );
    let pin = format!("immutable-sdk:{}.{}", web, &v1.as_str()[7..23]);
    assert!(has_image(&lab, &pin).await, "no pin tag {pin}");
    // Again: the same image.
    let again = lab.images.import(request("web-v1", &v1)).await.unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(lab.images.list(&web).await.unwrap().len(), 1);
    // The same image under another name, or another image under the same name: refused.
    match lab.images.import(request("web-v1-again", &v1)).await {
        Err(Error::AlreadyExists { .. }) => {}
        other => panic!("one image, two names: {other:?}"),
    }
    let v2 = demo_image("v2", false).await;
    match lab.images.import(request("web-v1", &v2)).await {
        Err(Error::AlreadyExists { .. }) => {}
        other => panic!("one name, two images: {other:?}"),
    }
    // Another service cannot take web's image.
    let billing = ImportRequest::new(lab.svc("billing"), "b", ImageSource::Docker(v1.to_string()));
    match lab.images.import(billing).await {
        Err(Error::NotOwned { .. }) => {}
        other => panic!("another service's image: {other:?}"),
    }
    // An id resolves for any service, as the importing service's image.
    let theirs = lab
        .images
        .resolve(&svc(&lab, "billing"), &ImageRef::Id(v1.clone()))
        .await
        .unwrap();
    assert_eq!(theirs.service.as_ref(), Some(&web));
    // An image on the host that nobody imported resolves by id as nobody's.
    let loose = demo_image("v9", false).await;
    let nobodys = lab
        .images
        .resolve(&web, &ImageRef::Id(loose.clone()))
        .await
        .unwrap();
    assert_eq!(nobodys.service, None);
    match lab.images.label(&web, &loose, &Labels::new()).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("labelling an image nobody imported: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_imports_and_retire_deletes_only_what_no_tag_keeps() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start(&["web"]).await;
    let web = svc(&lab, "web");
    let host = lab.hosts.iter().next().unwrap().clone();
    // An image of this test alone, saved to an archive and then removed from the daemon.
    let id = ScratchImage::new(DEMO_APP)
        .label("org.example.version", format!("archive-{}", lab.suffix))
        .build(host.client())
        .await
        .unwrap();
    let archive = lab.dir.path().join("web.tar");
    let mut saved = host.client().export_image(&id);
    let mut bytes = Vec::new();
    while let Some(chunk) = saved.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    std::fs::write(&archive, bytes).unwrap();
    host.client()
        .remove_image(
            &id,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await
        .unwrap();
    assert!(!has_image(&lab, &id).await);

    let image = lab
        .images
        .import(ImportRequest::new(
            web.as_str(),
            "from-archive",
            ImageSource::Archive(archive),
        ))
        .await
        .unwrap();
    assert_eq!(image.id.as_str(), id);
    assert!(has_image(&lab, &id).await, "the archive was not loaded");
    // Retire: the pin tag was the only tag, so the image goes.
    lab.images.retire(&web, &image.id).await.unwrap();
    assert!(
        !has_image(&lab, &id).await,
        "retire left an image nothing else keeps"
    );
    assert!(lab.images.list(&web).await.unwrap().is_empty());

    // A tag of the user's own keeps the image through retire. (An image of this test alone:
    // retire is refused while any container on the daemon runs the image.)
    let tag = format!("immutable-docker-test:kept-{}", lab.suffix);
    let kept = ScratchImage::new(DEMO_APP)
        .label("org.example.version", format!("kept-{}", lab.suffix))
        .tag(&tag)
        .build(host.client())
        .await
        .unwrap();
    let request = ImportRequest::new(web.as_str(), "kept", ImageSource::Docker(kept.clone()));
    let kept = lab.images.import(request).await.unwrap().id;
    lab.images.retire(&web, &kept).await.unwrap();
    assert!(
        has_image(&lab, kept.as_str()).await,
        "retire removed an image the user tagged"
    );
    assert!(has_image(&lab, &tag).await);
    host.client()
        .remove_image(
            &tag,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await
        .unwrap();
}
