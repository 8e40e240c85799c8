//! Orphan cleanup on the mock.

use crate::common::*;
use immutable_core::{DeploymentId, Error, Fleet, FleetSpec, GcMode, ServiceName, TrafficRouter};
use immutable_mock::Op;

/// A fleet and a target of the service that no record of this journal knows (made by a
/// runner journaling elsewhere, or whose record was lost) are foreign: reported, left alone
/// by `Remove`, removed only when named.
#[tokio::test(start_paused = true)]
async fn gc_reports_foreign_resources_and_removes_them_only_when_named() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    let spec = FleetSpec::new(
        w.web.clone(),
        DeploymentId::generate(),
        w.images[1].clone(),
        2,
    );
    let foreign = w.cloud.launch(&spec).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    let foreign = w.cloud.describe(&w.web, &foreign.id).await.unwrap();
    let foreign_target = w.cloud.attach(&foreign).await.unwrap();
    // Another service's fleet must stay too.
    let billing = ServiceName::new("billing").unwrap();
    let billing_image = w.cloud.add_image("billing", "billing-v1");
    let other = w
        .cloud
        .launch(&FleetSpec::new(
            billing.clone(),
            DeploymentId::generate(),
            billing_image,
            1,
        ))
        .await
        .unwrap();
    let before = w.cloud.snapshot();
    w.cloud.clear_calls();

    let report = w.engine.gc("web").await.unwrap();
    assert_eq!(report.foreign_fleets, vec![foreign.id.clone()]);
    assert_eq!(report.foreign_targets, vec![foreign_target.id.clone()]);
    assert!(
        report.fleets.is_empty() && report.targets.is_empty(),
        "{report:?}"
    );
    let report = w.engine.gc_with("web", GcMode::Remove).await.unwrap();
    assert!(report.removed_fleets.is_empty() && report.removed_targets.is_empty());
    assert!(
        w.cloud.calls().iter().all(|c| !c.op.is_mutation()),
        "gc removed what its journal cannot prove an orphan"
    );
    assert_eq!(w.cloud.snapshot(), before);

    let named = GcMode::RemoveNamed {
        fleets: vec![foreign.id.clone()],
        targets: vec![foreign_target.id.clone()],
    };
    let report = w.engine.gc_with("web", named).await.unwrap();
    assert_eq!(report.removed_fleets, vec![foreign.id.clone()]);
    let snap = w.cloud.snapshot();
    assert!(
        !snap.fleet(&foreign.id).unwrap().is_live(),
        "the named fleet still runs"
    );
    assert!(
        snap.target(&foreign_target.id).is_none(),
        "the named target is still attached"
    );
    assert!(
        snap.fleet(&other.id).unwrap().is_live(),
        "another service's fleet was touched"
    );
    w.assert_settled(&w.images[1]);
    let again = w.engine.gc("web").await.unwrap();
    assert!(again.foreign_fleets.is_empty() && again.foreign_targets.is_empty());
}

/// A fleet of a deployment the journal shows ended, that takes no traffic (a launch that
/// leaked beside the recorded one, say), is an orphan: `Remove` takes it; the serving fleet
/// cannot be named for removal.
#[tokio::test(start_paused = true)]
async fn gc_removes_what_its_journal_proves_an_orphan_and_never_what_serves() {
    let w = world();
    let done = w.engine.deploy(request(1)).await.unwrap();
    assert!(done.succeeded());
    let serving = done.record.green.fleet.clone().unwrap();
    let leaked = FleetSpec::new(
        w.web.clone(),
        done.record.id.clone(),
        w.images[1].clone(),
        1,
    )
    .with_key(immutable_core::FleetKey::new("leaked-retry"));
    let leaked = w.cloud.launch(&leaked).await.unwrap();
    let report = w.engine.gc("web").await.unwrap();
    assert_eq!(report.fleets, vec![leaked.id.clone()], "{report:?}");
    assert!(report.foreign_fleets.is_empty());

    let serving_named = GcMode::RemoveNamed {
        fleets: vec![serving.clone()],
        targets: Vec::new(),
    };
    match w.engine.gc_with("web", serving_named).await {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "fleets"),
        other => panic!("{other:?}"),
    }
    let report = w.engine.gc_with("web", GcMode::Remove).await.unwrap();
    assert_eq!(report.removed_fleets, vec![leaked.id.clone()]);
    let snap = w.cloud.snapshot();
    assert!(!snap.fleet(&leaked.id).unwrap().is_live());
    assert!(
        snap.fleet(&serving).unwrap().is_live(),
        "the serving fleet was touched"
    );
    w.assert_settled(&w.images[1]);
}

#[tokio::test(start_paused = true)]
async fn gc_leaves_an_unfinished_deployment_to_resume() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    // Cut a deployment off right after it launched its fleet.
    w.cloud.clear_calls();
    let launches_before = w.cloud.call_count(Op::Launch);
    assert_eq!(launches_before, 0);
    w.cloud.crash_after_call(6); // resolve, routing, targets, describe, hold blue, launch
    tokio::select! {
        _ = w.engine.deploy(request(2)) => panic!("the deployment was not cut off"),
        _ = w.cloud.crashed() => {}
    }
    assert_eq!(w.cloud.call_count(Op::Launch), 1);
    tokio::time::sleep(settings().lease_ttl).await;
    let report = w.engine.gc_with("web", GcMode::Remove).await.unwrap();
    assert!(
        report.fleets.is_empty(),
        "gc took the unfinished deployment's fleet: {report:?}"
    );
    // Resuming finishes it.
    let results = w.engine.resume_unfinished().await.unwrap();
    assert_eq!(results.len(), 1);
    assert!(results[0].1.as_ref().unwrap().succeeded());
    w.assert_settled(&w.images[2]);
}

#[tokio::test(start_paused = true)]
async fn gc_waits_for_no_deployment_and_names_bad_services() {
    let w = world();
    assert!(matches!(
        w.engine.gc("").await,
        Err(Error::InvalidInput { .. })
    ));
    let engine = w.engine.clone();
    let mut events = w.engine.events();
    let running = tokio::spawn(async move { engine.deploy(request(1)).await });
    events.recv().await.unwrap();
    while !matches!(
        events.recv().await.unwrap().kind,
        immutable_core::EventKind::FleetLaunched { .. }
    ) {}
    assert!(matches!(
        w.engine.gc_with("web", GcMode::Remove).await,
        Err(Error::Locked { .. })
    ));
    assert!(running.await.unwrap().unwrap().succeeded());
}

/// Store A made v1; v2 runs from store B and bakes. A `gc --remove` from store A knows v1's
/// deployment, but the target that serves belongs to a deployment A does not know: another
/// journal is in charge, so nothing is an orphan to A, v1's fleet (B's way back) stays, and
/// B's rollback routes back to it.
#[tokio::test(start_paused = true)]
async fn gc_from_the_store_of_an_earlier_deployment_leaves_the_way_back_of_a_running_one() {
    let seeded = seeded_cloud(immutable_mock::Timings::default());
    let cloud = seeded.cloud;
    let a = builder_on(&cloud, immutable_core::InMemoryStore::new())
        .build()
        .unwrap();
    let b = builder_on(&cloud, immutable_core::InMemoryStore::new())
        .build()
        .unwrap();
    let v1 = a.deploy(request(1)).await.unwrap();
    assert!(v1.succeeded());
    let blue = v1.record.green.fleet.clone().unwrap();
    let mut events = b.events();
    let running = tokio::spawn({
        let b = b.clone();
        async move {
            b.deploy(request(2).bake_time(std::time::Duration::from_secs(3600)))
                .await
        }
    });
    while !matches!(
        events.recv().await.unwrap().kind,
        immutable_core::EventKind::PhaseEntered {
            phase: immutable_core::Phase::Bake
        }
    ) {}

    let report = a.gc_with("web", GcMode::Remove).await.unwrap();
    assert!(
        report.fleets.is_empty() && report.targets.is_empty(),
        "{report:?}"
    );
    assert!(report.removed_fleets.is_empty() && report.removed_targets.is_empty());
    assert!(report.foreign_fleets.contains(&blue), "{report:?}");
    assert!(
        cloud.snapshot().fleet(&blue).unwrap().is_live(),
        "B's way back was removed"
    );

    let back = b.rollback("web").await.unwrap();
    assert!(
        matches!(back, immutable_core::RollbackReport::RoutedBack(_)),
        "{back:?}"
    );
    let deployed = running.await.unwrap().unwrap();
    assert!(!deployed.succeeded(), "{}", deployed.outcome);
}
