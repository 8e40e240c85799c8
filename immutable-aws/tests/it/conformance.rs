//! The AWS backend passes the same conformance suite as the mock, against moto's server.

use std::sync::Arc;

use crate::common::*;
use immutable_core::conformance::{self, Backends};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_passes_the_conformance_suite() {
    let w = World::new().await;
    // billing has an image named like web's (an AMI shared from another account, say):
    // names are scoped.
    w.bake_conformance_images().await;
    let (fleet, router) = (Arc::new(w.fleet()), Arc::new(w.router()));
    let backends = Backends::new(Arc::new(w.images()), fleet.clone(), router.clone())
        .with_preview(router.clone())
        .with_adoption(fleet, router);
    let fixture = w.conformance_fixture("fleet-unknown");
    conformance::run_all(&backends, &fixture).await;
}
