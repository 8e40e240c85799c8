//! [`Fleet`] on EC2 instances: the type and its trait impl. The launch steps are in `launch`,
//! the configuration in `builder`, fleets read back from tagged instances in `group`, and
//! instances launched by hand adopted as a fleet in `adopt`.

mod adopt;
mod builder;
mod group;
mod known;
mod launch;
mod members;

use async_trait::async_trait;
use immutable_core::{
    AdoptMode, AdoptSpec, Cost, Error, Fleet, FleetAdoption, FleetId, FleetInfo, FleetKey,
    FleetSpec, Operation, ResourceKind, Result, ServiceName, tags,
};

pub use builder::{AwsFleetBuilder, LaunchTemplate};

use crate::AwsClients;
use crate::ec2::{
    Described, describe_instances, describe_instances_by_id, live_instances, tag_filter,
};
use crate::error::{Call, MapAws};
use builder::LaunchSettings;
use group::group;
use known::{KnownInstances, still_whole};
use members::members_by_tags;

const TERMINATE_BATCH: usize = 1000;

/// Fleets of EC2 instances, one `RunInstances` per subnet.
///
/// - Every instance and its volumes are tagged with the service, fleet, deployment, key and
///   capacity; the tags are the fleet: it has no other AWS resource.
/// - `launch` first looks the key up by tag, so launching twice launches once (moto ignores
///   `ClientToken`; real AWS honours the token this backend sends too). A fleet short of its
///   capacity is topped up.
/// - Instances are spread round-robin over the subnets, one all-or-nothing `RunInstances` per
///   subnet. When a subnet's call fails (a partial launch of the fleet), its share is asked of
///   the subnets that worked; if it still cannot be filled, `launch` fails with
///   [`Error::Provider`] naming each subnet's error. The launched instances keep their tags, so
///   the engine's rollback finds and terminates them.
/// - Reads are paginated (`page_size`, 5 to 1000); terminations go in batches of 1,000.
/// - `adopt` gives instances launched by hand the tags a launch writes (their volumes keep
///   theirs), so the fleet they form is found, replaced and terminated like a launched one.
#[derive(Debug, Clone)]
pub struct AwsFleet {
    ec2: aws_sdk_ec2::Client,
    settings: LaunchSettings,
    known: KnownInstances,
}

/// The id of the fleet launched under `key`.
fn fleet_id(key: &FleetKey) -> FleetId {
    FleetId::new(format!("fleet-{key}"))
}

impl AwsFleet {
    /// Starts building a fleet backend over the given clients.
    pub fn builder(clients: &AwsClients) -> AwsFleetBuilder {
        Self::builder_from_client(clients.ec2.clone())
    }

    /// Starts building a fleet backend over one EC2 client.
    pub fn builder_from_client(ec2: aws_sdk_ec2::Client) -> AwsFleetBuilder {
        AwsFleetBuilder {
            ec2,
            settings: LaunchSettings {
                page_size: 1000,
                concurrent_launches: 4,
                ..LaunchSettings::default()
            },
        }
    }

    /// Every instance matching `filters`, all pages.
    async fn instances(
        &self,
        filters: &[aws_sdk_ec2::types::Filter],
        what: &str,
    ) -> Result<Vec<Described>> {
        describe_instances(&self.ec2, filters, self.settings.page_size, what).await
    }

    /// The fleet's instances in every state, checked for ownership: by id when this backend
    /// knows them and they are still the whole fleet, else by a scan of the fleet's tag.
    async fn fleet_instances(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
    ) -> Result<Vec<Described>> {
        if let Some(ids) = self.known.ids(fleet) {
            match describe_instances_by_id(&self.ec2, &ids, fleet.as_str()).await {
                Ok(found) if still_whole(service, fleet, &ids, &found) => return Ok(found),
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let found = self
            .instances(&[tag_filter(tags::FLEET, fleet.as_str())], fleet.as_str())
            .await?;
        self.known.remember(fleet, &found);
        if found.is_empty() {
            return Err(Error::not_found(ResourceKind::Fleet, fleet.as_str()));
        }
        if found
            .iter()
            .any(|i| i.tags.get(tags::SERVICE).map(String::as_str) != Some(service.as_str()))
        {
            return Err(Error::NotOwned {
                kind: ResourceKind::Fleet,
                id: fleet.to_string(),
                service: service.to_string(),
            });
        }
        Ok(found)
    }
}

#[async_trait]
impl Fleet for AwsFleet {
    async fn launch(&self, spec: &FleetSpec) -> Result<FleetInfo> {
        self.launch_fleet(spec).await
    }

    fn cost(&self, _: &ServiceName, operation: Operation) -> Option<Cost> {
        crate::cost::fleet(
            operation,
            self.settings.subnets.len(),
            self.settings.page_size,
        )
    }

    async fn describe(&self, service: &ServiceName, fleet: &FleetId) -> Result<FleetInfo> {
        let found = self.fleet_instances(service, fleet).await?;
        group(service, found)
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found(ResourceKind::Fleet, fleet.as_str()))
    }

    async fn list(&self, service: &ServiceName) -> Result<Vec<FleetInfo>> {
        let found = self
            .instances(
                &[
                    tag_filter(tags::SERVICE, service.as_str()),
                    live_instances(),
                ],
                service.as_str(),
            )
            .await?;
        Ok(group(service, found))
    }

    async fn terminate(&self, service: &ServiceName, fleet: &FleetId) -> Result<()> {
        let ids = members_by_tags(&self.ec2, service, fleet).await?;
        for batch in ids.chunks(TERMINATE_BATCH) {
            self.ec2
                .terminate_instances()
                .set_instance_ids(Some(batch.to_vec()))
                .send()
                .await
                .aws(Call::new(
                    "TerminateInstances",
                    ResourceKind::Fleet,
                    fleet.as_str(),
                ))?;
        }
        self.known.forget(fleet);
        Ok(())
    }
}

#[async_trait]
impl FleetAdoption for AwsFleet {
    async fn adopt(&self, spec: &AdoptSpec, mode: AdoptMode) -> Result<FleetInfo> {
        self.adopt_instances(spec, mode).await
    }
}
