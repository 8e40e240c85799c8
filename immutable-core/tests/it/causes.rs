//! Why a deployment rolled back is a typed cause, the same in the outcome, the events and the
//! stored record; capabilities are not errors (preview, retention); limits are checked first.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use async_trait::async_trait;
use immutable_core::{
    DeploymentRequest, Engine, Error, EventKind, Outcome, Phase, Progress, Report, RetryPolicy,
    RollbackCause, Settings, StateStore, Step, Strategy, StrategySpec, limits,
};
use immutable_mock::{Fault, Op, Timings};

/// The cause of a rolled-back deployment, checked to be the same in the outcome, in the
/// RollbackStarted and RolledBack events and in the stored record; and v1 serves again.
async fn cause_of(w: &World, report: &Report) -> RollbackCause {
    let Outcome::RolledBack { cause } = &report.outcome else {
        panic!("expected a rollback, got {}", report.outcome)
    };
    let events = w.take_events();
    let started: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::RollbackStarted { cause } => Some(cause.clone()),
            _ => None,
        })
        .collect();
    let ended: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::RolledBack { cause } => Some(cause.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(started, std::slice::from_ref(cause));
    assert_eq!(ended, std::slice::from_ref(cause));
    let stored = w.store.load(&report.record.id).await.unwrap();
    assert_eq!(stored.rollback_cause.as_ref(), Some(cause));
    cause.clone()
}

async fn cause_after_v1(w: &World, report: &Report) -> RollbackCause {
    let cause = cause_of(w, report).await;
    w.assert_settled(&w.images[1]);
    cause
}

async fn with_v1(w: &World) {
    assert!(w.engine.deploy(request(1)).await.unwrap().succeeded());
    w.take_events();
}

#[tokio::test(start_paused = true)]
async fn a_launch_that_never_runs_is_a_launch_timeout() {
    let mut slow = Timings::default();
    slow.boot = Duration::from_secs(600);
    let w = world_with(
        settings().with_launch_timeout(Duration::from_secs(60)),
        slow,
    );
    let report = w.engine.deploy(request(1)).await.unwrap();
    assert!(w.cloud.snapshot().live_fleets(&w.web).is_empty());
    match cause_of(&w, &report).await {
        RollbackCause::LaunchTimeout {
            running: 0,
            capacity: CAPACITY,
            after,
        } => assert_eq!(after, Duration::from_secs(60)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn instances_dying_at_boot_are_too_few_running() {
    let w = world();
    with_v1(&w).await;
    let cloud = w.cloud.clone();
    w.engine.subscribe(move |e| {
        if let EventKind::FleetLaunched { fleet, .. } = &e.kind {
            let snap = cloud.snapshot();
            for (id, _) in snap.fleet(fleet).unwrap().instances.iter().take(2) {
                cloud.kill_instance(id);
            }
        }
    });
    let report = w.engine.deploy(request(2)).await.unwrap();
    assert_eq!(
        cause_after_v1(&w, &report).await,
        RollbackCause::TooFewRunning {
            running: 1,
            capacity: CAPACITY,
            needed: MIN_HEALTHY
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_fleet_dying_in_a_pause_is_new_fleet_unhealthy() {
    let w = world();
    with_v1(&w).await;
    let cloud = w.cloud.clone();
    w.engine.subscribe(move |e| {
        if let EventKind::WeightsSet { routing } = &e.kind
            && routing.weights().values().any(|w| *w == 10)
        {
            let snap = cloud.snapshot();
            let green = snap.fleets.iter().rev().find(|f| f.is_live()).unwrap();
            for (id, _) in green.instances.iter().take(2) {
                cloud.kill_instance(id);
            }
        }
    });
    let steps = immutable_core::Steps::canary([10, 100], Duration::from_secs(600));
    let report = w.engine.deploy(request(2).strategy(steps)).await.unwrap();
    match cause_after_v1(&w, &report).await {
        RollbackCause::NewFleetUnhealthy {
            healthy: 1,
            needed: MIN_HEALTHY,
            phase: Phase::Rollout,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
}

/// A strategy that does what it is told, once per step index.
#[derive(Debug)]
struct Scripted(Mutex<Vec<immutable_core::Result<Option<Step>>>>);

#[async_trait]
impl Strategy for Scripted {
    async fn next_step(&self, _: &Progress<'_>) -> immutable_core::Result<Option<Step>> {
        self.0.lock().unwrap().remove(0)
    }
}

async fn scripted(steps: Vec<immutable_core::Result<Option<Step>>>) -> RollbackCause {
    let w = world();
    with_v1(&w).await;
    let engine = w
        .builder()
        .strategy("scripted", Scripted(Mutex::new(steps)))
        .build()
        .unwrap();
    let events = Arc::clone(&w.events);
    engine.subscribe(move |e| events.lock().unwrap().push(e.clone()));
    let request = request(2).strategy(StrategySpec::named("scripted"));
    let report = engine.deploy(request).await.unwrap();
    cause_after_v1(&w, &report).await
}

#[tokio::test(start_paused = true)]
async fn strategies_that_fail_stop_short_or_name_a_missing_check_have_their_own_causes() {
    assert_eq!(
        scripted(vec![Err(Error::provider("budget service down"))]).await,
        RollbackCause::StrategyFailed {
            error: "provider error: budget service down".into()
        }
    );
    assert_eq!(
        scripted(vec![Ok(Some(Step::shift(50))), Ok(None)]).await,
        RollbackCause::StrategyIncomplete { weight: 50 }
    );
    assert_eq!(
        scripted(vec![Ok(Some(Step::checks(["nope"])))]).await,
        RollbackCause::CheckNotRegistered {
            check: "nope".into()
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_preview_failing_with_a_provider_error_rolls_back() {
    let w = world();
    with_v1(&w).await;
    w.cloud.clear_calls();
    // A misconfigured preview listener: any error but NotSupported.
    w.cloud.fail_next(Op::Preview, 100, Fault::Provider);
    let report = w.engine.deploy(request(2)).await.unwrap();
    match cause_after_v1(&w, &report).await {
        RollbackCause::ProviderError {
            phase: Phase::Rollout,
            operation,
            error,
        } => {
            assert_eq!(operation, "routing the preview");
            assert!(error.contains("scripted fault on Preview"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        w.cloud.call_count(Op::SetWeights),
        0,
        "no traffic moved after a failed preview"
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_preview_entry_point_the_step_is_skipped_with_not_supported_only() {
    let w = world();
    with_v1(&w).await;
    w.cloud.set_preview_supported(false);
    let report = w.engine.deploy(request(2)).await.unwrap();
    assert!(report.succeeded(), "{}", report.outcome);
    let skipped: Vec<_> = w
        .take_events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::PreviewSkipped { reason } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].contains("no preview entry point"), "{skipped:?}");
    assert!(!report.record.previewed);
    w.assert_settled(&w.images[2]);
}

#[tokio::test(start_paused = true)]
async fn retention_keeps_going_past_an_image_in_use() {
    let w = world();
    // v2 first (v0 and v1 exist, older), then v3: retention (keep 2) looks at v1, then v0.
    assert!(w.setup_engine.deploy(request(2)).await.unwrap().succeeded());
    // Another team runs v1 outside the SDK's fleets: retiring it is refused as in use.
    w.cloud.add_foreign_fleet(&w.images[1], 1);
    let report = w.engine.deploy(request(3)).await.unwrap();
    assert!(report.succeeded(), "{}", report.outcome);
    assert_eq!(report.record.retired.images, [w.images[0].clone()]);
    let snap = w.cloud.snapshot();
    assert!(snap.retired_images.contains(&w.images[0]));
    assert!(snap.images.iter().any(|i| i.id == w.images[1]));
}

#[tokio::test(start_paused = true)]
async fn retention_stops_on_any_other_error_and_resumes() {
    let w = world();
    assert!(w.setup_engine.deploy(request(1)).await.unwrap().succeeded());
    w.cloud.fail_next(Op::RetireImage, 100, Fault::Provider);
    match w.engine.deploy(request(2)).await {
        Err(Error::Provider { message, .. }) => assert!(message.contains("RetireImage")),
        other => panic!("expected the retire error, got {other:?}"),
    }
    let open = w.store.unfinished(None).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].phase, Phase::Retire, "left at Retire, resumable");
    w.cloud.clear_faults();
    tokio::time::sleep(settings().lease_ttl).await;
    let report = w.engine.resume(&open[0].id).await.unwrap();
    assert!(report.succeeded());
    assert_eq!(report.record.retired.images, [w.images[0].clone()]);
}

#[tokio::test(start_paused = true)]
async fn every_out_of_bounds_duration_or_count_in_a_request_is_refused_with_no_call() {
    let w = world();
    let day = Duration::from_secs(24 * 3600);
    let pause = |d| immutable_core::Steps::canary([50, 100], d);
    let approval = |d| {
        immutable_core::Steps::blue_green().with_approval(d, immutable_core::OnTimeout::RollBack)
    };
    let cases: Vec<(DeploymentRequest, &str)> = vec![
        (request(1).health_timeout(Duration::ZERO), "health_timeout"),
        (request(1).health_timeout(2 * day), "health_timeout"),
        (request(1).bake_time(8 * day), "bake_time"),
        (
            request(1).capacity(limits::MAX_CAPACITY + 1).min_healthy(1),
            "capacity",
        ),
        (
            request(1).strategy(pause(Duration::ZERO)),
            "strategy.steps[2].duration",
        ),
        (
            request(1).strategy(pause(2 * day)),
            "strategy.steps[2].duration",
        ),
        (
            request(1).strategy(approval(8 * day)),
            "strategy.steps[1].timeout",
        ),
    ];
    for (req, field) in cases {
        match w.engine.deploy(req.clone()).await {
            Err(Error::InvalidInput {
                field: f, reason, ..
            }) => {
                assert_eq!(f, field, "{reason}")
            }
            other => panic!("{field}: expected InvalidInput, got {other:?}"),
        }
    }
    assert!(w.cloud.calls().is_empty(), "{:?}", w.cloud.calls());
    assert!(w.store.list(None).await.unwrap().is_empty());
}

#[test]
fn every_out_of_bounds_setting_is_refused_when_the_engine_is_built() {
    let hour = Duration::from_secs(3600);
    let mut zero_attempts = RetryPolicy::default();
    zero_attempts.max_attempts = 0;
    let cases: Vec<(Settings, &str)> = vec![
        (
            settings().with_poll_interval(Duration::ZERO),
            "poll_interval",
        ),
        (settings().with_poll_interval(hour), "poll_interval"),
        (
            settings().with_launch_timeout(Duration::ZERO),
            "launch_timeout",
        ),
        (settings().with_launch_timeout(48 * hour), "launch_timeout"),
        (
            settings().with_lease_ttl(Duration::from_secs(1)),
            "lease_ttl",
        ),
        (settings().with_lease_ttl(2 * hour), "lease_ttl"),
        (settings().with_keep_images(0), "keep_images"),
        (
            settings().with_keep_images(limits::MAX_KEEP_IMAGES + 1),
            "keep_images",
        ),
        (settings().with_retry(zero_attempts), "retry.max_attempts"),
        (
            settings().with_cleanup_retry(RetryPolicy::default().with_backoff(hour, hour)),
            "cleanup_retry.max_backoff",
        ),
    ];
    let cloud = immutable_mock::MockCloud::new();
    for (settings, field) in cases {
        let built = Engine::builder()
            .backends(cloud.backends())
            .settings(settings)
            .store(immutable_core::InMemoryStore::new())
            .build();
        match built {
            Err(Error::InvalidInput { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected InvalidInput, got {other:?}"),
        }
    }
    assert!(cloud.calls().is_empty());
}
