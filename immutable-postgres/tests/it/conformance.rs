//! The store contracts every bundled store meets, on PostgreSQL: records, history, retention,
//! leases, commands, halts and wave plans.

use std::time::SystemTime;

use immutable_core::conformance::{
    command_contract, halt_contract, history_contract, lease_contract, retention_contract,
    store_contract, wave_contract,
};
use immutable_core::{ManualClock, Retention, StateStore};

use crate::common::{builder, migrated, store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_meets_every_store_contract() {
    store_contract(&store("records").await).await;
    history_contract(&store("history").await).await;
    command_contract(&store("commands").await).await;
    let kept = migrated(builder("kept").with_retention(Retention::keep(3))).await;
    retention_contract(&kept).await;
    let clock = ManualClock::new(SystemTime::now());
    lease_contract(&store("leases").await, &clock).await;
    halt_contract(&store("halts").await).await;
    wave_contract(&store("waves").await).await;
}

#[test]
fn the_store_is_shared_as_a_trait_object() {
    fn shared<T: StateStore + Clone>() {}
    shared::<immutable_postgres::PostgresStore>();
    let _: Option<std::sync::Arc<dyn StateStore>> = None::<immutable_postgres::PostgresStore>
        .map(|s| std::sync::Arc::new(s) as std::sync::Arc<dyn StateStore>);
}
