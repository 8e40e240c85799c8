//! Orphan cleanup on the mock.

mod common;

use common::*;
use immutable_core::{DeploymentId, Error, Fleet, FleetSpec, GcMode, ServiceName, TrafficRouter};
use immutable_mock::Op;

#[tokio::test(start_paused = true)]
async fn gc_reports_then_removes_orphans_and_nothing_else() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    // A fleet and target of the service that no record knows (a lost record, say).
    let spec = FleetSpec::new(
        w.web.clone(),
        DeploymentId::generate(),
        w.images[1].clone(),
        2,
    );
    let orphan = w.cloud.launch(&spec).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    let orphan = w.cloud.describe(&w.web, &orphan.id).await.unwrap();
    let orphan_target = w.cloud.attach(&orphan).await.unwrap();
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
    assert_eq!(report.fleets, vec![orphan.id.clone()]);
    assert_eq!(report.targets, vec![orphan_target.id.clone()]);
    assert!(!report.removed);
    assert!(
        w.cloud.calls().iter().all(|c| !c.op.is_mutation()),
        "a dry run changed something"
    );
    assert_eq!(w.cloud.snapshot(), before);

    let report = w.engine.gc_with("web", GcMode::Remove).await.unwrap();
    assert!(report.removed);
    let snap = w.cloud.snapshot();
    assert!(
        !snap.fleet(&orphan.id).unwrap().is_live(),
        "the orphan fleet still runs"
    );
    assert!(
        snap.target(&orphan_target.id).is_none(),
        "the orphan target is still attached"
    );
    assert!(
        snap.fleet(&other.id).unwrap().is_live(),
        "another service's fleet was touched"
    );
    w.assert_settled(&w.images[1]);
    // Nothing is left to find.
    let again = w.engine.gc("web").await.unwrap();
    assert!(again.fleets.is_empty() && again.targets.is_empty());
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
