//! Resume, leases, and bad input to the store.

mod common;

use common::*;
use immutable_core::{DeploymentId, Engine, Error, EventKind, FileStore, StateStore};

fn file_engine(w: &World, store: &FileStore) -> Engine {
    builder_on(&w.cloud, store.clone()).build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_live_lease_is_not_taken_over_but_an_expired_one_is() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    w.cloud.crash_after_call(6);
    tokio::select! {
        _ = w.engine.deploy(request(2)) => panic!("not cut off"),
        _ = w.cloud.crashed() => {}
    }
    let id = w
        .store
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .find(|r| !r.phase.is_terminal())
        .unwrap()
        .id;
    let fresh = w.builder().build().unwrap();
    // The dead run's lease is still live: no takeover, and nothing is touched.
    w.cloud.clear_calls();
    match fresh.resume(&id).await {
        Err(Error::Locked { deployment, .. }) => assert_eq!(deployment, id),
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(w.cloud.calls().is_empty());
    // Once it expires, the fresh engine takes it over and says so.
    let mut events = fresh.events();
    tokio::time::sleep(settings().lease_ttl).await;
    let report = fresh.resume(&id).await.unwrap();
    assert!(report.succeeded());
    let mut took_over = false;
    while let Ok(e) = events.try_recv() {
        took_over |= matches!(e.kind, EventKind::LeaseTakenOver { .. });
    }
    assert!(took_over);
    w.assert_settled(&w.images[2]);
    // Resuming a finished deployment just reports it.
    assert!(fresh.resume(&id).await.unwrap().succeeded());
}

#[tokio::test(start_paused = true)]
async fn an_unknown_deployment_is_not_found() {
    let w = world();
    match w.engine.resume(&DeploymentId::generate()).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_corrupted_record_stops_resume_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    // Leases follow the engine's (virtual) clock, so the dead run's lease expires in virtual
    // time without the test sharing a clock with the store.
    let store = FileStore::open(dir.path()).unwrap();
    let w = world();
    let engine = file_engine(&w, &store);
    assert!(engine.deploy(request(1)).await.unwrap().succeeded());
    w.cloud.crash_after_call(6);
    tokio::select! {
        _ = engine.deploy(request(2)) => panic!("not cut off"),
        _ = w.cloud.crashed() => {}
    }
    let unfinished = store.unfinished(None).await.unwrap();
    let id = unfinished[0].id.clone();
    let path = dir
        .path()
        .join("deployments")
        .join("web")
        .join(format!("{id}.json"));
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    tokio::time::sleep(settings().lease_ttl).await;
    w.cloud.clear_calls();

    for result in [
        file_engine(&w, &store).resume(&id).await.map(|_| ()),
        file_engine(&w, &store)
            .resume_unfinished()
            .await
            .map(|_| ()),
        file_engine(&w, &store).deploy(request(2)).await.map(|_| ()),
    ] {
        match result {
            Err(Error::Store { message, .. }) => {
                assert!(message.contains(&path.display().to_string()), "{message}")
            }
            other => panic!("expected a store error naming the file, got {other:?}"),
        }
    }
    // Nothing restarted the deployment: no backend call changed anything.
    assert!(w.cloud.calls().iter().all(|c| !c.op.is_mutation()));
    assert_eq!(std::fs::read(&path).unwrap(), &bytes[..bytes.len() / 3]);
}
