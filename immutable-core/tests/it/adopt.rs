//! Adopting a service that already runs, on the mock: a target made by hand in front of
//! instances launched by hand is refused by deploy, previewed by a dry run that changes
//! nothing, tagged by an apply, then replaced by a deployment like any old fleet.

use std::time::Duration;

use crate::common::*;
use immutable_core::{
    AdoptMode, AdoptRefusal, Error, EventKind, FleetId, ImageId, Origin, Phase, RollbackMode,
    RollbackReport, Routing, StateStore, Steps, TargetId,
};

/// A world whose service "web" is served by hand: `CAPACITY` instances of an untagged image
/// behind an untagged target that takes all traffic.
struct HandMade {
    w: World,
    image: ImageId,
    fleet: FleetId,
    target: TargetId,
}

async fn hand_made() -> HandMade {
    let w = world();
    let image = w.cloud.add_foreign_image("web-legacy");
    let fleet = w.cloud.add_foreign_fleet(&image, CAPACITY);
    let target = w.cloud.add_foreign_target(&fleet);
    w.cloud.route_by_hand("web", Routing::all_to(&target));
    // Long enough for the hand-made target's health checks to pass.
    tokio::time::sleep(Duration::from_secs(60)).await;
    HandMade {
        w,
        image,
        fleet,
        target,
    }
}

fn refusal(e: Error) -> AdoptRefusal {
    match e {
        Error::AdoptionRefused { refusal, .. } => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn deploy_refuses_a_hand_made_serving_target_and_says_how_to_adopt() {
    let h = hand_made().await;
    let before = h.w.cloud.snapshot();
    let err = h.w.engine.deploy(request(1)).await.unwrap_err();
    assert!(
        matches!(&err, Error::ServingTargetNotOwned { target, .. } if *target == h.target),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("Engine::adopt"), "{message}");
    assert!(message.contains("Engine::adopt"), "{message}");
    let plan = h.w.engine.plan(request(1)).await.unwrap();
    assert!(plan.refusals[0].to_string().contains("adopt"), "{plan:?}");
    assert_eq!(
        h.w.cloud.snapshot(),
        before,
        "a refused deploy changed the cloud"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_reads_only_and_reports_what_it_would_tag() {
    let h = hand_made().await;
    let before = h.w.cloud.snapshot();
    h.w.cloud.clear_calls();
    let adoption = h.w.engine.adopt("web", AdoptMode::default()).await.unwrap();
    assert!(!adoption.applied());
    assert_eq!(adoption.target, h.target);
    assert_eq!(adoption.fleet.image, h.image);
    assert_eq!(adoption.fleet.capacity, CAPACITY);
    let hand: Vec<_> = before
        .fleet(&h.fleet)
        .unwrap()
        .instances
        .iter()
        .map(|(i, _)| i.clone())
        .collect();
    let found: Vec<_> = adoption
        .fleet
        .instances
        .iter()
        .map(|i| i.id.clone())
        .collect();
    assert_eq!(found, hand, "the report names the serving instances");
    assert_eq!(
        adoption.image.map(|i| i.name),
        Some("web-legacy".to_owned())
    );

    let mutations: Vec<_> =
        h.w.cloud
            .calls()
            .into_iter()
            .filter(|c| c.op.is_mutation())
            .collect();
    assert!(
        mutations.is_empty(),
        "a dry run changed something: {mutations:?}"
    );
    assert_eq!(h.w.cloud.snapshot(), before, "a dry run changed the cloud");
    assert_eq!(
        h.w.store.latest(&h.w.web).await.unwrap(),
        None,
        "a dry run saved a record"
    );
    assert!(matches!(
        h.w.engine.deploy(request(1)).await,
        Err(Error::ServingTargetNotOwned { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn an_adopted_fleet_is_replaced_and_retired_by_the_next_deployment() {
    let h = hand_made().await;
    let adoption = h.w.engine.adopt("web", AdoptMode::Apply).await.unwrap();
    assert!(adoption.applied());
    let snap = h.w.cloud.snapshot();
    let adopted = snap.live_fleets(&h.w.web);
    assert_eq!(adopted.len(), 1, "{adopted:#?}");
    assert_eq!(adopted[0].id, adoption.fleet.id);
    assert_eq!(adopted[0].live_instances(), CAPACITY as usize);
    let targets = snap.targets_of(&h.w.web);
    assert_eq!(targets.len(), 1);
    assert_eq!(
        (&targets[0].id, &targets[0].fleet),
        (&h.target, &adoption.fleet.id)
    );
    assert_eq!(
        snap.routing_of(&h.w.web),
        Routing::all_to(&h.target),
        "routing moved"
    );
    let record = h.w.store.latest(&h.w.web).await.unwrap().unwrap();
    assert_eq!(
        (record.origin, record.phase),
        (Origin::Adopted, Phase::Done)
    );
    assert_eq!(record.id, adoption.id);
    assert_eq!(record.green.fleet.as_ref(), Some(&adoption.fleet.id));

    let report = h.w.engine.deploy(request(1)).await.unwrap();
    assert!(report.succeeded(), "{:?}", report.outcome);
    let blue = report.record.blue.clone().unwrap();
    assert_eq!((&blue.fleet, &blue.target), (&adoption.fleet.id, &h.target));
    let snap = h.w.cloud.snapshot();
    assert!(
        snap.target(&h.target).is_none(),
        "the adopted target is still attached"
    );
    assert!(
        !snap.fleet(&adoption.fleet.id).unwrap().is_live(),
        "the adopted fleet runs"
    );
    h.w.assert_settled(&h.w.images[1]);

    // The adopted image is the way back.
    let back =
        h.w.engine
            .rollback_with("web", RollbackMode::Redeploy)
            .await
            .unwrap();
    let RollbackReport::Redeployed(back) = back else {
        panic!("{back:?}")
    };
    assert!(back.succeeded(), "{:?}", back.outcome);
    assert_eq!(back.record.image.id, h.image);
    h.w.assert_settled(&h.image);
}

#[tokio::test(start_paused = true)]
async fn split_traffic_is_refused() {
    let h = hand_made().await;
    let other = h.w.cloud.add_foreign_fleet(&h.image, 2);
    let second = h.w.cloud.add_foreign_target(&other);
    let split = Routing::new([(h.target.clone(), 50), (second, 50)]).unwrap();
    h.w.cloud.route_by_hand("web", split.clone());
    for mode in [AdoptMode::DryRun, AdoptMode::Apply] {
        let err = h.w.engine.adopt("web", mode).await.unwrap_err();
        assert_eq!(
            refusal(err),
            AdoptRefusal::TrafficSplit {
                routing: split.clone()
            }
        );
    }
    assert!(h.w.cloud.snapshot().targets_of(&h.w.web).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_service_that_serves_nothing_has_nothing_to_adopt() {
    let w = world();
    let err = w.engine.adopt("web", AdoptMode::Apply).await.unwrap_err();
    assert_eq!(refusal(err), AdoptRefusal::NothingServed);
    assert!(w.cloud.calls().iter().all(|c| !c.op.is_mutation()));
}

#[tokio::test(start_paused = true)]
async fn an_owned_target_is_refused_as_already_managed() {
    let h = hand_made().await;
    h.w.engine.adopt("web", AdoptMode::Apply).await.unwrap();
    let err = h.w.engine.adopt("web", AdoptMode::Apply).await.unwrap_err();
    assert_eq!(
        refusal(err),
        AdoptRefusal::AlreadyManaged {
            target: h.target.clone()
        }
    );

    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    w.cloud.clear_calls();
    let err = w.engine.adopt("web", AdoptMode::DryRun).await.unwrap_err();
    let target = w.serving_target();
    assert_eq!(refusal(err), AdoptRefusal::AlreadyManaged { target });
    assert!(w.cloud.calls().iter().all(|c| !c.op.is_mutation()));
}

#[tokio::test(start_paused = true)]
async fn an_unfinished_deployment_is_refused_and_a_running_one_holds_the_lease() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    let mut events = w.engine.events();
    let engine = w.engine.clone();
    let task = tokio::spawn(async move {
        engine
            .deploy(
                request(2)
                    .strategy(Steps::blue_green())
                    .bake_time(Duration::from_secs(600)),
            )
            .await
    });
    let id = loop {
        let e = events.recv().await.unwrap();
        if e.kind == (EventKind::PhaseEntered { phase: Phase::Bake }) {
            break e.deployment;
        }
    };
    for mode in [AdoptMode::DryRun, AdoptMode::Apply] {
        let err = w.engine.adopt("web", mode).await.unwrap_err();
        assert!(
            matches!(err, Error::Locked { ref deployment, .. } if *deployment == id),
            "{err:?}"
        );
    }
    w.engine.suspend(&id).unwrap();
    assert!(matches!(task.await.unwrap(), Err(Error::Suspended { .. })));
    let err = w.engine.adopt("web", AdoptMode::Apply).await.unwrap_err();
    assert_eq!(
        refusal(err),
        AdoptRefusal::Unfinished {
            deployment: id.clone(),
            phase: Phase::Bake
        }
    );
    assert!(w.engine.resume(&id).await.unwrap().succeeded());
    w.assert_settled(&w.images[2]);
}

#[tokio::test(start_paused = true)]
async fn instances_that_no_longer_run_are_no_fleet_to_adopt() {
    let h = hand_made().await;
    let snap = h.w.cloud.snapshot();
    for (i, _) in &snap.fleet(&h.fleet).unwrap().instances {
        h.w.cloud.kill_instance(i);
    }
    let err = h.w.engine.adopt("web", AdoptMode::Apply).await.unwrap_err();
    assert_eq!(
        refusal(err),
        AdoptRefusal::NoLiveInstances {
            registered: CAPACITY as usize
        }
    );
    assert!(
        h.w.cloud.snapshot().targets_of(&h.w.web).is_empty(),
        "tagged after a refusal"
    );
}

#[tokio::test(start_paused = true)]
async fn a_bad_service_name_names_the_field_and_changes_nothing() {
    let h = hand_made().await;
    let before = h.w.cloud.snapshot();
    h.w.cloud.clear_calls();
    match h.w.engine.adopt("not a name", AdoptMode::Apply).await {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "service"),
        other => panic!("{other:?}"),
    }
    assert!(h.w.cloud.calls().is_empty());
    assert_eq!(h.w.cloud.snapshot(), before);
}

#[tokio::test(start_paused = true)]
async fn an_adoption_cut_off_after_the_fleet_completes_when_run_again_and_gc_spares_it() {
    let h = hand_made().await;
    h.w.cloud.fail_next(
        immutable_mock::Op::AdoptTarget,
        1,
        immutable_mock::Fault::Provider,
    );
    assert!(h.w.engine.adopt("web", AdoptMode::Apply).await.is_err());
    // The instances are tagged, the target is not: gc must not take them for orphans.
    let gc = h.w.engine.gc("web").await.unwrap();
    assert!(
        gc.fleets.is_empty(),
        "gc would terminate the serving instances: {gc:?}"
    );
    let adoption = h.w.engine.adopt("web", AdoptMode::Apply).await.unwrap();
    assert_eq!(adoption.fleet.capacity, CAPACITY);
    assert!(h.w.engine.deploy(request(1)).await.unwrap().succeeded());
    h.w.assert_settled(&h.w.images[1]);
}
