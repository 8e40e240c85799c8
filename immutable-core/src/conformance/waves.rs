//! The store contract for wave plans: versioned compare-and-swap, and the plans not ended.

use std::time::{Duration, SystemTime};

use crate::wave::{TargetRun, TargetSpec, WaveHistoryEntry, WavePlanSpec, WaveSpec};
use crate::{
    DeploymentRequest, Error, ImageRef, OnWaveFailure, ResourceKind, StateStore, WaveBake, WaveId,
    WaveRecord, WaveState, WaveStore,
};

/// A running wave plan of `service`, one wave on one engine (`eu-west-1`), never saved yet,
/// for store tests: what [`WaveRunner`](crate::WaveRunner) saves first.
///
/// # Panics
/// If `service` is not a valid service name.
pub fn sample_wave(service: &str) -> WaveRecord {
    let request = DeploymentRequest::new(service, ImageRef::name("v1"))
        .validate()
        .expect("a valid request");
    let at = SystemTime::UNIX_EPOCH;
    let engine = "eu-west-1".to_owned();
    let plan = WavePlanSpec {
        service: request.service.clone(),
        waves: vec![WaveSpec {
            name: "canary".into(),
            targets: vec![TargetSpec {
                engine: engine.clone(),
                request,
            }],
        }],
        bake: WaveBake::time(Duration::from_secs(900)),
        concurrency: 1,
        on_failure: OnWaveFailure::HaltRest,
    };
    WaveRecord {
        id: WaveId::generate(),
        version: 0,
        plan,
        state: WaveState::Running,
        wave: 0,
        bake_until: None,
        bake_passes: 0,
        targets: vec![vec![TargetRun {
            engine,
            deployment: None,
            outcome: None,
            rollback: None,
            rollback_outcome: None,
        }]],
        failure: None,
        halt: None,
        created_at: at,
        history: vec![WaveHistoryEntry {
            at,
            state: WaveState::Running,
            wave: 0,
            note: None,
        }],
    }
}

fn ids(records: &[WaveRecord]) -> Vec<&WaveId> {
    records.iter().map(|r| &r.id).collect()
}

/// Wave plans: a first save makes version 1, a second first save is
/// [`Error::AlreadyExists`], a save from a stale copy [`Error::StaleWave`] and a later save of
/// an unknown plan [`Error::NotFound`]; a load returns what was saved;
/// [`unfinished_waves`](WaveStore::unfinished_waves) lists the running and halted plans,
/// oldest first, and drops a plan once it has ended. Expects a store without wave plans.
pub async fn wave_contract(store: &dyn StateStore) {
    let store = store
        .wave_store()
        .expect("wave_store: the store under test keeps no wave plans");
    let a = version_rule(store).await;
    unknown_plans(store).await;
    unfinished_plans(store, a).await;
}

/// The compare-and-swap of `save_wave`; returns the plan saved, at version 2.
async fn version_rule(store: &dyn WaveStore) -> WaveRecord {
    let mut a = sample_wave("web");
    store.save_wave(&mut a).await.expect("first save");
    assert_eq!(a.version, 1, "a first save makes version 1");
    assert_eq!(
        store.load_wave(&a.id).await.expect("load"),
        a,
        "load returns what was saved"
    );

    let mut again = a.clone();
    again.version = 0;
    match store.save_wave(&mut again).await {
        Err(Error::AlreadyExists {
            kind: ResourceKind::WavePlan,
            ..
        }) => {}
        other => panic!("a second first save: expected AlreadyExists, got {other:?}"),
    }
    let mut stale = a.clone();
    a.state = WaveState::Baking;
    store.save_wave(&mut a).await.expect("second save");
    assert_eq!(a.version, 2);
    stale.state = WaveState::RollingBack;
    match store.save_wave(&mut stale).await {
        Err(Error::StaleWave {
            wave,
            stored: 2,
            ours: 1,
        }) if wave == a.id => {}
        other => panic!("saving a stale copy: expected StaleWave (2, 1), got {other:?}"),
    }
    assert_eq!(stale.version, 1, "a refused save leaves the version alone");
    assert_eq!(store.load_wave(&a.id).await.expect("load"), a);
    a
}

/// A later save, or a load, of a plan the store never saw.
async fn unknown_plans(store: &dyn WaveStore) {
    let mut ghost = sample_wave("web");
    ghost.version = 4;
    match store.save_wave(&mut ghost).await {
        Err(Error::NotFound {
            kind: ResourceKind::WavePlan,
            ..
        }) => {}
        other => panic!("a later save of an unknown plan: expected NotFound, got {other:?}"),
    }
    match store.load_wave(&WaveId::generate()).await {
        Err(Error::NotFound {
            kind: ResourceKind::WavePlan,
            ..
        }) => {}
        other => panic!("an unknown id: expected NotFound, got {other:?}"),
    }
}

/// `unfinished_waves` lists running and halted plans, oldest first, and drops ended ones.
async fn unfinished_plans(store: &dyn WaveStore, mut a: WaveRecord) {
    let mut halted = sample_wave("billing");
    halted.state = WaveState::Halted;
    store.save_wave(&mut halted).await.expect("save halted");
    let mut failed = sample_wave("web");
    failed.state = WaveState::Failed;
    store.save_wave(&mut failed).await.expect("save failed");
    let open = store.unfinished_waves().await.expect("unfinished");
    assert_eq!(
        ids(&open),
        [&a.id, &halted.id],
        "the running and halted plans, oldest first, not the ended one"
    );
    assert_eq!(open[0], a);

    a.state = WaveState::Done;
    store.save_wave(&mut a).await.expect("closing save");
    assert_eq!(
        ids(&store.unfinished_waves().await.expect("unfinished")),
        [&halted.id],
        "a plan that ended is no longer unfinished"
    );
    assert_eq!(
        store.load_wave(&a.id).await.expect("load").state,
        WaveState::Done
    );
}
