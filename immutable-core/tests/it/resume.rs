//! Resume, leases, and bad input to the store.

use crate::common::*;
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

/// The mock's fleet and router, except that the first `launch` and `attach` take effect and
/// then lose their answer (a timeout after the provider acted), and each call is counted.
#[derive(Debug)]
struct LostAnswers {
    cloud: immutable_mock::MockCloud,
    calls: std::sync::Mutex<Vec<&'static str>>,
}

impl LostAnswers {
    fn count(&self, call: &'static str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| **c == call)
            .count()
    }

    /// Counts `call`; the first of each loses its answer.
    fn answer<T>(&self, call: &'static str, result: Result<T, Error>) -> Result<T, Error> {
        let first = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(call);
            calls.iter().filter(|c| **c == call).count() == 1
        };
        match result {
            Ok(_) if first => Err(Error::transient(format!("{call}: the answer was lost"))),
            other => other,
        }
    }
}

mod lost_answers {
    use async_trait::async_trait;
    use immutable_core::{
        Fleet, FleetId, FleetInfo, FleetSpec, HealthReport, Result, Routing, ServiceName, Target,
        TargetId, TrafficRouter,
    };

    #[async_trait]
    impl Fleet for super::LostAnswers {
        async fn launch(&self, spec: &FleetSpec) -> Result<FleetInfo> {
            self.answer("launch", self.cloud.launch(spec).await)
        }
        async fn describe(&self, service: &ServiceName, fleet: &FleetId) -> Result<FleetInfo> {
            self.cloud.describe(service, fleet).await
        }
        async fn list(&self, service: &ServiceName) -> Result<Vec<FleetInfo>> {
            Fleet::list(&self.cloud, service).await
        }
        async fn terminate(&self, service: &ServiceName, fleet: &FleetId) -> Result<()> {
            self.cloud.terminate(service, fleet).await
        }
    }

    #[async_trait]
    impl TrafficRouter for super::LostAnswers {
        async fn attach(&self, fleet: &FleetInfo) -> Result<Target> {
            self.answer("attach", self.cloud.attach(fleet).await)
        }
        async fn targets(&self, service: &ServiceName) -> Result<Vec<Target>> {
            self.cloud.targets(service).await
        }
        async fn health(&self, service: &ServiceName, target: &TargetId) -> Result<HealthReport> {
            self.cloud.health(service, target).await
        }
        async fn routing(&self, service: &ServiceName) -> Result<Routing> {
            self.cloud.routing(service).await
        }
        async fn set_weights(&self, service: &ServiceName, routing: &Routing) -> Result<()> {
            self.cloud.set_weights(service, routing).await
        }
        async fn detach(&self, service: &ServiceName, target: &TargetId) -> Result<()> {
            self.cloud.detach(service, target).await
        }
    }
}

/// A launch and an attach whose answers are lost (the provider acted, the answer timed out)
/// are retried, and each retry finds what the lost attempt made: no second fleet or target.
#[tokio::test(start_paused = true)]
async fn a_retry_after_a_lost_answer_finds_what_the_first_attempt_made() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    let lossy = std::sync::Arc::new(LostAnswers {
        cloud: w.cloud.clone(),
        calls: std::sync::Mutex::default(),
    });
    let engine = builder_on(&w.cloud, w.store.clone())
        .fleet_shared(lossy.clone())
        .router_shared(lossy.clone())
        .build()
        .unwrap();
    let report = engine.deploy(request(2)).await.unwrap();
    assert!(report.succeeded(), "{:?}", report.outcome);
    for call in ["launch", "attach"] {
        assert_eq!(lossy.count(call), 2, "{call}, then its retry");
    }
    w.assert_settled(&w.images[2]);
}

/// A deployment cut right after its launch took effect is resumed by a fresh engine, whose
/// launch finds the fleet the earlier run made (its lost answer aside, the retry of a launch
/// is the same call): one new fleet, settled.
#[tokio::test(start_paused = true)]
async fn a_resumed_deployment_looks_up_what_an_earlier_run_made() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    // Cut right after the launch took effect: the plan's three reads, blue held, the launch.
    w.cloud.crash_after_call(5);
    tokio::select! {
        _ = w.engine.deploy(request(2)) => panic!("not cut off"),
        _ = w.cloud.crashed() => {}
    }
    let last = w.cloud.calls().last().unwrap().op;
    assert_eq!(last, immutable_mock::Op::Launch, "cut after the launch");
    let id = w.store.unfinished(None).await.unwrap()[0].id.clone();
    tokio::time::sleep(settings().lease_ttl).await;
    let lossy = std::sync::Arc::new(LostAnswers {
        cloud: w.cloud.clone(),
        calls: std::sync::Mutex::default(),
    });
    let fresh = builder_on(&w.cloud, w.store.clone())
        .fleet_shared(lossy.clone())
        .router_shared(lossy.clone())
        .build()
        .unwrap();
    assert!(fresh.resume(&id).await.unwrap().succeeded());
    assert_eq!(
        lossy.count("launch"),
        2,
        "the resumed launch, then its retry"
    );
    w.assert_settled(&w.images[2]);
}
