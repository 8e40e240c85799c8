//! The AWS backend passes the same conformance suite as the mock, against moto's server.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use immutable_core::conformance::{self, Backends, Fixture, UnknownIds};
use immutable_core::{ImageRef, ServiceName};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_passes_the_conformance_suite() {
    let w = World::new().await;
    w.bake_image(SERVICE, "web-v1").await;
    w.bake_image(SERVICE, "web-v2").await;
    w.bake_image("billing", "billing-v1").await;
    // Same name as web's (an AMI shared from another account, say): names are scoped.
    w.bake_image("billing", "web-v1").await;
    let backends = Backends {
        images: Arc::new(w.images()),
        fleet: Arc::new(w.fleet()),
        router: Arc::new(w.router()),
    };
    let fixture = Fixture {
        service: ServiceName::new(SERVICE).unwrap(),
        v1: ImageRef::name("web-v1"),
        v2: ImageRef::name("web-v2"),
        capacity: 3,
        settings: engine_settings(),
        wait_timeout: Duration::from_secs(60),
        unknown: UnknownIds {
            image: "ami-0123456789abcdef0".into(),
            fleet: "fleet-unknown".into(),
            target: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nope/0123456789abcdef"
                .into(),
        },
        other: Some((ServiceName::new("billing").unwrap(), ImageRef::name("billing-v1"))),
    };
    conformance::run_all(&backends, &fixture).await;
}
