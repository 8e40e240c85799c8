//! The DynamoDB store against moto's DynamoDB: the store contract, leases, and a deployment
//! journaled in it and resumed after a crash by a second engine.

mod common;

use std::time::{Duration, SystemTime};

use common::Moto;
use immutable_aws::{AwsConfig, DynamoStore};
use immutable_core::conformance::{command_contract, lease_contract, store_contract};
use immutable_core::{
    DeploymentRequest, Engine, Error, ImageRef, ManualClock, ServiceName, StateStore,
};
use immutable_mock::MockCloud;

async fn store(moto: &Moto, table: &str) -> DynamoStore {
    let clients = AwsConfig::from_env()
        .with_region("us-east-1")
        .with_endpoint_url(&moto.url)
        .with_static_credentials("testing", "testing")
        .load()
        .await;
    let store = DynamoStore::new(&clients, table);
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
    let clock = ManualClock::new(SystemTime::now());
    lease_contract(&store(&moto, "leases").await, &clock).await;
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
            .images(cloud.clone())
            .fleet(cloud.clone())
            .router(cloud.clone())
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
            .images(cloud.clone())
            .fleet(cloud.clone())
            .router(cloud.clone())
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
