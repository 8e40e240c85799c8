//! Real finished records to copy: a canary without approval gates that succeeded, and one
//! that a failed check rolled back, each with the timeline the engine writes, from
//! deployments on a mock cloud.

use std::time::Duration;

use immutable_core::{
    DeploymentRecord, DeploymentRequest, Engine, ImageRef, InMemoryStore, Phase, Settings, Steps,
};
use immutable_mock::{FailsAtWeight, MockCloud, Timings};

fn request(version: u32) -> DeploymentRequest {
    DeploymentRequest::new("web", ImageRef::name(format!("web-v{version}")))
        .capacity(3)
        .bake_time(Duration::ZERO)
}

/// A canary (10, 50, 100 %) that finished, and one rolled back by a check failing at 50 %.
pub(super) async fn finished_canaries() -> [DeploymentRecord; 2] {
    let cloud = MockCloud::with_timings(Timings::instant());
    for v in 1..=3 {
        cloud.add_image("web", &format!("web-v{v}"));
    }
    let engine = Engine::builder()
        .backends(cloud.backends())
        .store(InMemoryStore::new())
        .settings(Settings::default().with_poll_interval(Duration::from_millis(1)))
        .check("error-rate", FailsAtWeight::new(50))
        .build()
        .expect("an engine on a mock cloud");
    let canary = || Steps::canary([10, 50, 100], Duration::from_millis(1));
    let deploy = |request: DeploymentRequest| {
        let engine = engine.clone();
        async move { engine.deploy(request).await.expect("a deployment").record }
    };
    deploy(request(1)).await;
    let done = deploy(request(2).strategy(canary())).await;
    let checked = canary().with_checks(Vec::<String>::new(), ["error-rate"]);
    let rolled_back = deploy(request(3).strategy(checked)).await;
    assert_eq!(done.phase, Phase::Done, "the template canary finished");
    assert_eq!(
        rolled_back.phase,
        Phase::RolledBack,
        "the check rolled it back"
    );
    [done, rolled_back]
}
