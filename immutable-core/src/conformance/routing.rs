//! The guarantees of routing: a split applied at once, and the serving target kept (I2).

use super::{Backends, Fixture, cleanup, launch, resolve, wait_running};
use crate::{Error, Routing};

/// [`TrafficRouter::set_weights`](crate::TrafficRouter::set_weights) applies a whole split at
/// once, and reads it back; [`attach`](crate::TrafficRouter::attach) is idempotent per fleet.
pub async fn weights_are_set_in_one_call(b: &Backends, f: &Fixture) {
    let s = &f.service;
    let before = b.router.routing(s).await.expect("read routing");
    let image = resolve(b, f, &f.v1).await;
    let fa = launch(b, s, &image.id, f.capacity).await;
    let fb = launch(b, s, &image.id, f.capacity).await;
    let fa = wait_running(b, f, s, &fa.id).await;
    let fb = wait_running(b, f, s, &fb.id).await;
    // The first attach makes it; the second must find that target.
    let ta = b.router.attach(&fa).await.expect("attach a");
    let ta2 = b.router.attach(&fa).await.expect("attach a again");
    assert_eq!(ta.id, ta2.id, "attach is not idempotent per fleet");
    let tb = b.router.attach(&fb).await.expect("attach b");
    assert_eq!(
        b.router.routing(s).await.expect("routing"),
        before,
        "attach changed routing"
    );
    let targets = b.router.targets(s).await.expect("targets");
    for t in [&ta, &tb] {
        assert!(
            targets.iter().any(|x| x.id == t.id && x.fleet == t.fleet),
            "{} not listed",
            t.id
        );
    }

    let split = Routing::new([(ta.id.clone(), 30), (tb.id.clone(), 70)]).expect("split");
    b.router.set_weights(s, &split).await.expect("set 30/70");
    assert_eq!(b.router.routing(s).await.expect("routing"), split);
    let all_b = Routing::all_to(&tb.id);
    b.router.set_weights(s, &all_b).await.expect("set 0/100");
    assert_eq!(b.router.routing(s).await.expect("routing"), all_b);

    b.router
        .set_weights(s, &before)
        .await
        .expect("restore routing");
    cleanup(b, s, Some(&ta.id), &fa.id).await;
    cleanup(b, s, Some(&tb.id), &fb.id).await;
}

/// The target that takes traffic cannot be detached (I2).
pub async fn refuses_to_detach_serving_target(b: &Backends, f: &Fixture) {
    let s = &f.service;
    let before = b.router.routing(s).await.expect("read routing");
    let image = resolve(b, f, &f.v1).await;
    let fleet = launch(b, s, &image.id, f.capacity).await;
    let fleet = wait_running(b, f, s, &fleet.id).await;
    let target = b.router.attach(&fleet).await.expect("attach");
    b.router
        .set_weights(s, &Routing::all_to(&target.id))
        .await
        .expect("route to it");
    match b.router.detach(s, &target.id).await {
        Err(Error::TargetServing { .. }) => {}
        other => {
            panic!("detaching the serving target: expected Error::TargetServing, got {other:?}")
        }
    }
    let targets = b.router.targets(s).await.expect("targets");
    assert!(
        targets.iter().any(|t| t.id == target.id),
        "the serving target vanished"
    );
    assert_eq!(
        b.router.routing(s).await.expect("routing"),
        Routing::all_to(&target.id)
    );
    b.router
        .set_weights(s, &before)
        .await
        .expect("restore routing");
    cleanup(b, s, Some(&target.id), &fleet.id).await;
}
