//! Where a fleet's running instances answer, for the router.

use std::net::SocketAddr;

use async_trait::async_trait;
use immutable_core::{FleetId, InstanceId, InstanceState, Result, ServiceName};
use immutable_local::InstanceAddresses;

use super::DockerFleet;
use super::containers::state_of;

impl DockerFleet {
    /// The address of each running instance of the service's `fleet`.
    ///
    /// # Errors
    /// As [`describe`](immutable_core::Fleet::describe).
    pub async fn addresses(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
    ) -> Result<Vec<(InstanceId, SocketAddr)>> {
        let state = self.owned(service, fleet).await?;
        let found = self.containers_of(&state).await?;
        let mut addresses = Vec::new();
        for placed in &state.instances {
            let running = found
                .get(placed.id.as_str())
                .is_some_and(|c| state_of(c) == InstanceState::Running);
            if running {
                let host = self.host(&placed.host)?;
                addresses.push((
                    placed.id.clone(),
                    SocketAddr::new(host.address(), placed.port),
                ));
            }
        }
        Ok(addresses)
    }
}

#[async_trait]
impl InstanceAddresses for DockerFleet {
    async fn addresses(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
    ) -> Result<Vec<(InstanceId, SocketAddr)>> {
        DockerFleet::addresses(self, service, fleet).await
    }
}
