//! The store contracts: records, leases, bounded reads and retention, for any [`StateStore`].

use std::time::{Duration, SystemTime};

use crate::{
    Clock, DeploymentId, DeploymentRecord, DeploymentRequest, Error, Image, ImageId, ImageRef,
    ManualClock, Page, Phase, ResourceKind, ServiceName, StateStore,
};

/// A deployment record of `service`, never saved yet, for store tests.
///
/// # Panics
/// If `service` is not a valid service name.
pub fn sample_record(service: &str) -> DeploymentRecord {
    let spec = DeploymentRequest::new(service, ImageRef::name("v1"))
        .validate()
        .expect("a valid request");
    let image = Image {
        id: ImageId::new("ami-1"),
        name: "v1".into(),
        service: Some(spec.service.clone()),
        labels: Default::default(),
        created_at: SystemTime::UNIX_EPOCH,
    };
    let mut rec = DeploymentRecord::new(
        DeploymentId::generate(),
        spec,
        image,
        None,
        SystemTime::UNIX_EPOCH,
    );
    rec.enter(Phase::Provision, SystemTime::UNIX_EPOCH, None);
    rec
}

/// `n` finished records of `service`, a tenth of them rolled back: the history behind a
/// deployment, for tests and benches that show a store's cost does not grow with it.
///
/// # Panics
/// If `service` is not a valid service name.
pub fn finished_records(service: &str, n: usize) -> Vec<DeploymentRecord> {
    (0..n)
        .map(|i| {
            let mut r = sample_record(service);
            r.version = 3;
            r.phase = if i % 10 == 0 {
                Phase::RolledBack
            } else {
                Phase::Done
            };
            r
        })
        .collect()
}

/// Records: versioned compare-and-swap, listing by service, unfinished and latest records,
/// `NotFound`. Expects an empty store.
pub async fn store_contract(store: &dyn StateStore) {
    let mut a = sample_record("web");
    store.save(&mut a).await.expect("first save");
    assert_eq!(a.version, 1, "a first save makes version 1");
    assert_eq!(
        store.load(&a.id).await.expect("load"),
        a,
        "load returns what was saved"
    );

    let mut stale = a.clone();
    a.phase = Phase::Attach;
    store.save(&mut a).await.expect("second save");
    assert_eq!(a.version, 2);
    stale.phase = Phase::RollingBack;
    match store.save(&mut stale).await {
        Err(Error::StaleVersion { .. }) => {}
        other => panic!("saving a stale version: expected StaleVersion, got {other:?}"),
    }
    assert_eq!(store.load(&a.id).await.expect("load").phase, Phase::Attach);

    let mut again = a.clone();
    again.version = 0;
    match store.save(&mut again).await {
        Err(Error::AlreadyExists { .. }) => {}
        other => panic!("a second first save: expected AlreadyExists, got {other:?}"),
    }

    let mut b = sample_record("billing");
    b.phase = Phase::Done;
    store.save(&mut b).await.expect("save b");
    let web = ServiceName::new("web").expect("name");
    let listed = store.list(Some(&web)).await.expect("list");
    assert_eq!(
        listed.iter().map(|r| &r.id).collect::<Vec<_>>(),
        vec![&a.id]
    );
    assert_eq!(store.list(None).await.expect("list").len(), 2);
    let unfinished = store.unfinished(None).await.expect("unfinished");
    assert_eq!(
        unfinished.iter().map(|r| &r.id).collect::<Vec<_>>(),
        vec![&a.id]
    );
    unfinished_and_latest(store, &mut a, &b).await;
    services_in_pages(store).await;

    match store.load(&DeploymentId::generate()).await {
        Err(Error::NotFound {
            kind: ResourceKind::Deployment,
            ..
        }) => {}
        other => panic!("unknown id: expected NotFound, got {other:?}"),
    }
}

/// `services`: the names of the services with records, in order, a page at a time, as the
/// store of [`store_contract`] has them (billing and web).
async fn services_in_pages(store: &dyn StateStore) {
    let names = |v: Vec<ServiceName>| v.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>();
    let all = store.services(None, 10).await.expect("services");
    assert_eq!(names(all), ["billing", "web"], "services, in name order");
    let first = store.services(None, 1).await.expect("services");
    assert_eq!(names(first.clone()), ["billing"], "a page of one");
    let next = store.services(first.last(), 1).await.expect("services");
    assert_eq!(names(next.clone()), ["web"], "the page after billing");
    let end = store.services(next.last(), 1).await.expect("services");
    assert!(end.is_empty(), "nothing after the last service");
    match store.services(None, 0).await {
        Err(Error::InvalidInput { ref field, .. }) if field == "limit" => {}
        other => panic!("a page of 0 services: expected InvalidInput naming limit, got {other:?}"),
    }
}

/// The bounded reads of [`store_contract`]: `a` of web is unfinished, `b` of billing is done.
async fn unfinished_and_latest(
    store: &dyn StateStore,
    a: &mut DeploymentRecord,
    b: &DeploymentRecord,
) {
    let web = ServiceName::new("web").expect("name");
    let billing = ServiceName::new("billing").expect("name");
    assert_eq!(
        ids(&store.unfinished(Some(&web)).await.expect("unfinished")),
        [&a.id]
    );
    assert!(
        store
            .unfinished(Some(&billing))
            .await
            .expect("unfinished")
            .is_empty()
    );
    assert_eq!(
        store.latest(&web).await.expect("latest").as_ref(),
        Some(&*a)
    );
    assert_eq!(
        store.latest(&billing).await.expect("latest").as_ref(),
        Some(b)
    );
    let nobody = ServiceName::new("nobody").expect("name");
    assert_eq!(store.latest(&nobody).await.expect("latest"), None);

    a.phase = Phase::Done;
    store.save(a).await.expect("closing save");
    assert!(store.unfinished(None).await.expect("unfinished").is_empty());
    assert_eq!(
        store.latest(&web).await.expect("latest").as_ref(),
        Some(&*a)
    );
}

fn ids(records: &[DeploymentRecord]) -> Vec<&DeploymentId> {
    records.iter().map(|r| &r.id).collect()
}

/// Saves a new record of `service` in `phase`.
async fn saved(store: &dyn StateStore, service: &str, phase: Phase) -> DeploymentRecord {
    let mut r = sample_record(service);
    r.phase = phase;
    store.save(&mut r).await.expect("save");
    r
}

/// History: pages newest first, each pointing to the next until the oldest, `before` and
/// `limit` honoured, other services left out. Expects an empty store.
pub async fn history_contract(store: &dyn StateStore) {
    let web = ServiceName::new("web").expect("name");
    let mut w = Vec::new();
    for i in 0..5 {
        w.push(saved(store, "web", Phase::Done).await);
        if i == 2 {
            saved(store, "billing", Phase::Done).await;
        }
    }
    let newest_first: Vec<_> = w.iter().rev().map(|r| &r.id).collect();
    let mut page = Some(Page::first(2).unwrap());
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(p) = page {
        let got = store.history(&web, &p).await.expect("history");
        assert!(got.records.len() <= 2, "a page longer than its limit");
        seen.extend(got.records.iter().map(|r| r.id.clone()));
        page = got.next;
        pages += 1;
        assert!(pages <= 3, "history pages do not end");
    }
    assert_eq!(seen.iter().collect::<Vec<_>>(), newest_first, "pages of 2");
    assert_eq!(pages, 3, "5 records in pages of 2 are 3 pages");

    let all = store
        .history(&web, &Page::first(5).unwrap())
        .await
        .expect("history");
    assert_eq!(ids(&all.records), newest_first);
    assert_eq!(all.next, None, "a page that holds the rest points nowhere");
    let older = Page::first(10).unwrap().before(&w[2].id);
    let got = store.history(&web, &older).await.expect("history");
    assert_eq!(ids(&got.records), [&w[1].id, &w[0].id]);
    assert_eq!(got.next, None);
    let nobody = ServiceName::new("nobody").expect("name");
    let none = store
        .history(&nobody, &Page::first(3).unwrap())
        .await
        .expect("history");
    assert!(none.records.is_empty() && none.next.is_none());
    assert_eq!(store.latest(&web).await.expect("latest"), w.last().cloned());
    for limit in [0, Page::MAX_LIMIT + 1, usize::MAX] {
        let mut page = Page::first(1).expect("page");
        page.limit = limit;
        match store.history(&web, &page).await {
            Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "limit"),
            other => panic!("a page of {limit} records gave {other:?}, not InvalidInput"),
        }
    }
}

/// Asserts that each record is gone from the store.
async fn assert_trimmed(
    store: &dyn StateStore,
    records: impl IntoIterator<Item = &DeploymentRecord>,
) {
    for gone in records {
        match store.load(&gone.id).await {
            Err(Error::NotFound { .. }) => {}
            other => panic!("a trimmed record: expected NotFound, got {other:?}"),
        }
    }
}

/// Retention: failures never trim; a success deletes the finished records beyond the newest
/// 3 that are older than it, never an unfinished one, never another service's. Expects an
/// empty store that keeps 3 records per service ([`Retention::keep`](crate::Retention::keep)
/// of 3).
pub async fn retention_contract(store: &dyn StateStore) {
    let web = ServiceName::new("web").expect("name");
    let unfinished = saved(store, "web", Phase::Provision).await;
    let succeeded = saved(store, "web", Phase::Done).await;
    let other = saved(store, "billing", Phase::RolledBack).await;
    let mut failed = Vec::new();
    for _ in 0..5 {
        failed.push(saved(store, "web", Phase::RolledBack).await);
    }
    let all = store
        .history(&web, &Page::first(100).unwrap())
        .await
        .expect("history");
    assert_eq!(all.records.len(), 7, "failures trimmed the history");
    assert_eq!(
        store
            .load(&succeeded.id)
            .await
            .expect("the newest success is kept"),
        succeeded
    );

    let mut next = saved(store, "web", Phase::Provision).await;
    next.phase = Phase::Done;
    store.save(&mut next).await.expect("a success");
    let kept = store
        .history(&web, &Page::first(100).unwrap())
        .await
        .expect("history");
    assert_eq!(
        ids(&kept.records),
        [&next.id, &failed[4].id, &failed[3].id, &unfinished.id],
        "after a success: the newest 3, and the unfinished record"
    );
    assert_trimmed(store, [&succeeded, &failed[0]]).await;
    assert_eq!(
        store.load(&other.id).await.expect("another service's"),
        other
    );
    assert_eq!(
        ids(&store.unfinished(Some(&web)).await.expect("unfinished")),
        [&unfinished.id]
    );
    assert_eq!(
        store.latest(&web).await.expect("latest"),
        Some(next.clone())
    );
    // Failures after it leave the newest success in place, however old it gets.
    for _ in 0..4 {
        saved(store, "web", Phase::RolledBack).await;
    }
    assert_eq!(
        store.load(&next.id).await.expect("the newest success"),
        next
    );
}

/// Leases: exclusive while live, renewable, taken over once expired (naming the previous
/// holder), released only by their holder. Time is `clock`'s, handed to every call as the
/// engine hands its own.
pub async fn lease_contract(store: &dyn StateStore, clock: &ManualClock) {
    let web = ServiceName::new("web").expect("name");
    let (d1, d2) = (DeploymentId::generate(), DeploymentId::generate());
    let ttl = Duration::from_secs(30);
    let web = &web;
    let take = |d: &DeploymentId, who: &'static str| {
        let d = d.clone();
        let now = clock.now();
        async move { store.acquire_lease(web, &d, who, ttl, now).await }
    };
    let g1 = take(&d1, "one").await.expect("acquire");
    assert!(g1.replaced.is_none());
    match take(&d2, "two").await {
        Err(Error::Locked {
            holder, deployment, ..
        }) => {
            assert_eq!(holder, "one");
            assert_eq!(deployment, d1);
        }
        other => panic!("a live lease was taken: {other:?}"),
    }
    // Renewal keeps it alive past its first expiry.
    clock.advance(Duration::from_secs(20));
    let renewed = store
        .renew_lease(&g1.lease, ttl, clock.now())
        .await
        .expect("renew");
    assert!(renewed.expires_at > g1.lease.expires_at);
    clock.advance(Duration::from_secs(20));
    assert!(take(&d2, "two").await.is_err(), "a renewed lease was taken");
    // Once expired, another holder takes it over and learns whose it was.
    clock.advance(Duration::from_secs(31));
    let g2 = take(&d2, "two").await.expect("takeover");
    assert_eq!(g2.replaced.expect("the replaced lease").holder, "one");
    match store.renew_lease(&renewed, ttl, clock.now()).await {
        Err(Error::Locked { .. }) => {}
        other => panic!("renewing a lost lease: expected Locked, got {other:?}"),
    }
    // Releasing someone else's lease does nothing; releasing your own frees it.
    store.release_lease(&renewed).await.expect("release");
    assert!(
        take(&d1, "three").await.is_err(),
        "a release by another freed it"
    );
    store.release_lease(&g2.lease).await.expect("release");
    take(&d1, "three").await.expect("acquire after release");
}

/// Commands: appended, never lost when given at once, listed oldest first, a repeated id
/// never listed twice.
pub async fn command_contract(store: &dyn StateStore) {
    use crate::{Command, CommandRecord};
    let mut record = sample_record("web");
    store.save(&mut record).await.expect("save");
    let id = record.id.clone();
    assert!(store.commands(&id).await.expect("commands").is_empty());
    let at = SystemTime::UNIX_EPOCH;
    let approve = CommandRecord::new(id.clone(), Command::Approve, "a", at);
    let abort = CommandRecord::new(id.clone(), Command::Abort { reason: "b".into() }, "b", at);
    let (x, y) = tokio::join!(store.add_command(&approve), store.add_command(&abort));
    x.expect("add");
    y.expect("add");
    let _ = store.add_command(&approve).await;
    let listed = store.commands(&id).await.expect("commands");
    let ids: Vec<_> = listed.iter().map(|c| c.id.clone()).collect();
    let mut want = vec![approve.id.clone(), abort.id.clone()];
    want.sort();
    assert_eq!(ids, want, "commands lost, repeated or out of order");
    assert_eq!(listed.iter().find(|c| c.id == abort.id), Some(&abort));
    let other = sample_record("web");
    assert!(
        store
            .commands(&other.id)
            .await
            .expect("commands")
            .is_empty()
    );
}
