//! The DynamoDB store against moto's DynamoDB: the store contracts, leases, a deployment
//! journaled in it and resumed after a crash by a second engine, a halt set by one engine
//! refusing another's deploy, the requests and items a deployment reads with 10 or 5,000
//! records behind it, and the reads of a service's halts and of the wave plans under way.
#![allow(clippy::print_stdout)]

use immutable_core::{HaltStore, WaveStore};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::scan::ScanOutput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::common::Moto;
use immutable_aws::{AwsClients, AwsConfig, DynamoStore};
use immutable_core::conformance::{
    command_contract, finished_records, halt_contract, history_contract, lease_contract,
    retention_contract, sample_record, sample_wave, store_contract, wave_contract,
};
use immutable_core::{
    DeploymentRequest, Engine, Error, Halt, HaltScope, ImageRef, InMemoryStore, ManualClock,
    Retention, RollbackMode, ServiceName, Settings, StateStore, WaveState,
};
use immutable_mock::MockCloud;

async fn clients(moto: &Moto) -> AwsClients {
    AwsConfig::from_env()
        .with_region("us-east-1")
        .with_endpoint_url(&moto.url)
        .with_static_credentials("testing", "testing")
        .load()
        .await
}

async fn store(moto: &Moto, table: &str) -> DynamoStore {
    let store = DynamoStore::new(&clients(moto).await, table);
    store.create_table().await.unwrap();
    // Idempotent: a second call finds the table.
    store.create_table().await.unwrap();
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dynamodb_store_meets_the_store_contract() {
    let moto = Moto::start();
    store_contract(&store(&moto, "records").await).await;
    command_contract(&store(&moto, "commands").await).await;
    history_contract(&store(&moto, "history").await).await;
    let kept = store(&moto, "kept")
        .await
        .with_retention(Retention::keep(3));
    retention_contract(&kept).await;
    let clock = ManualClock::new(SystemTime::now());
    lease_contract(&store(&moto, "leases").await, &clock).await;
    halt_contract(&store(&moto, "halts").await).await;
    wave_contract(&store(&moto, "waves").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_halt_set_through_dynamodb_refuses_another_engines_deploy_until_lifted() {
    let moto = Moto::start();
    let shared: Arc<dyn StateStore> = Arc::new(store(&moto, "halts").await);
    // Two regions: each engine has its own cloud and records, and both read halts from the
    // shared table.
    let engine = |name: &str| {
        let cloud = MockCloud::with_timings(immutable_mock::Timings::instant());
        cloud.add_image("web", "web-v1");
        Engine::builder()
            .backends(cloud.backends())
            .store(InMemoryStore::new())
            .halts_from(Arc::clone(&shared))
            .identity(name)
            .build()
            .unwrap()
    };
    let (eu, us) = (engine("eu-west-1"), engine("us-east-1"));
    let request = DeploymentRequest::new("web", ImageRef::name("web-v1"))
        .capacity(1)
        .bake_time(Duration::ZERO);
    let web = HaltScope::service("web").unwrap();
    let set = eu.halt(web.clone(), "bad build in eu").await.unwrap();

    match us.deploy(request.clone()).await {
        Err(Error::Halted { service, halt }) => {
            assert_eq!(service.as_str(), "web");
            assert_eq!(*halt, set);
            assert_eq!(halt.by, "eu-west-1");
        }
        other => panic!("a halted service: expected Error::Halted, got {other:?}"),
    }
    assert_eq!(us.halts(None).await.unwrap(), std::slice::from_ref(&set));
    assert_eq!(us.lift_halt(&web).await.unwrap(), Some(set));
    let report = us.deploy(request).await.unwrap();
    assert!(report.succeeded(), "{:?}", report.outcome);
    assert!(eu.halts(None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_journaled_in_dynamodb_resumes_on_another_engine() {
    let moto = Moto::start();
    let table = store(&moto, "deployments").await;
    // Wall time that a test can move forward, as a long wait between the two runners would.
    let clock = Ahead::default();
    let cloud = MockCloud::with_timings(immutable_mock::Timings::instant());
    cloud.add_image("web", "web-v1");
    let engine = |store: DynamoStore| {
        Engine::builder()
            .backends(cloud.backends())
            .store(store)
            .clock(clock.clone())
            .build()
            .unwrap()
    };
    let request = DeploymentRequest::new("web", ImageRef::name("web-v1"))
        .capacity(2)
        .bake_time(Duration::from_millis(50));
    // Runner A dies right after launching the fleet.
    cloud.crash_after_call(5);
    let a = engine(table.clone());
    tokio::select! {
        _ = a.deploy(request.clone()) => panic!("not cut off"),
        _ = cloud.crashed() => {}
    }
    let web = ServiceName::new("web").unwrap();
    let open = table.unfinished(Some(&web)).await.unwrap();
    assert_eq!(open.len(), 1);
    // Runner B, elsewhere, is refused while A's lease lives, and takes over once it expires.
    let b = engine(table.clone());
    assert!(matches!(
        b.resume(&open[0].id).await,
        Err(Error::Locked { .. })
    ));
    clock.advance(Duration::from_secs(61));
    let report = b.resume(&open[0].id).await.unwrap();
    assert!(report.succeeded(), "{:?}", report.outcome);
    assert_eq!(cloud.snapshot().live_fleets(&web).len(), 1);
    assert!(table.unfinished(None).await.unwrap().is_empty());
    assert_eq!(table.load(&open[0].id).await.unwrap(), report.record);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_is_approved_and_another_aborted_from_a_second_engine_through_dynamodb() {
    use immutable_core::{Command, EventKind, OnTimeout, Outcome, Steps};
    let moto = Moto::start();
    let table = store(&moto, "operated").await;
    let cloud = MockCloud::with_timings(immutable_mock::Timings::instant());
    cloud.add_image("web", "web-v1");
    cloud.add_image("web", "web-v2");
    let engine = || {
        Engine::builder()
            .backends(cloud.backends())
            .store(table.clone())
            .settings(
                immutable_core::Settings::default().with_poll_interval(Duration::from_millis(100)),
            )
            .build()
            .unwrap()
    };
    let (runner, operator) = (engine(), engine());
    let gated = Steps::blue_green().with_approval(Duration::from_secs(60), OnTimeout::RollBack);
    for (image, command) in [
        ("web-v1", Command::Approve),
        (
            "web-v2",
            Command::Abort {
                reason: "from another machine".into(),
            },
        ),
    ] {
        let mut events = runner.events();
        let run = {
            let runner = runner.clone();
            let request = DeploymentRequest::new("web", ImageRef::name(image))
                .capacity(2)
                .strategy(gated.clone())
                .bake_time(Duration::from_millis(50));
            tokio::spawn(async move { runner.deploy(request).await })
        };
        let id = loop {
            let e = events.recv().await.unwrap();
            if let EventKind::ApprovalRequested { .. } = e.kind {
                break e.deployment;
            }
        };
        operator.command(&id, command.clone()).await.unwrap();
        let report = run.await.unwrap().unwrap();
        match command {
            Command::Approve => assert!(report.succeeded(), "{}", report.outcome),
            _ => assert!(
                matches!(report.outcome, Outcome::RolledBack { .. }),
                "{}",
                report.outcome
            ),
        }
        assert!(matches!(
            operator.command(&id, Command::Promote).await,
            Err(Error::DeploymentFinished { .. })
        ));
    }
}

/// Sixty-four commands given at once are all kept (each is its own item, so no write can
/// overwrite another's, on DynamoDB or on a server that does not serialise writes to one item),
/// and a repeated one is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_given_at_once_are_all_kept() {
    use immutable_core::{Command, CommandRecord};
    let moto = Moto::start();
    let table = store(&moto, "commands").await;
    let mut record = sample_record("web");
    table.save(&mut record).await.unwrap();
    let given: Vec<_> = (0..64)
        .map(|i| {
            let by = format!("operator-{i}");
            CommandRecord::new(record.id.clone(), Command::Approve, by, SystemTime::now())
        })
        .collect();
    let writes = given.iter().map(|c| table.add_command(c));
    for written in futures::future::join_all(writes).await {
        written.unwrap();
    }
    table.add_command(&given[3]).await.unwrap();
    let mut want: Vec<_> = given.iter().map(|c| c.id.clone()).collect();
    want.sort();
    let read = table.commands(&record.id).await.unwrap();
    assert_eq!(read.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), want);
    assert_eq!(read.iter().find(|c| c.id == given[3].id), Some(&given[3]));
}

/// The system clock, moved forward by [`Ahead::advance`].
#[derive(Debug, Clone, Default)]
struct Ahead(std::sync::Arc<std::sync::Mutex<Duration>>);

impl Ahead {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl immutable_core::Clock for Ahead {
    fn now(&self) -> SystemTime {
        SystemTime::now() + *self.0.lock().unwrap()
    }
}

/// Counts DynamoDB requests by operation, and items read: `ScannedCount` of each `Query` and
/// `Scan` (as moto reports it), one per `GetItem` that found an item. Reads of a deployment's
/// commands and of its service's halts (the only `BatchGetItem`) are counted apart: the
/// runner makes one of each per poll interval, so their number follows the deployment's
/// wall-clock time, not the history behind it.
#[derive(Debug, Clone, Default)]
struct Reads(Arc<Mutex<Tally>>);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Tally {
    requests: BTreeMap<String, u64>,
    items_read: u64,
    polls: u64,
}

impl Tally {
    /// What must not depend on the history: everything but the polls.
    fn bounded(&self) -> (&BTreeMap<String, u64>, u64) {
        (&self.requests, self.items_read)
    }
}

/// Whether a request reads a deployment's commands (the `Query` of its `command` items), or
/// its service's halts.
fn is_poll(input: &aws_smithy_runtime_api::client::interceptors::context::Input) -> bool {
    input.downcast_ref::<BatchGetItemInput>().is_some()
        || input
            .downcast_ref::<QueryInput>()
            .and_then(|query| query.expression_attribute_values.as_ref())
            .is_some_and(|values| values.contains_key(":commands"))
}

impl Intercept for Reads {
    fn name(&self) -> &'static str {
        "Reads"
    }

    fn read_before_serialization(
        &self,
        ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut tally = self.0.lock().unwrap();
        if is_poll(ctx.input()) {
            tally.polls += 1;
            return Ok(());
        }
        let name = cfg.load::<Metadata>().map_or("unknown", |m| m.name());
        *tally.requests.entry(name.to_owned()).or_default() += 1;
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(out) = ctx.output_or_error() else {
            return Ok(());
        };
        let items = if let Some(q) = out.downcast_ref::<QueryOutput>() {
            q.scanned_count
        } else if let Some(scan) = out.downcast_ref::<ScanOutput>() {
            scan.scanned_count
        } else if let Some(get) = out.downcast_ref::<GetItemOutput>() {
            i32::from(get.item.is_some())
        } else {
            0
        };
        self.0.lock().unwrap().items_read += u64::try_from(items).unwrap_or_default();
        Ok(())
    }
}

impl Reads {
    fn take(&self) -> Tally {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A store over `table` whose requests `reads` counts.
fn counted(clients: &AwsClients, table: &str, reads: &Reads) -> DynamoStore {
    let config = aws_sdk_dynamodb::config::Builder::from(&clients.sdk)
        .interceptor(reads.clone())
        .build();
    DynamoStore::from_client(aws_sdk_dynamodb::Client::from_conf(config), table)
        .with_retention(Retention::keep_all())
}

/// `n` finished records of `service` (a tenth of them rolled back), imported through the
/// store in batches (one save each would take moto minutes).
async fn history(store: &DynamoStore, service: &'static str, n: usize) {
    let records = finished_records(service, n);
    store.import(&records).await.unwrap();
}

/// v1 serves; `n` records of web and `n / 10` of billing lie behind; then v2 is deployed,
/// rolled back, collected and resumed, each counted.
async fn reads_with(moto: &Moto, n: usize) -> Vec<(&'static str, Tally)> {
    let clients = clients(moto).await;
    let table = format!("journal-{n}");
    let plain = DynamoStore::new(&clients, &table).with_retention(Retention::keep_all());
    plain.create_table().await.unwrap();
    let reads = Reads::default();
    let cloud = MockCloud::with_timings(immutable_mock::Timings::instant());
    for v in ["web-v1", "web-v2"] {
        cloud.add_image("web", v);
    }
    // Real time with instant backends: a deployment takes well under its one-minute lease,
    // which is never renewed, so every count repeats exactly.
    let engine = Engine::builder()
        .backends(cloud.backends())
        .store(counted(&clients, &table, &reads))
        .settings(Settings::default().with_poll_interval(Duration::from_millis(1)))
        .build()
        .unwrap();
    let request = |v: &str| {
        DeploymentRequest::new("web", ImageRef::name(v))
            .capacity(2)
            .bake_time(Duration::ZERO)
    };
    assert!(engine.deploy(request("web-v1")).await.unwrap().succeeded());
    history(&plain, "web", n).await;
    history(&plain, "billing", n / 10).await;
    reads.take();
    let mut tallies = Vec::new();
    assert!(engine.deploy(request("web-v2")).await.unwrap().succeeded());
    tallies.push(("deploy", reads.take()));
    engine
        .rollback_with("web", RollbackMode::Redeploy)
        .await
        .unwrap();
    tallies.push(("rollback", reads.take()));
    engine.gc("web").await.unwrap();
    tallies.push(("gc", reads.take()));
    assert!(engine.resume_unfinished().await.unwrap().is_empty());
    tallies.push(("resume_unfinished", reads.take()));
    tallies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_reads_the_same_items_with_10_or_5000_records_behind_it() {
    let moto = Moto::start();
    let small = reads_with(&moto, 10).await;
    let large = reads_with(&moto, 5_000).await;
    for ((what, s), (_, l)) in small.iter().zip(&large) {
        println!("{what:18} 10: {s:?}\n{:18} 5,000: {l:?}", "");
    }
    for ((what, s), (_, l)) in small.iter().zip(&large) {
        assert_eq!(s.bounded(), l.bounded(), "{what} depends on the history");
    }
    for (what, tally) in &large {
        assert!(
            !tally.requests.contains_key("Scan"),
            "{what} scanned the table"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halts_and_unfinished_wave_plans_read_only_what_concerns_them() {
    let moto = Moto::start();
    let clients = clients(&moto).await;
    store(&moto, "waves").await;
    let reads = Reads::default();
    let table = counted(&clients, "waves", &reads);
    let mut plans = Vec::new();
    for state in [WaveState::Done, WaveState::Failed, WaveState::Halted] {
        let mut plan = sample_wave("web");
        table.save_wave(&mut plan).await.unwrap();
        plan.state = state;
        table.save_wave(&mut plan).await.unwrap();
        plans.push(plan);
    }
    let web = ServiceName::new("web").unwrap();
    for i in 0..20 {
        let other = HaltScope::service(format!("svc{i}")).unwrap();
        let halt = Halt::new(other, "elsewhere", "ops", SystemTime::now());
        table.set_halt(&halt).await.unwrap();
    }
    reads.take();

    let open = table.unfinished_waves().await.unwrap();
    assert_eq!(open, [plans[2].clone()]);
    let tally = reads.take();
    assert_eq!(
        tally.requests,
        BTreeMap::from([("GetItem".to_owned(), 1), ("Query".to_owned(), 1)]),
        "the markers of ended plans are gone: {tally:?}"
    );
    assert_eq!(tally.items_read, 2, "one marker, one record: {tally:?}");

    assert!(table.halts(Some(&web)).await.unwrap().is_empty());
    let tally = reads.take();
    assert_eq!(tally.polls, 1, "one BatchGetItem, whatever else is halted");
    assert!(tally.requests.is_empty(), "{tally:?}");
    assert_eq!(table.halts(None).await.unwrap().len(), 20);
}
