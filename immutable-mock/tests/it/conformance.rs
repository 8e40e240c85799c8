//! The mock runs the same conformance suite as every backend.

use std::time::Duration;

use immutable_core::conformance::{self, Backends, Fixture, UnknownIds};
use immutable_core::{ImageRef, ServiceName, Settings};
use immutable_mock::{MockCloud, Op};

fn fixture(cloud: &MockCloud) -> Fixture {
    cloud.add_image("web", "web-v1");
    cloud.add_image("web", "web-v2");
    cloud.add_image("billing", "billing-v1");
    // Same name as web's: names are scoped to their service.
    cloud.add_image("billing", "web-v1");
    Fixture {
        service: ServiceName::new("web").unwrap(),
        v1: ImageRef::name("web-v1"),
        v2: ImageRef::name("web-v2"),
        capacity: 3,
        settings: Settings::default().with_poll_interval(Duration::from_secs(5)),
        wait_timeout: Duration::from_secs(600),
        unknown: UnknownIds {
            image: "ami-999999".into(),
            fleet: "fleet-999999".into(),
            target: "tg-999999".into(),
        },
        other: Some((
            ServiceName::new("billing").unwrap(),
            ImageRef::name("billing-v1"),
        )),
    }
}

#[tokio::test(start_paused = true)]
async fn mock_passes_the_conformance_suite_with_every_capability() {
    let cloud = MockCloud::new();
    let f = fixture(&cloud);
    conformance::run_all(&cloud.backends(), &f).await;
    // Each capability's contract ran: its calls are in the log.
    for op in [
        Op::Preview,
        Op::SetScaling,
        Op::Adoptable,
        Op::PreviewAdoption,
    ] {
        assert!(cloud.call_count(op) > 0, "the suite never called {op}");
    }
}

#[tokio::test(start_paused = true)]
async fn without_capabilities_the_suite_makes_no_capability_call() {
    let cloud = MockCloud::new();
    let f = fixture(&cloud);
    conformance::run_all(&Backends::from_one(cloud.clone()), &f).await;
    for op in [
        Op::Preview,
        Op::SetScaling,
        Op::Adoptable,
        Op::PreviewAdoption,
    ] {
        assert_eq!(
            cloud.call_count(op),
            0,
            "{op} called without the capability"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn weights_change_in_exactly_one_call() {
    let cloud = MockCloud::new();
    let f = fixture(&cloud);
    let b = Backends::from_one(cloud.clone());
    cloud.clear_calls();
    conformance::weights_are_set_in_one_call(&b, &f).await;
    // Two splits set, plus the restore: one call each, never one per target.
    assert_eq!(cloud.call_count(Op::SetWeights), 3);
}
