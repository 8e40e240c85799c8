//! Random fault schedules over every strategy preset: throttling, transient errors, instance
//! deaths, unhealthy boots, old-fleet deaths during the bake, operator rollbacks at random
//! times, and a crash followed by a resume. I1 to I6 hold in every case.
//!
//! The seed is fixed, so CI runs the same cases every time; set `PROPTEST_CASES` for more.
#![allow(clippy::print_stdout)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use immutable_core::{
    DeploymentRequest, Engine, Error, EventKind, FleetId, ImageId, OnBlueLost, Phase, Report,
    RollbackReport, ServiceName, Steps,
};
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
    /// (virtual seconds into the bake, how many of the old fleet's 3 instances die): with 2,
    /// the old fleet drops below `MIN_HEALTHY` and the fast-rollback window is lost.
    blue_deaths: Option<(u64, usize)>,
    /// Ten seconds after the old fleet's deaths, all but one instance of the new one die too.
    green_drop_after: bool,
    /// Retire the old fleet at once when it is lost, rather than bake on.
    retire_lost_blue: bool,
    /// An operator asks `Engine::rollback` this many virtual seconds after the start.
    operator_rollback: Option<u64>,
    crash_after_call: Option<usize>,
}

fn scenario() -> impl proptest::strategy::Strategy<Value = Scenario> {
    (
        0..3usize,
        proptest::collection::vec((0..OPS.len(), any::<bool>(), 0..6u32, 1..4u32), 0..4),
        proptest::collection::vec((0..900u64, 0..3usize), 0..3),
        proptest::bool::weighted(0.2),
        proptest::option::weighted(0.3, (0..70u64, 1..3usize)),
        (any::<bool>(), proptest::bool::weighted(0.3)),
        proptest::option::weighted(0.3, 0..1000u64),
        proptest::option::weighted(0.4, 1..120usize),
    )
        .prop_map(
            |(
                preset,
                faults,
                deaths,
                unhealthy_boot,
                blue_deaths,
                (retire_lost_blue, green_drop_after),
                operator_rollback,
                crash,
            )| Scenario {
                preset,
                faults,
                deaths,
                unhealthy_boot,
                blue_deaths,
                green_drop_after,
                retire_lost_blue,
                operator_rollback,
                // A crash stops the process that would answer the operator and watch the
                // bake; those scenarios are kept apart.
                crash_after_call: crash
                    .filter(|_| operator_rollback.is_none() && blue_deaths.is_none()),
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
    phase: Phase,
}

fn engine(cloud: &MockCloud, store: &immutable_core::InMemoryStore, keep: usize) -> Engine {
    builder_on(cloud, store.clone())
        .settings(settings().with_keep_images(keep))
        .build()
        .unwrap()
}

/// Scripts the scenario's faults, unhealthy boot and instance deaths of the new fleet.
fn script(s: &Scenario, cloud: &MockCloud, v2: &ImageId) {
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
        cloud.boot_unhealthy(v2);
    }
    // Instance deaths strike the v2 fleet only, at their virtual times.
    for (at, which) in s.deaths.clone() {
        let (cloud, v2) = (cloud.clone(), v2.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(at)).await;
            let snap = cloud.snapshot();
            // Never the last live one: the world killing a whole serving fleet would break I2
            // with no fault of the SDK's.
            if let Some(f) = snap.fleets.iter().find(|f| f.image == v2 && f.is_live())
                && f.live_instances() > 1
                && let Some((id, _)) = f.instances.get(which)
            {
                cloud.kill_instance(id);
            }
        });
    }
}

/// Kills `n` instances of the old fleet `at` seconds into the bake, then, if `then_green`, all
/// but one of the new fleet's ten seconds later.
fn kill_blue_in_bake(
    engine: &Engine,
    cloud: &MockCloud,
    (blue, v2): (&FleetId, &ImageId),
    (at, n): (u64, usize),
    then_green: bool,
) {
    let mut events = engine.events();
    let (cloud, blue, v2) = (cloud.clone(), blue.clone(), v2.clone());
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            if e.kind == (EventKind::PhaseEntered { phase: Phase::Bake }) {
                tokio::time::sleep(Duration::from_secs(at)).await;
                let snap = cloud.snapshot();
                for (id, _) in snap.fleet(&blue).unwrap().instances.iter().take(n) {
                    cloud.kill_instance(id);
                }
                if then_green {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    let snap = cloud.snapshot();
                    // All but one: below MIN_HEALTHY, yet the fleet lives (the world, not the
                    // SDK, would otherwise break I2).
                    if let Some(f) = snap.fleets.iter().find(|f| f.image == v2 && f.is_live()) {
                        let live: Vec<_> =
                            f.instances.iter().filter(|(_, st)| st.is_live()).collect();
                        for (id, _) in live.iter().skip(1) {
                            cloud.kill_instance(id);
                        }
                    }
                }
                return;
            }
        }
    });
}

/// Runs the v2 deployment (and the operator's rollback, if any) to its end; returns the last
/// deployment's report.
async fn deploy_v2(
    s: &Scenario,
    first: &Engine,
    request: &DeploymentRequest,
    cloud: &MockCloud,
) -> Option<Report> {
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
    let operator = async {
        let at = s.operator_rollback?;
        tokio::time::sleep(Duration::from_secs(at)).await;
        Some(first.rollback("web").await)
    };
    let (outcome, second_try, rollback) = tokio::select! {
        r = async { tokio::join!(first.deploy(request.clone()), concurrent, operator) } => {
            (Some(r.0), r.1, r.2)
        }
        _ = cloud.crashed() => (None, None, None),
    };
    if let Some(r) = &second_try {
        assert!(matches!(r, Err(Error::Locked { .. })), "I5: {r:?}");
    }
    let report = outcome.map(|r| r.unwrap())?;
    Some(match rollback {
        Some(Ok(RollbackReport::Redeployed(again))) => again,
        Some(Ok(RollbackReport::RoutedBack(r) | RollbackReport::Stopped(r))) => {
            assert_eq!(r.record.id, report.record.id, "{s:?}");
            report
        }
        // Refused: the old fleet was lost, nothing ran yet, or there was nothing before.
        Some(Err(Error::BlueUnhealthy {
            healthy, needed, ..
        })) => {
            assert!(healthy < needed, "{s:?}");
            report
        }
        Some(Err(Error::NothingToRollBack { .. })) | None => report,
        Some(other) => panic!("{s:?}: operator rollback: {other:?}"),
    })
}

/// Resumes, on a fresh engine, what a crash cut off.
async fn resume_after_crash(
    second: &Engine,
    store: &immutable_core::InMemoryStore,
    request: &DeploymentRequest,
) -> Report {
    let web = ServiceName::new("web").unwrap();
    loop {
        let records = immutable_core::StateStore::list(store, Some(&web))
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
            r => break r.unwrap(),
        }
    }
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
    script(s, &cloud, &images[2]);
    let first = engine(&cloud, &store, 2);
    let violations = watch(&first, &cloud, &web);
    if let Some(blue_deaths) = s.blue_deaths {
        let fleets = (&v1_fleet, &images[2]);
        kill_blue_in_bake(&first, &cloud, fleets, blue_deaths, s.green_drop_after);
    }
    if let Some(n) = s.crash_after_call.filter(|_| with_crash) {
        cloud.crash_after_call(n);
    }
    let on_lost = if s.retire_lost_blue {
        OnBlueLost::RetireBlue
    } else {
        OnBlueLost::KeepBaking
    };
    let request = request(2).strategy(preset(s.preset)).on_blue_lost(on_lost);
    let report = match deploy_v2(s, &first, &request, &cloud).await {
        Some(report) => report,
        None => {
            drop(first);
            let second = engine(&cloud, &store, 2);
            let seen = watch(&second, &cloud, &web);
            let report = resume_after_crash(&second, &store, &request).await;
            violations
                .lock()
                .unwrap()
                .extend(seen.lock().unwrap().clone());
            report
        }
    };
    let v = violations.lock().unwrap().clone();
    assert!(v.is_empty(), "{s:?}: {v:#?}");
    let end = settled(s, &cloud.snapshot(), &web, &report);
    // I6.
    let snap = cloud.snapshot();
    assert_eq!(
        snap.fleet(&foreign_fleet).unwrap().live_instances(),
        2,
        "{s:?}: I6"
    );
    assert!(
        snap.images.iter().any(|i| i.id == foreign_image),
        "{s:?}: I6"
    );
    end
}

/// I3 for the end the last deployment reached: done or rolled back, exactly one fleet serves
/// alone; stopped, traffic stays on the new fleet and the old one (lost) is kept.
fn settled(s: &Scenario, snap: &Snapshot, web: &ServiceName, report: &Report) -> End {
    let rec = &report.record;
    let live = snap.live_fleets(web);
    let targets = snap.targets_of(web);
    let routing = snap.routing_of(web);
    let serving = routing.sole_target().expect("one target serves");
    let serving_fleet = &targets.iter().find(|t| &t.id == serving).unwrap().fleet;
    let serving_image = snap.fleet(serving_fleet).unwrap().image.clone();
    let want = match rec.phase {
        Phase::Done | Phase::Stopped => rec.image.id.clone(),
        Phase::RolledBack => rec.blue.as_ref().unwrap().image.clone(),
        other => panic!("{s:?}: ended in phase {other}"),
    };
    assert_eq!(serving_image, want, "{s:?}: the wrong image serves");
    if rec.phase == Phase::Stopped {
        let stranded = rec.stranded.as_ref().expect("stopped records say why");
        assert!(stranded.blue_healthy < stranded.needed as usize, "{s:?}");
        assert_eq!(Some(serving), rec.green.target.as_ref(), "{s:?}");
        assert_eq!(live.len(), 2, "{s:?}: stopped keeps both fleets: {live:#?}");
        assert_eq!(targets.len(), 2, "{s:?}: stopped keeps both targets");
    } else {
        assert_eq!(live.len(), 1, "{s:?}: I3: live fleets {live:#?}");
        assert_eq!(targets.len(), 1, "{s:?}: I3: targets {targets:#?}");
        assert_eq!(&targets[0].fleet, &live[0].id, "{s:?}: I3");
    }
    End {
        serving_image,
        live_fleets: live.len(),
        targets: targets.len(),
        phase: rec.phase,
    }
}

#[test]
fn random_fault_schedules_keep_the_invariants() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut runner = TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(0x013a_7b1e),
        failure_persistence: None,
        ..Config::default()
    });
    let ran = Arc::new(Mutex::new((0usize, 0usize, 0usize, 0usize, 0usize)));
    let ends = Arc::new(Mutex::new(
        std::collections::BTreeMap::<String, usize>::new(),
    ));
    let (counter, ended) = (ran.clone(), ends.clone());
    runner
        .run(&scenario(), move |s| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap();
            rt.block_on(async {
                let crashed = run(&s, true).await;
                *ended
                    .lock()
                    .unwrap()
                    .entry(crashed.phase.to_string())
                    .or_default() += 1;
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
            c.3 += usize::from(s.blue_deaths.is_some());
            c.4 += usize::from(s.operator_rollback.is_some());
            Ok(())
        })
        .unwrap();
    let (n, crashes, faults, blue_deaths, rollbacks) = *ran.lock().unwrap();
    assert_eq!(n, cases as usize);
    let ends = ends.lock().unwrap().clone();
    println!("property cases by end: {ends:?}");
    if cases >= 1000 {
        // The fixed seed reaches every end; a change that stops reaching one weakens the test.
        for phase in [Phase::Done, Phase::RolledBack, Phase::Stopped] {
            assert!(
                ends.contains_key(&phase.to_string()),
                "no case ended {phase}"
            );
        }
    }
    println!(
        "property cases run: {n} ({crashes} with a crash and resume, {blue_deaths} with old-fleet \
         deaths in the bake, {rollbacks} with an operator rollback, {faults} scripted faults in all)"
    );
}
