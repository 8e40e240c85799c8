//! The Provision phase: hold the old (blue) fleet at its size, then launch the new (green)
//! fleet, idempotent by the deployment id.

use tracing::instrument;

use crate::engine::run::{Run, Stop, provider_failure};
use crate::{EventKind, FleetSpec, Phase, Scaling};

impl Run<'_> {
    /// Holds blue at its size (so the fast-rollback fleet keeps it until the deployment
    /// ends), then launches the green fleet; the deployment id is the idempotency key.
    #[instrument(skip_all, fields(deployment = %self.rec.id, service = %self.rec.service()))]
    pub(in crate::engine) async fn provision(&mut self) -> Result<(), Stop> {
        if let (Some(blue), Some(scaling)) = (
            self.rec.blue.as_ref().map(|b| b.fleet.clone()),
            self.engine.scaling.clone(),
        ) {
            let service = self.rec.service().clone();
            self.call("hold old fleet", || {
                scaling.set_scaling(&service, &blue, Scaling::Held)
            })
            .await
            .map_err(provider_failure(
                Phase::Provision,
                "holding the old fleet's size",
            ))?;
        }
        let spec = FleetSpec::new(
            self.rec.service().clone(),
            self.rec.id.clone(),
            self.rec.image.id.clone(),
            self.rec.spec.capacity,
        )
        .replacing(self.rec.blue.as_ref().map(|b| b.fleet.clone()));
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
