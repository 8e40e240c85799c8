//! The Provision phase: launch the new (green) fleet, idempotent by the deployment id.

use tracing::instrument;

use super::run::{Run, Stop, provider_failure};
use crate::{EventKind, FleetSpec, Phase};

impl Run<'_> {
    /// Launches the green fleet; the deployment id is the idempotency key.
    #[instrument(skip_all, fields(deployment = %self.rec.id, service = %self.rec.service()))]
    pub(super) async fn provision(&mut self) -> Result<(), Stop> {
        let spec = FleetSpec::new(
            self.rec.service().clone(),
            self.rec.id.clone(),
            self.rec.image.id.clone(),
            self.rec.spec.capacity,
        );
        let fleet = self
            .call("launch fleet", || self.engine.fleet.launch(&spec))
            .await
            .map_err(provider_failure(
                Phase::Provision,
                "launching the new fleet",
            ))?;
        self.rec.green.fleet = Some(fleet.id.clone());
        self.emit(EventKind::FleetLaunched {
            fleet: fleet.id,
            instances: fleet.instances.len(),
        });
        self.advance(Phase::Attach, None).await?;
        Ok(())
    }
}
