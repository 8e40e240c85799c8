//! The store contract for halts: one halt per scope, read by the service it covers.

use std::time::{Duration, SystemTime};

use crate::{Halt, HaltScope, HaltStore, ServiceName, StateStore};

/// The halts sorted by scope, so that stores may return them in any order.
fn sorted(mut halts: Vec<Halt>) -> Vec<Halt> {
    halts.sort_by(|a, b| a.scope.cmp(&b.scope));
    halts
}

/// Halts: a service's read returns its own halt and the one for every service, never another
/// service's; the read of all returns every halt; a second halt of a scope replaces the first;
/// a lift returns the halt it lifted, then `None`. Expects a store without halts.
pub async fn halt_contract(store: &dyn StateStore) {
    let store = store
        .halt_store()
        .expect("halt_store: the store under test keeps no halts");
    let web = ServiceName::new("web").expect("name");
    let api = ServiceName::new("api").expect("name");
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    assert!(
        store.halts(None).await.expect("halts").is_empty(),
        "expected a store without halts"
    );
    let of_web = Halt::new(HaltScope::Service(web.clone()), "bad build", "ops", at);
    let of_all = Halt::new(HaltScope::All, "release freeze", "release-manager", at);
    let of_api = Halt::new(HaltScope::Service(api.clone()), "migration", "dba", at);
    for halt in [&of_web, &of_all, &of_api] {
        store.set_halt(halt).await.expect("set halt");
    }
    let read = |service: Option<&ServiceName>| {
        let service = service.cloned();
        async move { sorted(store.halts(service.as_ref()).await.expect("halts")) }
    };
    assert_eq!(
        read(Some(&web)).await,
        [of_all.clone(), of_web.clone()],
        "a service's halts: its own and the one for every service, not another service's"
    );
    assert_eq!(
        read(None).await,
        [of_all.clone(), of_api.clone(), of_web.clone()],
        "every halt"
    );

    replace_then_lift(store, &web, &api, of_all, of_api).await;
}

/// A second halt of web's scope replaces the first; lifts return what they lifted, once.
async fn replace_then_lift(
    store: &dyn HaltStore,
    web: &ServiceName,
    api: &ServiceName,
    of_all: Halt,
    of_api: Halt,
) {
    let read = |service: Option<&ServiceName>| {
        let service = service.cloned();
        async move { sorted(store.halts(service.as_ref()).await.expect("halts")) }
    };
    let worse = Halt::new(
        HaltScope::Service(web.clone()),
        "worse build",
        "ops-2",
        of_all.at + Duration::from_secs(60),
    );
    store.set_halt(&worse).await.expect("set halt again");
    assert_eq!(
        read(Some(web)).await,
        [of_all.clone(), worse.clone()],
        "a second halt of a scope replaces the first"
    );

    let scope = HaltScope::Service(web.clone());
    assert_eq!(
        store.lift_halt(&scope).await.expect("lift"),
        Some(worse),
        "a lift returns the halt it lifted"
    );
    assert_eq!(
        store.lift_halt(&scope).await.expect("lift again"),
        None,
        "a second lift finds nothing"
    );
    assert_eq!(read(Some(web)).await, std::slice::from_ref(&of_all));
    assert_eq!(
        store.lift_halt(&HaltScope::All).await.expect("lift"),
        Some(of_all)
    );
    assert!(read(Some(web)).await.is_empty(), "web is no longer halted");
    assert_eq!(read(Some(api)).await, std::slice::from_ref(&of_api));
    assert_eq!(read(None).await, [of_api]);
}
