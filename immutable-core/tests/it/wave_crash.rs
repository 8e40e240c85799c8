//! A wave runner cut off right after each of its record writes, then resumed by a fresh runner,
//! reaches the same end as a run that was never cut: the plan's state, every deployment's and
//! rollback's outcome, the deployments each region ran (none started twice), and the image
//! each region serves. Both a failing plan (failure, halt, rollbacks) and a successful one (a
//! wave of two concurrent deployments, a bake counting gate passes) are cut everywhere; a bake
//! cut and resumed counts on from the passes it saved. A plan cut as its bake ends, and resumed
//! under a halt set meanwhile, starts no further wave; a halt landing just as a wave starts
//! stops the plan short of Done.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::regions::{BAKE, POLL, Regions, regions, v2_request, within_a_day};
use async_trait::async_trait;
use immutable_core::conformance::{Hooks, StoreCall, StoreHooks};
use immutable_core::{
    Halt, HaltScope, HaltStore, InMemoryStore, OnWaveFailure, Result, ServiceName, StateStore,
    WaveBake, WaveEventKind, WavePlan, WaveRecord, WaveState,
};
use tokio::sync::Notify;

const NAMES: [&str; 4] = ["eu-west-1", "us-east-1", "ap-south-1/a", "ap-south-1/b"];

/// The shared store, scripted by wave record write: it "crashes" the runner right after its
/// `crash_at`-th write (the write is durable, then the call never returns), and sets an
/// operator's halt of `web` right after its `halt_at`-th; 0 for never.
type ScriptedWaveStore = StoreHooks<InMemoryStore, WaveScript>;

/// The script of a [`ScriptedWaveStore`]; `store` is the store it wraps (they share state).
#[derive(Debug)]
struct WaveScript {
    store: InMemoryStore,
    writes: AtomicUsize,
    crash_at: usize,
    halt_at: usize,
    crashed: Notify,
    /// Every wave record written, in order: the last names the plan.
    written: std::sync::Mutex<Vec<WaveRecord>>,
}

impl WaveScript {
    fn written(&self) -> Vec<WaveRecord> {
        self.written.lock().unwrap().clone()
    }
}

#[async_trait]
impl Hooks for WaveScript {
    async fn after(&self, call: StoreCall<'_>) -> Result<()> {
        let StoreCall::SaveWave(record) = call else {
            return Ok(());
        };
        self.written.lock().unwrap().push(record.clone());
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.halt_at {
            let scope = HaltScope::service("web")?;
            let halt = Halt::new(scope, "incident", "operator alice", record.created_at);
            self.store.set_halt(&halt).await?;
        }
        if n == self.crash_at {
            self.crashed.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

/// A failing plan, so that the cut points cover the failure, the halt and the rollbacks:
/// us-east-1's check fails in wave 2, and wave 1 is rolled back.
fn failing_plan() -> WavePlan {
    WavePlan::new(v2_request())
        .wave("canary", ["eu-west-1"])
        .wave("americas", ["us-east-1"])
        .wave("asia", ["ap-south-1/a", "ap-south-1/b"])
        .bake(WaveBake::time(BAKE))
        .on_failure(OnWaveFailure::RollBackDone)
}

/// A successful plan, so that the cut points cover a bake's gate rounds and a wave of two
/// deployments running at once. The bake's ten rounds leave room for the three passes needed
/// even when a cut costs the resumed runner three minutes of them.
fn successful_plan() -> WavePlan {
    WavePlan::new(v2_request())
        .wave("canary", ["eu-west-1"])
        .wave("rest", ["us-east-1", "ap-south-1/a"])
        .bake(
            WaveBake::time(BAKE)
                .checks(["gate"])
                .interval(Duration::from_secs(60))
                .min_passes(3),
        )
}

/// What must match: the plan's state and failure, each deployment's and rollback's outcome,
/// how many deployments each region ran, and the image each region serves.
async fn end_state(world: &Regions, rec: &WaveRecord) -> Vec<String> {
    let mut end = vec![
        rec.state.to_string(),
        format!("{:?}", rec.failure.as_ref().map(ToString::to_string)),
    ];
    for (w, runs) in rec.targets.iter().enumerate() {
        for run in runs {
            end.push(format!(
                "wave {w} {}: {:?} / rollback {:?}",
                run.engine,
                run.outcome.as_ref().map(ToString::to_string),
                run.rollback_outcome.as_ref().map(ToString::to_string)
            ));
        }
    }
    let web = ServiceName::new("web").unwrap();
    for name in NAMES {
        let region = world.get(name);
        let serving = world.serving(name);
        let version = if serving == region.v1 { "v1" } else { "v2" };
        let runs = region.store.list(Some(&web)).await.unwrap().len();
        end.push(format!(
            "{name} serves {version} after {runs} deployment(s)"
        ));
    }
    end
}

/// Regions over a store that cuts the runner after its `crash_at`-th write and halts the
/// service after its `halt_at`-th (0 for never); with `failing`, us-east-1's deployment fails
/// its check.
async fn world_with_store(
    crash_at: usize,
    halt_at: usize,
    failing: bool,
) -> (Regions, Arc<ScriptedWaveStore>) {
    let inner = InMemoryStore::new();
    let script = WaveScript {
        store: inner.clone(),
        writes: AtomicUsize::new(0),
        crash_at,
        halt_at,
        crashed: Notify::new(),
        written: std::sync::Mutex::default(),
    };
    let store = Arc::new(StoreHooks::new(inner, script));
    let world = regions(&NAMES, Arc::clone(&store) as Arc<dyn StateStore>).await;
    if failing {
        world.get("us-east-1").errors.go_bad();
    }
    (world, store)
}

/// Runs `plan` uncut, and returns the world, its store (with every record written) and the
/// end state.
async fn uncut(
    plan: fn() -> WavePlan,
    failing: bool,
) -> (Regions, Arc<ScriptedWaveStore>, WaveRecord, Vec<String>) {
    let (world, store) = world_with_store(0, 0, failing).await;
    let runner = world.runner();
    let run = runner.run(plan());
    let report = within_a_day(run).await.unwrap();
    let expected = end_state(&world, &report.record).await;
    (world, store, report.record, expected)
}

/// Starts `plan` in a fresh world whose runner is cut after write `crash_at`, then waits for
/// the dead runner's leases (its own and its deployments') to lapse. Returns the world and the
/// record as the cut left it.
async fn cut_at(plan: fn() -> WavePlan, failing: bool, crash_at: usize) -> (Regions, WaveRecord) {
    let (world, store) = world_with_store(crash_at, 0, failing).await;
    let runner = world.runner();
    tokio::select! {
        r = runner.run(plan()) => panic!("cut at write {crash_at}: the run ended: {r:?}"),
        _ = store.hooks().crashed.notified() => {}
    }
    drop(runner);
    tokio::time::sleep(Duration::from_secs(180)).await;
    let cut = store.hooks().written().pop().expect("a plan was written");
    (world, cut)
}

/// The successful plan cut right after the first record write `at` picks out (`what` it is),
/// as [`cut_at`] leaves it, with the end state of an uncut run.
async fn successful_plan_cut_after(
    at: impl Fn(&WaveRecord) -> bool,
    what: &str,
) -> (Regions, WaveRecord, Vec<String>) {
    let (_, store, _, expected) = uncut(successful_plan, false).await;
    let write = 1 + store
        .hooks()
        .written()
        .iter()
        .position(at)
        .unwrap_or_else(|| panic!("never written: {what}"));
    let (world, cut) = cut_at(successful_plan, false, write).await;
    (world, cut, expected)
}

/// For a plan cut while baking, resumed: the bake counts on from the passes it saved (its
/// first round after the cut is the next one), and ends when the saved bake would have, or at
/// once if that time has passed (not a full bake after the resume). Returns a note for the log.
fn assert_bake_resumed(world: &Regions, cut: &WaveRecord, crash_at: usize) -> String {
    let events = world.events.lock().unwrap();
    let resumed_at = events.first().expect("the resumed run reported").at;
    let until = cut.bake_until.expect("a baking record has an end");
    let next_wave = events
        .iter()
        .find(|e| {
            e.kind
                == WaveEventKind::StateEntered {
                    state: WaveState::Running,
                    wave: cut.wave + 1,
                }
        })
        .expect("the next wave started");
    assert!(
        next_wave.at <= until.max(resumed_at) + POLL,
        "cut after write {crash_at}: the bake ended {:?} after it was due",
        next_wave.at.duration_since(until.max(resumed_at)).unwrap()
    );
    let first_round = events.iter().find_map(|e| match e.kind {
        WaveEventKind::GateChecked { wave, passes, .. } if wave == cut.wave => Some(passes),
        _ => None,
    });
    match first_round {
        Some(passes) => {
            assert_eq!(
                passes,
                cut.bake_passes + 1,
                "cut after write {crash_at}: the resumed bake counts on from the saved passes"
            );
            format!(" (the bake counted on from {} pass(es))", cut.bake_passes)
        }
        None => String::new(),
    }
}

/// Cuts `plan`'s runner after each of its record writes in turn and resumes it with a fresh
/// runner: every resumed run ends as the uncut one did, and a bake cut and resumed counts on
/// from the passes it had saved.
async fn cut_after_every_write(plan: fn() -> WavePlan, failing: bool) -> Vec<String> {
    let (_, store, _, expected) = uncut(plan, failing).await;
    let writes = store.hooks().written().len();
    for crash_at in 1..=writes {
        let (world, cut) = cut_at(plan, failing, crash_at).await;
        world.events.lock().unwrap().clear();
        let resumed = world.runner().resume(&cut.id).await.unwrap();
        assert_eq!(
            end_state(&world, &resumed.record).await,
            expected,
            "cut after write {crash_at} of {writes}"
        );
        let note = if cut.state == WaveState::Baking {
            assert_bake_resumed(&world, &cut, crash_at)
        } else {
            String::new()
        };
        println!(
            "cut after wave record write {crash_at:>2}/{writes}: resumed to the same end{note}"
        );
    }
    expected
}

/// A failing plan, cut after any record write, resumes to the same failure, rollbacks and
/// serving images.
#[tokio::test(start_paused = true)]
async fn a_runner_cut_after_any_record_write_resumes_to_the_same_end() {
    let end = cut_after_every_write(failing_plan, true).await;
    assert_eq!(end[0], "rolled back", "{end:#?}");
}

/// A successful plan with a gated bake and a wave of two concurrent deployments, cut after any
/// record write, resumes to Done with every deployment run once and every region of the plan
/// on v2.
#[tokio::test(start_paused = true)]
async fn a_successful_plan_cut_after_any_record_write_resumes_to_the_same_end() {
    let (world, store, rec, end) = uncut(successful_plan, false).await;
    assert_eq!(rec.state, WaveState::Done, "{:#?}", rec.history);
    // The cut points cover gate rounds and the two deployments of wave 2 running at once.
    let written = store.hooks().written();
    let saved_rounds = written
        .iter()
        .filter(|r| r.state == WaveState::Baking && r.bake_passes > 0)
        .count();
    assert!(saved_rounds >= 3, "{saved_rounds} gate rounds saved");
    let kinds: Vec<bool> = world
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e.kind {
            WaveEventKind::DeploymentStarted { wave: 1, .. } => Some(true),
            WaveEventKind::DeploymentEnded { wave: 1, .. } => Some(false),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [true, true, false, false],
        "wave 2's deployments overlap"
    );
    assert_eq!(cut_after_every_write(successful_plan, false).await, end);
}

/// A plan cut right after its bake ended (the record says: wave 2, not started), then resumed
/// under a halt set while it was down, stops Halted without giving wave 2 a deployment id or
/// starting it; once the halt is lifted it ends as if never cut.
#[tokio::test(start_paused = true)]
async fn a_plan_cut_as_its_bake_ends_resumes_under_a_halt_without_starting_the_next_wave() {
    let (world, cut, expected) = successful_plan_cut_after(
        |r| r.state == WaveState::Running && r.wave == 1,
        "the plan entered wave 2",
    )
    .await;
    assert!(cut.targets[1].iter().all(|t| t.deployment.is_none()));
    let scope = HaltScope::service("web").unwrap();
    let eu = &world.get("eu-west-1").engine;
    eu.halt(scope.clone(), "incident while the runner was down")
        .await
        .unwrap();
    world.events.lock().unwrap().clear();
    let calls: Vec<usize> = NAMES
        .iter()
        .map(|n| world.get(n).cloud.calls().len())
        .collect();
    let runner = world.runner();
    let halted = runner.resume(&cut.id).await.unwrap();
    assert_eq!(
        halted.state,
        WaveState::Halted,
        "{:#?}",
        halted.record.history
    );
    assert!(
        halted.record.targets[1]
            .iter()
            .all(|t| t.deployment.is_none()),
        "wave 2 got no deployment id: {:#?}",
        halted.record.targets[1]
    );
    let kinds = world.event_kinds();
    assert!(
        !kinds.iter().any(|k| matches!(
            k,
            WaveEventKind::WaveStarted { .. } | WaveEventKind::DeploymentStarted { .. }
        )),
        "{kinds:#?}"
    );
    for (n, before) in NAMES.iter().zip(calls) {
        assert_eq!(world.get(n).cloud.calls().len(), before, "{n} was called");
    }
    eu.lift_halt(&scope).await.unwrap();
    let done = runner.resume(&cut.id).await.unwrap();
    assert_eq!(end_state(&world, &done.record).await, expected);
}

/// A halt that lands right after the runner saved wave 2's deployment ids (after its own
/// check, before the engines start them) makes the engines refuse them; the plan then stops
/// Halted, not Done with wave 2 never deployed. Once lifted, it ends as if never halted.
#[tokio::test(start_paused = true)]
async fn a_halt_landing_as_a_wave_starts_stops_the_plan_short_of_done() {
    let (_, store, _, expected) = uncut(successful_plan, false).await;
    let ids_saved = 1 + store
        .hooks()
        .written()
        .iter()
        .position(|r| r.wave == 1 && r.targets[1].iter().all(|t| t.deployment.is_some()))
        .expect("wave 2 got its ids");
    let (world, _) = world_with_store(0, ids_saved, false).await;
    let runner = world.runner();
    let halted = runner.run(successful_plan()).await.unwrap();
    assert_eq!(
        halted.state,
        WaveState::Halted,
        "{:#?}",
        halted.record.history
    );
    assert_eq!(halted.record.halt.as_ref().unwrap().by, "operator alice");
    assert!(
        halted.record.targets[1].iter().all(|t| t.outcome.is_none()),
        "{:#?}",
        halted.record.targets[1]
    );
    for name in ["us-east-1", "ap-south-1/a"] {
        assert_eq!(world.serving(name), world.get(name).v1, "{name} serves v1");
    }
    world
        .get("eu-west-1")
        .engine
        .lift_halt(&HaltScope::service("web").unwrap())
        .await
        .unwrap();
    let done = runner.resume(&halted.record.id).await.unwrap();
    assert_eq!(end_state(&world, &done.record).await, expected);
}

/// A runner cut right after its bake's first pass and down for longer than the whole bake
/// does not fail the plan for want of passes: the resumed bake's time is up, so it says so,
/// gathers the two missing passes a round a minute (counting on from the saved one), and the
/// plan ends as if never cut.
#[tokio::test(start_paused = true)]
async fn a_runner_down_past_its_bake_gathers_the_missing_passes_and_goes_on() {
    let (world, cut, expected) = successful_plan_cut_after(
        |r| r.state == WaveState::Baking && r.bake_passes == 1,
        "the bake saved its first pass",
    )
    .await;
    assert_eq!((cut.state, cut.bake_passes), (WaveState::Baking, 1));
    // Down until well past the bake's end.
    tokio::time::sleep(BAKE).await;
    let until = cut.bake_until.expect("a baking record has an end");
    world.events.lock().unwrap().clear();
    let runner = world.runner();
    let resume = runner.resume(&cut.id);
    let done = within_a_day(resume).await.unwrap();
    assert_eq!(end_state(&world, &done.record).await, expected);
    let kinds = world.event_kinds();
    assert!(
        kinds.contains(&WaveEventKind::BakeExtended {
            wave: 0,
            passes: 1,
            needed: 3
        }),
        "{kinds:#?}"
    );
    assert_eq!(
        world.gate_rounds(0),
        [(true, 2), (true, 3)],
        "counted on from the saved pass"
    );
    let events = world.events.lock().unwrap();
    let resumed_at = events.first().expect("the resumed run reported").at;
    assert!(resumed_at > until, "resumed after the bake's end");
    let next_wave = events
        .iter()
        .find(|e| {
            e.kind
                == WaveEventKind::StateEntered {
                    state: WaveState::Running,
                    wave: 1,
                }
        })
        .expect("the next wave started");
    let waited = next_wave.at.duration_since(resumed_at).unwrap();
    assert!(
        waited >= Duration::from_secs(60) && waited <= Duration::from_secs(60) + POLL,
        "two rounds a minute apart, then the next wave: {waited:?}"
    );
}
