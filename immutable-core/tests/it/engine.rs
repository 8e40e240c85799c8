//! The engine on the mock, in virtual time.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use crate::common::*;
use immutable_core::{
    DeploymentRequest, Error, EventKind, ImageRef, Outcome, Phase, RollbackCause, StateStore, tags,
};
use immutable_mock::{Fault, Op, Timings};

#[tokio::test(start_paused = true)]
async fn first_deployment_then_v1_to_v2() {
    let w = world();
    let first = w.engine.deploy(request(1)).await.unwrap();
    assert_eq!(first.outcome, Outcome::Succeeded);
    assert!(
        first.record.blue.is_none(),
        "a first deployment has no blue fleet"
    );
    w.assert_settled(&w.images[1]);

    // Watch the old fleet during the bake: it must still run while traffic is on v2.
    let cloud = w.cloud.clone();
    let web = w.web.clone();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    w.engine.subscribe(move |e| {
        if let EventKind::PhaseEntered { phase } = e.kind {
            let snap = cloud.snapshot();
            seen2.lock().unwrap().push((
                phase,
                snap.live_fleets(&web).len(),
                snap.routing_of(&web),
            ));
        }
    });
    let second = w.engine.deploy(request(2)).await.unwrap();
    assert_eq!(second.outcome, Outcome::Succeeded);
    w.assert_settled(&w.images[2]);

    let v1_fleet = first.record.green.fleet.clone().unwrap();
    let v1_target = first.record.green.target.clone().unwrap();
    let v2_target = second.record.green.target.clone().unwrap();
    let blue = second.record.blue.clone().unwrap();
    assert_eq!((&blue.fleet, &blue.target), (&v1_fleet, &v1_target));

    let seen = seen.lock().unwrap().clone();
    let (_, live_in_bake, routing_in_bake) = seen
        .iter()
        .find(|(p, ..)| *p == Phase::Bake)
        .unwrap()
        .clone();
    assert_eq!(live_in_bake, 2, "the v1 fleet must stay up during the bake");
    assert_eq!(routing_in_bake.sole_target(), Some(&v2_target));

    let snap = w.cloud.snapshot();
    assert!(
        !snap.fleet(&v1_fleet).unwrap().is_live(),
        "the v1 fleet was not terminated"
    );
    assert!(
        snap.target(&v1_target).is_none(),
        "the v1 target was not detached"
    );

    // Retention keeps the newest two (v3, v2) and the replaced v1; v0 goes. Foreign stays.
    let kept: Vec<_> = snap.images.iter().map(|i| i.id.clone()).collect();
    for (i, want) in [(0, false), (1, true), (2, true), (3, true)] {
        assert_eq!(
            kept.contains(&w.images[i]),
            want,
            "image web-v{i} kept = {}",
            !want
        );
    }
    assert_eq!(snap.retired_images, vec![w.images[0].clone()]);
    let v2 = snap.images.iter().find(|i| i.id == w.images[2]).unwrap();
    assert_eq!(
        v2.labels.get(tags::PROMOTED),
        Some(&second.record.id.to_string())
    );

    // The record was saved at every phase change, in order.
    let record = w.store.load(&second.record.id).await.unwrap();
    let phases: Vec<_> = record.history.iter().map(|h| h.phase).collect();
    assert_eq!(phases, SUCCESS_PHASES);
    assert_eq!(record, second.record);
}

#[tokio::test(start_paused = true)]
async fn unhealthy_v2_rolls_back_at_the_health_timeout() {
    let w = world();
    let first = w.engine.deploy(request(1)).await.unwrap();
    assert!(first.succeeded());
    w.cloud.boot_unhealthy(&w.images[2]);
    w.cloud.clear_calls();
    let started = tokio::time::Instant::now();

    let report = w.engine.deploy(request(2)).await.unwrap();

    match &report.outcome {
        Outcome::RolledBack {
            cause:
                RollbackCause::HealthTimeout {
                    healthy: 0,
                    unhealthy: 3,
                    ..
                },
        } => {}
        other => panic!("expected a rollback, got {other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_secs(300),
        "rolled back before the timeout"
    );
    assert_eq!(
        w.cloud.call_count(Op::SetWeights),
        0,
        "traffic must never leave v1"
    );
    w.assert_settled(&w.images[1]);
    let snap = w.cloud.snapshot();
    let green_fleet = report.record.green.fleet.clone().unwrap();
    let green_target = report.record.green.target.clone().unwrap();
    assert!(
        !snap.fleet(&green_fleet).unwrap().is_live(),
        "the v2 fleet still runs"
    );
    assert!(
        snap.target(&green_target).is_none(),
        "the v2 target is still attached"
    );
    assert_eq!(
        snap.routing_of(&w.web).sole_target(),
        first.record.green.target.as_ref()
    );
    let events = w.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::RollbackStarted { .. }))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::RolledBack { .. }))
    );
}

#[tokio::test(start_paused = true)]
async fn an_instance_dying_during_the_bake_rolls_back_in_one_routing_call() {
    let w = world();
    let first = w.engine.deploy(request(1)).await.unwrap();
    let v1_target = first.record.green.target.clone().unwrap();
    let cloud = w.cloud.clone();
    let killed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let k = killed.clone();
    w.engine.subscribe(move |e| {
        if e.kind == (EventKind::PhaseEntered { phase: Phase::Bake })
            && !k.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            // Two of three green instances die: below min_healthy.
            let snap = cloud.snapshot();
            let green = snap.fleets.iter().rev().find(|f| f.is_live()).unwrap();
            for (id, _) in green.instances.iter().take(2) {
                cloud.kill_instance(id);
            }
        }
    });
    w.cloud.clear_calls();
    let report = w.engine.deploy(request(2)).await.unwrap();
    assert!(
        matches!(report.outcome, Outcome::RolledBack { .. }),
        "{:?}",
        report.outcome
    );
    // One call to shift to v2, one to route back.
    assert_eq!(w.cloud.call_count(Op::SetWeights), 2);
    let snap = w.cloud.snapshot();
    assert_eq!(snap.routing_of(&w.web).sole_target(), Some(&v1_target));
    assert_eq!(snap.live_fleets(&w.web).len(), 1);
    assert_eq!(snap.targets_of(&w.web).len(), 1);
}

/// Every backend call of a v1 -> v2 deployment, failed in turn with a non-retryable error.
#[tokio::test(start_paused = true)]
async fn every_single_call_failing_keeps_the_invariants() {
    // A clean run tells which calls a v1 -> v2 deployment makes.
    let clean = world();
    assert!(
        clean
            .setup_engine
            .deploy(request(1))
            .await
            .unwrap()
            .succeeded()
    );
    clean.cloud.clear_calls();
    assert!(clean.engine.deploy(request(2)).await.unwrap().succeeded());
    let calls = clean.cloud.calls();
    assert!(calls.len() > 20, "suspiciously few calls: {}", calls.len());

    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for (i, call) in calls.iter().enumerate() {
        let nth = calls[..=i].iter().filter(|c| c.op == call.op).count() as u32;
        let w = world();
        assert!(w.setup_engine.deploy(request(1)).await.unwrap().succeeded());
        w.cloud.fail_call(call.op, nth, Fault::Provider);

        let result = w.engine.deploy(request(2)).await;

        let faulted = w.cloud.calls().iter().filter(|c| c.fault.is_some()).count();
        assert_eq!(
            faulted, 1,
            "fault point {i} ({} #{nth}) was not hit",
            call.op
        );
        let kind = match &result {
            Ok(r) if r.succeeded() => {
                w.assert_settled(&w.images[2]);
                "succeeded"
            }
            Ok(_) => {
                w.assert_settled(&w.images[1]);
                "rolled back"
            }
            Err(e) => {
                // Only a planning read may fail the call outright; then nothing was created.
                assert!(!call.op.is_mutation(), "fault on {} gave {e}", call.op);
                w.assert_settled(&w.images[1]);
                "refused"
            }
        };
        *outcomes
            .entry(format!("{} -> {kind}", call.op))
            .or_default() += 1;
    }
    println!("fault points covered: {} ({outcomes:?})", calls.len());
}

#[tokio::test(start_paused = true)]
async fn throttling_on_any_call_is_retried_and_the_deployment_succeeds() {
    for op in Op::ALL {
        let w = world();
        assert!(w.setup_engine.deploy(request(1)).await.unwrap().succeeded());
        w.cloud.clear_calls();
        w.cloud.fail_next(op, 3, Fault::Throttled);
        let report = w.engine.deploy(request(2)).await.unwrap();
        assert!(report.succeeded(), "throttled {op}: {:?}", report.outcome);
        w.assert_settled(&w.images[2]);
        let throttled = w.cloud.calls().iter().filter(|c| c.fault.is_some()).count();
        let retries = w
            .take_events()
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Retrying { .. }))
            .count();
        // Operations the deployment does not use (preview) see no calls at all.
        assert_eq!(retries, throttled, "{op}: retries reported");
        if w.cloud.call_count(op) > 0 {
            assert_eq!(throttled, 3, "{op}: every scripted throttle must be hit");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn transient_errors_beyond_the_retry_budget_roll_back() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    w.cloud.fail_next(Op::Attach, 100, Fault::Transient);
    let report = w.engine.deploy(request(2)).await.unwrap();
    match report.outcome {
        Outcome::RolledBack {
            cause:
                RollbackCause::ProviderError {
                    phase: Phase::Attach,
                    operation,
                    ..
                },
        } => assert_eq!(operation, "attaching the new fleet"),
        other => panic!("{other:?}"),
    }
    // The default policy makes 8 attempts, then gives up.
    assert_eq!(w.cloud.call_count(Op::Attach), 9); // 1 for v1, 8 for v2
    w.cloud.clear_faults();
    w.assert_settled(&w.images[1]);
}

#[tokio::test(start_paused = true)]
async fn a_second_concurrent_deploy_is_locked_at_once() {
    let w = world();
    let engine = w.engine.clone();
    let mut events = w.engine.events();
    let first = tokio::spawn(async move { engine.deploy(request(1)).await });
    // Wait until the first deployment has launched its fleet.
    loop {
        let e = events.recv().await.unwrap();
        if matches!(e.kind, EventKind::FleetLaunched { .. }) {
            break;
        }
    }
    let before = tokio::time::Instant::now();
    let second = w.engine.deploy(request(2)).await;
    match second {
        Err(Error::Locked { service, .. }) => assert_eq!(service.as_str(), "web"),
        other => panic!("expected Locked, got {other:?}"),
    }
    assert_eq!(
        tokio::time::Instant::now(),
        before,
        "Locked must come at once"
    );
    assert!(first.await.unwrap().unwrap().succeeded());
    // Once the first is done, the service is free again.
    assert!(w.engine.deploy(request(2)).await.unwrap().succeeded());
}

#[tokio::test(start_paused = true)]
async fn a_thirty_minute_bake_runs_in_virtual_time() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    let bake = Duration::from_secs(30 * 60);
    let real = std::time::Instant::now();
    let virtual_start = tokio::time::Instant::now();
    let report = w.engine.deploy(request(2).bake_time(bake)).await.unwrap();
    assert!(report.succeeded());
    let elapsed = virtual_start.elapsed();
    assert!(
        elapsed >= bake,
        "virtual duration {elapsed:?} is shorter than the bake"
    );
    let h = &report.record.history;
    let at = |p: Phase| h.iter().find(|e| e.phase == p).unwrap().at;
    assert!(at(Phase::Retire).duration_since(at(Phase::Bake)).unwrap() >= bake);
    println!(
        "30-minute bake: {elapsed:?} virtual, {:?} real",
        real.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_deployment_takes_its_waits_plus_at_most_a_poll_per_wait() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    let t = Timings::default();
    let poll = settings().poll_interval;
    let start = tokio::time::Instant::now();
    let report = w.engine.deploy(request(2)).await.unwrap();
    assert!(report.succeeded());
    let elapsed = start.elapsed();
    let unavoidable = t.boot + t.health_check + Duration::from_secs(60) + t.drain;
    assert!(elapsed >= unavoidable, "{elapsed:?} < {unavoidable:?}");
    // Two polled waits (running, healthy) can each overshoot by one poll interval.
    assert!(
        elapsed <= unavoidable + 2 * poll,
        "{elapsed:?} > {unavoidable:?} + 2 polls"
    );
}

#[tokio::test(start_paused = true)]
async fn bad_input_is_rejected_before_anything_is_created() {
    let w = world();
    let cases: [(DeploymentRequest, &str); 6] = [
        (request(1).capacity(0), "capacity"),
        (request(1).capacity(2).min_healthy(3), "min_healthy"),
        (request(1).min_healthy(0), "min_healthy"),
        (
            DeploymentRequest::new("web", ImageRef::name("web-v9")),
            "image",
        ),
        (
            DeploymentRequest::new("", ImageRef::name("web-v1")),
            "service",
        ),
        (DeploymentRequest::new("web", ImageRef::name("")), "image"),
    ];
    for (req, field) in cases {
        match w.engine.deploy(req.clone()).await {
            Err(Error::InvalidInput {
                field: f, reason, ..
            }) => {
                assert_eq!(f, field, "{req:?}: {reason}")
            }
            other => panic!("{req:?}: expected InvalidInput on {field}, got {other:?}"),
        }
    }
    assert!(
        w.cloud.calls().iter().all(|c| !c.op.is_mutation()),
        "something was changed"
    );
    assert!(w.cloud.snapshot().live_fleets(&w.web).is_empty());
    assert!(
        w.store.list(None).await.unwrap().is_empty(),
        "a record was created"
    );
    // The lease was released: a valid deployment goes through.
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
}

#[tokio::test(start_paused = true)]
async fn a_failed_first_deployment_leaves_nothing() {
    let w = world();
    w.cloud.boot_unhealthy(&w.images[1]);
    let report = w.engine.deploy(request(1)).await.unwrap();
    assert!(matches!(report.outcome, Outcome::RolledBack { .. }));
    let snap = w.cloud.snapshot();
    assert!(snap.live_fleets(&w.web).is_empty());
    assert!(snap.targets_of(&w.web).is_empty());
    assert!(snap.routing_of(&w.web).is_empty());
    w.assert_foreign_untouched(&snap);
}

#[tokio::test(start_paused = true)]
async fn the_lease_is_renewed_through_a_long_bake() {
    let w = world();
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    let engine = w.engine.clone();
    let long = tokio::spawn(async move {
        engine
            .deploy(request(2).bake_time(Duration::from_secs(3600)))
            .await
    });
    // Far past the 60 s lease time-to-live, in the middle of the bake.
    tokio::time::sleep(Duration::from_secs(1800)).await;
    assert!(matches!(
        w.engine.deploy(request(3)).await,
        Err(Error::Locked { .. })
    ));
    assert!(long.await.unwrap().unwrap().succeeded());
}

#[tokio::test(start_paused = true)]
async fn deploys_through_a_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let w = world();
    let store = immutable_core::FileStore::open(dir.path()).unwrap();
    let engine = builder_on(&w.cloud, store.clone()).build().unwrap();
    let first = engine.deploy(request(1)).await.unwrap();
    let second = engine.deploy(request(2)).await.unwrap();
    assert!(first.succeeded() && second.succeeded());
    let records = store.list(None).await.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1], second.record);
    w.assert_settled(&w.images[2]);
}
