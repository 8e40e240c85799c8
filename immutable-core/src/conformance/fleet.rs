//! The guarantees of launch and terminate: idempotent by key, and gone once terminated.

use super::{Backends, Fixture, cleanup, launch, resolve};
use crate::{DeploymentId, Error, FleetSpec};

/// Launching the same key twice returns the same fleet and launches nothing more.
pub async fn launch_is_idempotent(b: &Backends, f: &Fixture) {
    let image = resolve(b, f, &f.v1).await;
    let spec = FleetSpec::new(
        f.service.clone(),
        DeploymentId::generate(),
        image.id,
        f.capacity,
    );
    let first = b.fleet.launch(&spec).await.expect("first launch");
    let second = b
        .fleet
        .launch(&spec)
        .await
        .expect("second launch of the same key");
    assert_eq!(
        first.id, second.id,
        "a second launch of one key made a second fleet"
    );
    let fleets = b.fleet.list(&f.service).await.expect("list fleets");
    let same_key: Vec<_> = fleets.iter().filter(|x| x.key == spec.key).collect();
    assert_eq!(
        same_key.len(),
        1,
        "list shows {} fleets for one key",
        same_key.len()
    );
    let live = same_key[0]
        .instances
        .iter()
        .filter(|i| i.state.is_live())
        .count();
    assert_eq!(
        live, f.capacity as usize,
        "the fleet has {live} live instances, not {}",
        f.capacity
    );
    assert_eq!(same_key[0].image, spec.image);
    cleanup(b, &f.service, None, &first.id).await;
}

/// Terminating twice succeeds, and a terminated fleet is no longer listed.
pub async fn terminate_is_idempotent(b: &Backends, f: &Fixture) {
    let image = resolve(b, f, &f.v1).await;
    let fleet = launch(b, &f.service, &image.id, f.capacity).await;
    b.fleet
        .terminate(&f.service, &fleet.id)
        .await
        .expect("terminate");
    b.fleet
        .terminate(&f.service, &fleet.id)
        .await
        .expect("terminating a terminated fleet must succeed");
    let listed = b.fleet.list(&f.service).await.expect("list fleets");
    assert!(
        listed.iter().all(|x| x.id != fleet.id),
        "terminated fleet {} is still listed",
        fleet.id
    );
    match b.fleet.describe(&f.service, &fleet.id).await {
        Ok(info) => assert!(
            !info.is_live(),
            "terminated fleet still has live instances: {info:?}"
        ),
        Err(Error::NotFound { .. }) => {}
        Err(e) => panic!("describe of a terminated fleet: {e}"),
    }
}
