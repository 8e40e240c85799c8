//! Random fault schedules over every strategy preset: throttling, transient errors, instance
//! deaths, unhealthy boots, and a crash followed by a resume. I1 to I6 hold in every case.
//!
//! The seed is fixed, so CI runs the same cases every time; set `PROPTEST_CASES` for more.
#![allow(clippy::print_stdout)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use immutable_core::{Engine, Error, EventKind, ImageId, Phase, ServiceName, Steps};
use immutable_mock::{Fault, MockCloud, Op, Snapshot, Timings};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

const OPS: [Op; 12] = [
    Op::ResolveImage,
    Op::ListImages,
    Op::LabelImage,
    Op::Launch,
    Op::Describe,
    Op::ListFleets,
    Op::Terminate,
    Op::Attach,
    Op::Health,
    Op::Routing,
    Op::SetWeights,
    Op::Detach,
];

#[derive(Debug, Clone)]
struct Scenario {
    preset: usize,
    /// (operation, retryable fault kind, calls to let through first, calls to fail)
    faults: Vec<(usize, bool, u32, u32)>,
    /// (virtual seconds after the start, which new instance dies)
    deaths: Vec<(u64, usize)>,
    unhealthy_boot: bool,
    crash_after_call: Option<usize>,
}

fn scenario() -> impl proptest::strategy::Strategy<Value = Scenario> {
    (
        0..3usize,
        proptest::collection::vec((0..OPS.len(), any::<bool>(), 0..6u32, 1..4u32), 0..4),
        proptest::collection::vec((0..900u64, 0..3usize), 0..3),
        proptest::bool::weighted(0.2),
        proptest::option::weighted(0.4, 1..120usize),
    )
        .prop_map(
            |(preset, faults, deaths, unhealthy_boot, crash_after_call)| Scenario {
                preset,
                faults,
                deaths,
                unhealthy_boot,
                crash_after_call,
            },
        )
}

fn preset(i: usize) -> Steps {
    let pause = Duration::from_secs(120);
    match i {
        0 => Steps::blue_green(),
        1 => Steps::canary([10, 50, 100], pause),
        _ => Steps::linear(25, pause),
    }
}

/// What must match between a run with a crash and one without.
#[derive(Debug, PartialEq, Eq)]
struct End {
    serving_image: ImageId,
    live_fleets: usize,
    targets: usize,
    outcome_succeeded: bool,
}

fn engine(cloud: &MockCloud, store: &immutable_core::InMemoryStore, keep: usize) -> Engine {
    Engine::builder()
        .images(cloud.clone())
        .fleet(cloud.clone())
        .router(cloud.clone())
        .store(store.clone())
        .settings(settings().with_keep_images(keep))
        .build()
        .unwrap()
}

/// I1 when traffic moves (every target given traffic has `MIN_HEALTHY` healthy instances) and
/// I2 at every event (the targets taking traffic exist and their fleets run).
fn watch(
    engine: &Engine,
    cloud: &MockCloud,
    web: &ServiceName,
    violations: &Arc<Mutex<Vec<String>>>,
) {
    let (cloud, web, violations) = (cloud.clone(), web.clone(), violations.clone());
    engine.subscribe(move |e| {
        let snap = cloud.snapshot();
        for (target, weight) in snap.routing_of(&web).weights() {
            let problem = match snap.target(target) {
                None => Some(format!("I2: {target} takes {weight}% but was detached")),
                Some(t) if snap.fleet(&t.fleet).is_none_or(|f| !f.is_live()) => Some(format!(
                    "I2: {target} takes {weight}% but its fleet is gone"
                )),
                Some(t)
                    if matches!(e.kind, EventKind::WeightsSet { .. })
                        && t.healthy < MIN_HEALTHY as usize =>
                {
                    Some(format!(
                        "I1: traffic moved to {target} with {} healthy",
                        t.healthy
                    ))
                }
                _ => None,
            };
            if let Some(p) = problem {
                violations
                    .lock()
                    .unwrap()
                    .push(format!("after {}: {p}", e.kind));
            }
        }
    });
}

async fn run(s: &Scenario, with_crash: bool) -> End {
    let Seeded {
        cloud,
        images,
        foreign_image,
        foreign_fleet,
    } = seeded_cloud(Timings::default());
    let store = immutable_core::InMemoryStore::new();
    let web = ServiceName::new("web").unwrap();
    assert!(
        engine(&cloud, &store, 100)
            .deploy(request(1))
            .await
            .unwrap()
            .succeeded()
    );
    let v1_fleet = cloud.snapshot().live_fleets(&web)[0].id.clone();

    cloud.clear_calls();
    for (op, retryable, skip, n) in &s.faults {
        let fault = if *retryable {
            Fault::Throttled
        } else {
            Fault::Transient
        };
        for k in 0..*n {
            cloud.fail_call(OPS[*op], skip + 1 + k, fault);
        }
    }
    if s.unhealthy_boot {
        cloud.boot_unhealthy(&images[2]);
    }
    // Instance deaths strike the new fleet only, at their virtual times.
    for (at, which) in s.deaths.clone() {
        let cloud = cloud.clone();
        let web = web.clone();
        let v1 = v1_fleet.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(at)).await;
            let snap = cloud.snapshot();
            if let Some(f) = snap.live_fleets(&web).into_iter().find(|f| f.id != v1)
                && let Some((id, _)) = f.instances.get(which)
            {
                cloud.kill_instance(id);
            }
        });
    }
    let violations = Arc::new(Mutex::new(Vec::new()));
    let first = engine(&cloud, &store, 2);
    watch(&first, &cloud, &web, &violations);
    let crash = s.crash_after_call.filter(|_| with_crash);
    if let Some(n) = crash {
        cloud.crash_after_call(n);
    }
    let request = request(2).strategy(preset(s.preset));

    // I5: while it runs, a second deployment of the service is refused at once.
    let concurrent = {
        let engine = first.clone();
        let mut events = first.events();
        async move {
            while let Some(e) = events.recv().await {
                if e.kind
                    == (EventKind::PhaseEntered {
                        phase: Phase::Provision,
                    })
                {
                    return Some(engine.deploy(self::request(3)).await);
                }
            }
            None
        }
    };
    let (outcome, second_try) = tokio::select! {
        (r, c) = async { tokio::join!(first.deploy(request.clone()), concurrent) } => (Some(r), c),
        _ = cloud.crashed() => (None, None),
    };
    if let Some(r) = &second_try {
        assert!(matches!(r, Err(Error::Locked { .. })), "I5: {r:?}");
    }
    drop(first);

    let succeeded = match outcome {
        Some(r) => r.unwrap().succeeded(),
        None => {
            let second = engine(&cloud, &store, 2);
            watch(&second, &cloud, &web, &violations);
            loop {
                let records = immutable_core::StateStore::list(&store, Some(&web))
                    .await
                    .unwrap();
                let latest = records.iter().max_by_key(|r| r.created_at).unwrap();
                let result = if records.len() == 1 {
                    // Cut off before the record was written: deploy again.
                    second.deploy(request.clone()).await
                } else {
                    second.resume(&latest.id).await
                };
                match result {
                    Err(Error::Locked { .. }) => tokio::time::sleep(settings().lease_ttl).await,
                    r => break r.unwrap().succeeded(),
                }
            }
        }
    };
    let snap: Snapshot = cloud.snapshot();
    let v = violations.lock().unwrap().clone();
    assert!(v.is_empty(), "{s:?}: {v:#?}");
    // I3: one fleet serves, alone, and nothing else of the service remains.
    let live = snap.live_fleets(&web);
    assert_eq!(live.len(), 1, "{s:?}: I3: live fleets {live:#?}");
    let targets = snap.targets_of(&web);
    assert_eq!(targets.len(), 1, "{s:?}: I3: targets {targets:#?}");
    assert_eq!(targets[0].fleet, live[0].id, "{s:?}: I3");
    assert_eq!(
        snap.routing_of(&web).sole_target(),
        Some(&targets[0].id),
        "{s:?}: I3"
    );
    let want = if succeeded { &images[2] } else { &images[1] };
    assert_eq!(&live[0].image, want, "{s:?}: the wrong image serves");
    // I6.
    assert_eq!(
        snap.fleet(&foreign_fleet).unwrap().live_instances(),
        2,
        "{s:?}: I6"
    );
    assert!(
        snap.images.iter().any(|i| i.id == foreign_image),
        "{s:?}: I6"
    );
    End {
        serving_image: live[0].image.clone(),
        live_fleets: live.len(),
        targets: targets.len(),
        outcome_succeeded: succeeded,
    }
}

#[test]
fn random_fault_schedules_keep_the_invariants() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96);
    let mut runner = TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(0x013a_7b1e),
        failure_persistence: None,
        ..Config::default()
    });
    let ran = Arc::new(Mutex::new((0usize, 0usize, 0usize)));
    let counter = ran.clone();
    runner
        .run(&scenario(), move |s| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap();
            rt.block_on(async {
                let crashed = run(&s, true).await;
                if s.crash_after_call.is_some() && s.deaths.is_empty() {
                    // I4: the crash and resume end where an uninterrupted run ends.
                    let uninterrupted = run(&s, false).await;
                    assert_eq!(crashed, uninterrupted, "{s:?}: I4");
                }
            });
            let mut c = counter.lock().unwrap();
            c.0 += 1;
            c.1 += usize::from(s.crash_after_call.is_some());
            c.2 += s.faults.len() + s.deaths.len() + usize::from(s.unhealthy_boot);
            Ok(())
        })
        .unwrap();
    let (n, crashes, faults) = *ran.lock().unwrap();
    assert_eq!(n, cases as usize);
    println!(
        "property cases run: {n} ({crashes} with a crash and resume, {faults} scripted faults in all)"
    );
}
