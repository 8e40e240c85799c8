//! The guarantees of labels, `ImageRef::Newest` and detach, for every backend.

use super::{Backends, Fixture, cleanup, launch, resolve, wait_running};
use crate::{DeploymentId, Error, ImageRef, Labels, ServiceName, tags};

/// [`ImageStore::label`](crate::ImageStore::label) adds labels that resolve and list see, and
/// [`ImageRef::Newest`] picks the newest of the service's images carrying them.
pub async fn labels_and_newest_resolve(b: &Backends, f: &Fixture) {
    let s = &f.service;
    let (v1, v2) = (resolve(b, f, &f.v1).await, resolve(b, f, &f.v2).await);
    // Two images baked in the same second tie on `created_at`; the id breaks the tie, as
    // documented on `ImageRef::Newest`.
    let (older, newer) = if (v1.created_at, &v1.id) <= (v2.created_at, &v2.id) {
        (v1, v2)
    } else {
        (v2, v1)
    };
    let key = "immutable-conformance";
    let run = DeploymentId::generate().to_string();
    let label = Labels::from([(key.to_owned(), run.clone())]);
    let newest = ImageRef::newest([(key, run.as_str())]);
    match b.images.resolve(s, &newest).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("newest with a label nobody has: expected NotFound, got {other:?}"),
    }
    b.images.label(s, &older.id, &label).await.expect("label");
    let found = b.images.resolve(s, &newest).await.expect("newest");
    assert_eq!(found.id, older.id, "the only labelled image is the newest");
    assert_eq!(
        found.labels.get(key),
        Some(&run),
        "label not visible on resolve"
    );
    b.images.label(s, &newer.id, &label).await.expect("label");
    let found = b.images.resolve(s, &newest).await.expect("newest");
    assert_eq!(
        found.id, newer.id,
        "newest must pick the newer labelled image"
    );
    let listed = b.images.list(s).await.expect("list images");
    let listed = listed.iter().find(|i| i.id == newer.id).expect("listed");
    assert_eq!(
        listed.labels.get(key),
        Some(&run),
        "label not visible on list"
    );
}

/// [`ImageStore::label`](crate::ImageStore::label) never rewrites the SDK's own tags: a label
/// of [`tags::SERVICE`] naming another service is [`Error::InvalidInput`] naming the field
/// `labels` and the key, and nothing of the request is written (the image still resolves as
/// the service's, is listed for it alone and keeps its tags); [`tags::PROMOTED`], which the
/// engine writes, is accepted.
pub async fn labels_cannot_rewrite_ownership(b: &Backends, f: &Fixture) {
    let s = &f.service;
    let image = resolve(b, f, &f.v1).await;
    let other = match &f.other {
        Some((other, _)) => other.clone(),
        None => ServiceName::new("immutable-conformance-other").expect("a valid name"),
    };
    let harmless = "immutable-conformance-refused";
    let moving = Labels::from([
        (tags::SERVICE.to_owned(), other.to_string()),
        (harmless.to_owned(), "written-with-a-refused-key".to_owned()),
    ]);
    match b.images.label(s, &image.id, &moving).await {
        Err(Error::InvalidInput { field, reason, .. }) => {
            assert_eq!(field, "labels", "the refusal names the field");
            assert!(
                reason.contains(tags::SERVICE),
                "the refusal names the key: {reason}"
            );
        }
        other => panic!(
            "labelling {} over the ownership tag: expected InvalidInput, got {other:?}",
            tags::SERVICE
        ),
    }
    let after = resolve(b, f, &ImageRef::Id(image.id.clone())).await;
    assert_eq!(
        after.service.as_ref(),
        Some(s),
        "the refused label moved the image"
    );
    assert_eq!(
        after.labels.get(tags::SERVICE).map(String::as_str),
        Some(s.as_str()),
        "the ownership tag was rewritten"
    );
    assert_eq!(
        after.labels.get(harmless),
        None,
        "a refused request wrote a label"
    );
    for (key, value) in &image.labels {
        assert_eq!(after.labels.get(key), Some(value), "tag {key} changed");
    }
    let listed = b.images.list(s).await.expect("list images");
    assert!(
        listed.iter().any(|i| i.id == image.id),
        "the image left its service's list"
    );
    let theirs = b
        .images
        .list(&other)
        .await
        .expect("list the other service's images");
    assert!(
        theirs.iter().all(|i| i.id != image.id),
        "the image joined {other}'s list"
    );
    let promoted = Labels::from([(
        tags::PROMOTED.to_owned(),
        DeploymentId::generate().to_string(),
    )]);
    b.images
        .label(s, &image.id, &promoted)
        .await
        .unwrap_or_else(|e| panic!("labelling {}, which the engine writes: {e}", tags::PROMOTED));
}

/// Detaching a target that is already gone is [`Error::NotFound`], which callers treat as done.
pub async fn detaching_a_deleted_target_is_not_found(b: &Backends, f: &Fixture) {
    let s = &f.service;
    let image = resolve(b, f, &f.v1).await;
    let fleet = launch(b, s, &image.id, 1).await;
    let info = wait_running(b, f, s, &fleet.id).await;
    let target = b.router.attach(&info).await.expect("attach");
    b.router.detach(s, &target.id).await.expect("detach");
    match b.router.detach(s, &target.id).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("detaching a deleted target: expected NotFound, got {other:?}"),
    }
    cleanup(b, s, None, &fleet.id).await;
}

/// Retiring an image that a live fleet runs is [`Error::ImageInUse`], and changes nothing.
pub async fn retire_refuses_an_image_in_use(b: &Backends, f: &Fixture) {
    let s = &f.service;
    let image = resolve(b, f, &f.v1).await;
    let fleet = launch(b, s, &image.id, 1).await;
    wait_running(b, f, s, &fleet.id).await;
    match b.images.retire(s, &image.id).await {
        Err(Error::ImageInUse { .. }) => {}
        other => panic!("retiring an image in use: expected Error::ImageInUse, got {other:?}"),
    }
    assert!(
        b.images
            .list(s)
            .await
            .expect("list images")
            .iter()
            .any(|i| i.id == image.id),
        "the image in use was retired"
    );
    cleanup(b, s, None, &fleet.id).await;
}
