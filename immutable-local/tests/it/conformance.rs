//! The local backend runs the same conformance suite as every backend, with real processes
//! behind a real HAProxy.

use std::time::Duration;

use crate::common::{Lab, settings};
use immutable_core::conformance::{self, Backends, Fixture, UnknownIds};
use immutable_core::{ImageRef, ServiceName};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_backend_passes_the_conformance_suite() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start(&["web", "billing"]).await;
    lab.import_demo("web", "web-v1", false).await;
    lab.import_demo("web", "web-v2", false).await;
    lab.import_demo("billing", "billing-v1", false).await;
    // Same name as web's: names are scoped to their service.
    lab.import_demo("billing", "web-v1", false).await;
    let fixture = Fixture {
        service: ServiceName::new("web").unwrap(),
        v1: ImageRef::name("web-v1"),
        v2: ImageRef::name("web-v2"),
        capacity: 2,
        settings: settings(),
        wait_timeout: Duration::from_secs(20),
        unknown: UnknownIds {
            image: format!("img-{}", "0".repeat(32)).into(),
            fleet: "fl-0000000000000000".into(),
            target: "tg-0000000000000000".into(),
        },
        other: Some((
            ServiceName::new("billing").unwrap(),
            ImageRef::name("billing-v1"),
        )),
    };
    let router = std::sync::Arc::new(lab.router.clone());
    let backends = Backends::new(
        std::sync::Arc::new(lab.images.clone()),
        std::sync::Arc::new(lab.fleet.clone()),
        router.clone(),
    )
    .with_preview(router);
    conformance::run_all(&backends, &fixture).await;
    // Exactly the final fleet's servers remain in HAProxy.
    let web = ServiceName::new("web").unwrap();
    let servers = lab.router.servers(&web).await.unwrap();
    assert_eq!(servers.len(), 2, "servers left in HAProxy: {servers:?}");
}
