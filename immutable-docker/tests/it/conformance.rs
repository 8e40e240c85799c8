//! The Docker backend runs the same conformance suite as every backend: Docker images,
//! containers on the system daemon, and a real HAProxy.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{Lab, settings};
use immutable_core::conformance::{self, Backends, Fixture, UnknownIds};
use immutable_core::{ImageRef, ServiceName};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_backend_passes_the_conformance_suite() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start(&["web", "billing"]).await;
    lab.import_demo("web", "web-v1", "v1", false).await;
    lab.import_demo("web", "web-v2", "v2", false).await;
    lab.import_demo("billing", "billing-v1", "v3", false).await;
    // Named like web's: names are scoped to their service.
    lab.import_demo("billing", "web-v1", "v4", false).await;
    let web = ServiceName::new(lab.svc("web")).unwrap();
    let fixture = Fixture {
        service: web.clone(),
        v1: ImageRef::name("web-v1"),
        v2: ImageRef::name("web-v2"),
        capacity: 2,
        settings: settings(),
        wait_timeout: Duration::from_secs(30),
        unknown: UnknownIds {
            image: format!("sha256:{}", "0".repeat(64)).into(),
            fleet: "dk-0000000000000000".into(),
            target: "tg-0000000000000000".into(),
        },
        other: Some((
            ServiceName::new(lab.svc("billing")).unwrap(),
            ImageRef::name("billing-v1"),
        )),
    };
    let router = Arc::new(lab.router.clone());
    let backends = Backends::new(
        Arc::new(lab.images.clone()),
        Arc::new(lab.fleet.clone()),
        router.clone(),
    )
    .with_preview(router);
    conformance::run_all(&backends, &fixture).await;
    // Exactly the final fleet's servers remain in HAProxy, and its containers on the daemon.
    let servers = lab.router.servers(&web).await.unwrap();
    assert_eq!(servers.len(), 2, "servers left in HAProxy: {servers:?}");
    let fleets = immutable_core::Fleet::list(&lab.fleet, &web).await.unwrap();
    assert_eq!(fleets.len(), 1, "fleets left: {fleets:?}");
}
