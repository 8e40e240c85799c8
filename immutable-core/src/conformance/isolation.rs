//! One service never touches another's fleets, targets or images (I6).

use super::{Backends, Fixture, launch, resolve, wait_running};
use crate::{Error, InstanceState};

/// One service's calls never touch another service's fleets, targets or images (I6).
pub async fn other_services_are_not_touched(b: &Backends, f: &Fixture) {
    let Some((other, other_image)) = &f.other else {
        return;
    };
    let s = &f.service;
    let image = b
        .images
        .resolve(other, other_image)
        .await
        .unwrap_or_else(|e| panic!("resolving {other_image}: {e}"));
    let fleet = launch(b, other, &image.id, 1).await;
    let refused = |what: &str, r: crate::Result<()>| match r {
        Err(Error::NotOwned { .. } | Error::NotFound { .. }) => {}
        other => panic!(
            "{what} of another service's resource: expected NotOwned or NotFound, got {other:?}"
        ),
    };
    refused("terminate", b.fleet.terminate(s, &fleet.id).await);
    refused("describe", b.fleet.describe(s, &fleet.id).await.map(|_| ()));
    refused("retire image", b.images.retire(s, &image.id).await);
    assert!(
        b.fleet
            .list(s)
            .await
            .expect("list")
            .iter()
            .all(|x| x.id != fleet.id),
        "another service's fleet is listed as ours"
    );
    let info = wait_running(b, f, other, &fleet.id).await;
    assert_eq!(
        info.count(InstanceState::Running),
        1,
        "another service's fleet was touched"
    );
    assert!(
        b.images
            .list(other)
            .await
            .expect("list images")
            .iter()
            .any(|i| i.id == image.id),
        "another service's image was retired"
    );
    b.fleet.terminate(other, &fleet.id).await.expect("cleanup");
}

/// An image name resolves to the service's own image, never to another service's image of the
/// same name. For the check to bite, give `f.other`'s service an image named like `f.v1`.
pub async fn image_names_are_scoped_to_the_service(b: &Backends, f: &Fixture) {
    let ours = resolve(b, f, &f.v1).await;
    assert_eq!(
        ours.service.as_ref(),
        Some(&f.service),
        "{} resolved to another service's image",
        f.v1
    );
    let Some((other, _)) = &f.other else {
        return;
    };
    match b.images.resolve(other, &f.v1).await {
        Ok(theirs) => {
            assert_ne!(theirs.id, ours.id, "{} of {other} resolved to ours", f.v1);
            assert_ne!(theirs.service.as_ref(), Some(&f.service));
        }
        Err(Error::NotFound { .. }) => {}
        Err(e) => panic!("resolving {} for {other}: {e}", f.v1),
    }
}
