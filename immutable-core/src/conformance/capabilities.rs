//! The guarantees of the capabilities a provider may have: a preview entry point, scaling
//! control and adoption. Each check passes at once when [`Backends`] does not carry the
//! capability (the engine then makes no such call).

use super::{Backends, Fixture, cleanup, expect_not_found, launch, resolve, wait_running};
use crate::{AdoptMode, AdoptSpec, DeploymentId, Error, Scaling};

/// [`PreviewRouter::preview`](crate::PreviewRouter::preview) routes the preview entry point to
/// a candidate and back to nothing, idempotently; or, for a service the router has no preview
/// entry point for, answers [`Error::NotSupported`] and only that.
pub async fn preview_routes_a_candidate(b: &Backends, f: &Fixture) {
    let Some(preview) = &b.preview else {
        return;
    };
    let s = &f.service;
    let image = resolve(b, f, &f.v1).await;
    let fleet = launch(b, s, &image.id, 1).await;
    let info = wait_running(b, f, s, &fleet.id).await;
    let target = b.router.attach(&info).await.expect("attach");
    match preview.preview(s, Some(&target.id)).await {
        Ok(()) => {
            preview
                .preview(s, Some(&target.id))
                .await
                .expect("routing the preview to the same target again");
            preview.preview(s, None).await.expect("clear the preview");
            preview
                .preview(s, None)
                .await
                .expect("clearing a cleared preview");
        }
        Err(Error::NotSupported { .. }) => {}
        Err(e) => panic!("preview: expected Ok or NotSupported, got {e:?}"),
    }
    cleanup(b, s, Some(&target.id), &fleet.id).await;
}

/// [`ScalingControl::set_scaling`](crate::ScalingControl::set_scaling) is idempotent both ways
/// on one of the service's fleets, and an unknown fleet is [`Error::NotFound`].
pub async fn scaling_is_idempotent(b: &Backends, f: &Fixture) {
    let Some(scaling) = &b.scaling else {
        return;
    };
    let s = &f.service;
    let image = resolve(b, f, &f.v1).await;
    let fleet = launch(b, s, &image.id, 1).await;
    wait_running(b, f, s, &fleet.id).await;
    for mode in [
        Scaling::Held,
        Scaling::Held,
        Scaling::Active,
        Scaling::Active,
    ] {
        scaling
            .set_scaling(s, &fleet.id, mode)
            .await
            .unwrap_or_else(|e| panic!("set_scaling {mode:?}: {e}"));
    }
    expect_not_found(
        "set_scaling on an unknown fleet",
        scaling
            .set_scaling(s, &f.unknown.fleet, Scaling::Held)
            .await,
    );
    cleanup(b, s, None, &fleet.id).await;
}

/// [`TargetAdoption::adoptable`](crate::TargetAdoption::adoptable) reads a target the SDK made
/// as the service's, with its instances; an unknown target is [`Error::NotFound`]; and
/// [`FleetAdoption::adopt`](crate::FleetAdoption::adopt) dry-runs over the service's own
/// instances (an adoption cut off earlier) to the fleet they form, changing nothing, and
/// refuses unknown instances with [`Error::NotFound`].
pub async fn adoption_reads_and_refuses(b: &Backends, f: &Fixture) {
    let Some((fleets, targets)) = &b.adoption else {
        return;
    };
    let s = &f.service;
    let image = resolve(b, f, &f.v1).await;
    let fleet = launch(b, s, &image.id, f.capacity).await;
    let info = wait_running(b, f, s, &fleet.id).await;
    let target = b.router.attach(&info).await.expect("attach");
    let read = targets
        .adoptable(s, &target.id)
        .await
        .expect("adoptable on the service's own target");
    assert_eq!(
        read.owner.as_ref(),
        Some(s),
        "adoptable does not read the service's ownership"
    );
    expect_not_found(
        "adoptable on an unknown target",
        targets.adoptable(s, &f.unknown.target).await,
    );
    let mut instances: Vec<_> = info.instances.iter().map(|i| i.id.clone()).collect();
    let spec = AdoptSpec::new(s.clone(), DeploymentId::generate(), instances.clone());
    let dry = fleets
        .adopt(&spec, AdoptMode::DryRun)
        .await
        .expect("a dry run over the service's own instances");
    assert_eq!(dry.image, image.id, "the dry run reads another image");
    let mut seen: Vec<_> = dry.instances.iter().map(|i| i.id.clone()).collect();
    seen.sort();
    instances.sort();
    assert_eq!(seen, instances, "the dry run reads other instances");
    let listed = b.fleet.list(s).await.expect("list fleets");
    assert!(
        !listed.iter().any(|x| x.key == spec.key),
        "a dry run made a fleet"
    );
    let unknown = AdoptSpec::new(
        s.clone(),
        DeploymentId::generate(),
        [crate::InstanceId::new("i-0deadbeefdeadbeef")],
    );
    match fleets.adopt(&unknown, AdoptMode::DryRun).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("adopting unknown instances: expected NotFound, got {other:?}"),
    }
    cleanup(b, s, Some(&target.id), &fleet.id).await;
}
