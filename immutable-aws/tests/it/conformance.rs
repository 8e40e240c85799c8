//! The AWS backend passes the same conformance suite as the mock, against moto's server.

use crate::common::*;
use immutable_aws::instance_backends;
use immutable_core::conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_passes_the_conformance_suite() {
    let w = World::new().await;
    // billing has an image named like web's (an AMI shared from another account, say):
    // names are scoped.
    w.bake_conformance_images().await;
    let backends = instance_backends(w.images(), w.fleet(), w.router());
    let fixture = w.conformance_fixture("fleet-unknown");
    conformance::run_all(&backends, &fixture).await;
}
