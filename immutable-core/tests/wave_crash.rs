//! A wave runner cut off right after each of its record writes, then resumed by a fresh runner,
//! reaches the same end as a run that was never cut: the plan's state, every deployment's and
//! rollback's outcome, and the image each region serves.

#![allow(clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use common::regions::{BAKE, Regions, regions, v2_request};
use immutable_core::{
    CommandRecord, DeploymentId, DeploymentRecord, Halt, HaltScope, HistoryPage, InMemoryStore,
    Lease, LeaseGrant, OnWaveFailure, Page, Result, ServiceName, StateStore, WaveBake, WaveId,
    WavePlan, WaveRecord,
};
use tokio::sync::Notify;

const NAMES: [&str; 4] = ["eu-west-1", "us-east-1", "ap-south-1/a", "ap-south-1/b"];

/// The shared store, which "crashes" the runner right after its `crash_at`-th wave record
/// write: the write is durable, then the call never returns.
#[derive(Debug)]
struct CrashAfterWaveWrite {
    inner: InMemoryStore,
    writes: AtomicUsize,
    crash_at: usize,
    crashed: Notify,
    /// The plan written last.
    last: std::sync::Mutex<Option<WaveId>>,
}

#[async_trait]
impl StateStore for CrashAfterWaveWrite {
    async fn save_wave(&self, record: &mut WaveRecord) -> Result<()> {
        self.inner.save_wave(record).await?;
        *self.last.lock().unwrap() = Some(record.id.clone());
        if self.writes.fetch_add(1, Ordering::SeqCst) + 1 == self.crash_at {
            self.crashed.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(())
    }
    async fn load_wave(&self, id: &WaveId) -> Result<WaveRecord> {
        self.inner.load_wave(id).await
    }
    async fn unfinished_waves(&self) -> Result<Vec<WaveRecord>> {
        self.inner.unfinished_waves().await
    }
    async fn set_halt(&self, halt: &Halt) -> Result<()> {
        self.inner.set_halt(halt).await
    }
    async fn lift_halt(&self, scope: &HaltScope) -> Result<Option<Halt>> {
        self.inner.lift_halt(scope).await
    }
    async fn halts(&self, service: Option<&ServiceName>) -> Result<Vec<Halt>> {
        self.inner.halts(service).await
    }
    async fn save(&self, record: &mut DeploymentRecord) -> Result<()> {
        self.inner.save(record).await
    }
    async fn load(&self, id: &DeploymentId) -> Result<DeploymentRecord> {
        self.inner.load(id).await
    }
    async fn list(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
        self.inner.list(service).await
    }
    async fn history(&self, service: &ServiceName, page: &Page) -> Result<HistoryPage> {
        self.inner.history(service, page).await
    }
    async fn acquire_lease(
        &self,
        service: &ServiceName,
        deployment: &DeploymentId,
        holder: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<LeaseGrant> {
        self.inner
            .acquire_lease(service, deployment, holder, ttl, now)
            .await
    }
    async fn renew_lease(&self, lease: &Lease, ttl: Duration, now: SystemTime) -> Result<Lease> {
        self.inner.renew_lease(lease, ttl, now).await
    }
    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        self.inner.release_lease(lease).await
    }
    async fn lease(&self, service: &ServiceName) -> Result<Option<Lease>> {
        self.inner.lease(service).await
    }
    async fn add_command(&self, command: &CommandRecord) -> Result<()> {
        self.inner.add_command(command).await
    }
    async fn commands(&self, deployment: &DeploymentId) -> Result<Vec<CommandRecord>> {
        self.inner.commands(deployment).await
    }
}

/// A failing plan, so that the cut points cover the failure, the halt and the rollbacks:
/// us-east-1's check fails in wave 2, and wave 1 is rolled back.
fn plan() -> WavePlan {
    WavePlan::new(v2_request())
        .wave("canary", ["eu-west-1"])
        .wave("americas", ["us-east-1"])
        .wave("asia", ["ap-south-1/a", "ap-south-1/b"])
        .bake(WaveBake::time(BAKE))
        .on_failure(OnWaveFailure::RollBackDone)
}

/// What must match: the plan's state and failure, each deployment's and rollback's outcome,
/// and the image each region serves.
fn end_state(world: &Regions, rec: &WaveRecord) -> Vec<String> {
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
    for name in NAMES {
        let serving = world.serving(name);
        let version = if serving == world.get(name).v1 {
            "v1"
        } else {
            "v2"
        };
        end.push(format!("{name} serves {version}"));
    }
    end
}

async fn world_with_store(crash_at: usize) -> (Regions, Arc<CrashAfterWaveWrite>) {
    let store = Arc::new(CrashAfterWaveWrite {
        inner: InMemoryStore::new(),
        writes: AtomicUsize::new(0),
        crash_at,
        crashed: Notify::new(),
        last: std::sync::Mutex::default(),
    });
    let world = regions(&NAMES, Arc::clone(&store) as Arc<dyn StateStore>).await;
    world.get("us-east-1").errors.go_bad();
    (world, store)
}

#[tokio::test(start_paused = true)]
async fn a_runner_cut_after_any_record_write_resumes_to_the_same_end() {
    let (world, store) = world_with_store(0).await;
    let report = world.runner().run(plan()).await.unwrap();
    let expected = end_state(&world, &report.record);
    let writes = store.writes.load(Ordering::SeqCst);
    assert!(writes > 10, "the plan wrote its record {writes} times");
    for crash_at in 1..=writes {
        let (world, store) = world_with_store(crash_at).await;
        let runner = world.runner();
        tokio::select! {
            r = runner.run(plan()) => panic!("cut at write {crash_at}: the run ended: {r:?}"),
            _ = store.crashed.notified() => {}
        }
        drop(runner);
        // The dead runner's leases (its own and its deployments') lapse.
        tokio::time::sleep(Duration::from_secs(180)).await;
        let id = store
            .last
            .lock()
            .unwrap()
            .clone()
            .expect("a plan was written");
        let resumed = world.runner().resume(&id).await.unwrap();
        assert_eq!(
            end_state(&world, &resumed.record),
            expected,
            "cut after write {crash_at} of {writes}"
        );
        println!("cut after wave record write {crash_at:>2}/{writes}: resumed to the same end");
    }
}
