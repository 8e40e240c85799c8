//! [`Fleet`] on EC2 Auto Scaling: each fleet is a group of its own.
//!
//! One file per concern: `builder` (the service's launch template and a first group's
//! settings), `group` (groups read back as fleets), `copy` (what a new group takes from the
//! serving one: the documented copy list), `launch` (launch in named steps), `membership`
//! (target groups attached to the group, the router's seam), `versions` (the launch template
//! versions made for fleets: marked, found again, deleted only when marked) and `adopt` (a
//! group made elsewhere taken on as the service's fleet).

mod adopt;
mod builder;
mod copy;
mod group;
mod launch;
mod membership;
mod versions;

use std::sync::Arc;

use async_trait::async_trait;
use immutable_core::{
    AdoptMode, AdoptSpec, Cost, Fleet, FleetAdoption, FleetId, FleetInfo, FleetSpec, Operation,
    ResourceKind, Result, Scaling, ScalingControl, ServiceName, tags,
};

pub use builder::AsgFleetBuilder;

use crate::ec2::{describe_instances, tag_filter};
use crate::error::{Call, MapAws};
use crate::router::TargetMembership;
use crate::{AwsClients, LaunchTemplate};
use builder::FirstGroup;
use group::{fleet_of, is_deleting};
use membership::AsgMembership;

/// The scaling processes a held group has suspended: what changes its size on its own.
/// Launch, Terminate, HealthCheck and ReplaceUnhealthy go on, so a held group still replaces
/// an instance that fails.
pub(crate) const HELD: [&str; 3] = ["AlarmNotification", "ScheduledActions", "AZRebalance"];

/// Fleets as EC2 Auto Scaling groups, one group per fleet.
///
/// - A fleet is the group `imm-<service>-<key>`, launched from a version of the service's
///   launch template made for it (a copy of the source version with the deployment's image,
///   described `immutable:<service>:<group name>`), tagged with the ownership tags, its key,
///   capacity and image, all propagated to its instances.
/// - Its settings are copied from the group it replaces ([`FleetSpec::replaces`]), or taken
///   from the builder for a first deployment; the list is in the crate docs. The requested
///   capacity is the desired size and must lie within the minimum and maximum.
/// - `launch` is idempotent by key: the group's name is the key, and the launch template
///   version of an interrupted attempt is found again by its description.
/// - A new group is launched held ([`Scaling::Held`]: alarm-driven and scheduled scaling and
///   AZ rebalancing suspended, failed instances still replaced); the engine makes it active
///   once it takes all traffic, and holds the old one while it is the way back.
/// - Instances join target groups through the group: give [`AsgFleet::membership`] to the
///   router ([`AwsRouterBuilder::membership`](crate::AwsRouterBuilder::membership)), so
///   instances the group launches later join by themselves.
/// - `adopt` tags the one group that launched the serving instances (made by hand or by
///   another tool) as the service's fleet; the next deployment copies its settings and
///   retires it.
/// - `terminate` deletes the launch template version made for the fleet (unless
///   [`keep_template_versions`](AsgFleetBuilder::keep_template_versions)): the one the group's
///   `immutable:template-version` tag names, read first and deleted only when its description
///   is this service's and fleet's marker (another is left in place, with a `tracing` warning);
///   then the group with its instances (`ForceDelete`); a group being deleted counts as
///   terminated.
#[derive(Debug, Clone)]
pub struct AsgFleet {
    asg: aws_sdk_autoscaling::Client,
    ec2: aws_sdk_ec2::Client,
    template: LaunchTemplate,
    source_version: String,
    first: FirstGroup,
    delete_versions: bool,
}

/// The group, and fleet id, of a launch.
fn group_name(spec: &FleetSpec) -> FleetId {
    FleetId::new(format!("imm-{}-{}", spec.service, spec.key))
}

impl AsgFleet {
    /// Starts building a fleet backend over the given clients.
    pub fn builder(clients: &AwsClients) -> AsgFleetBuilder {
        Self::builder_from_clients(clients.autoscaling.clone(), clients.ec2.clone())
    }

    /// Starts building a fleet backend over one Auto Scaling and one EC2 client.
    pub fn builder_from_clients(
        asg: aws_sdk_autoscaling::Client,
        ec2: aws_sdk_ec2::Client,
    ) -> AsgFleetBuilder {
        AsgFleetBuilder {
            asg,
            ec2,
            template: None,
            source_version: None,
            first: FirstGroup::default(),
            delete_versions: true,
        }
    }

    /// How this backend's fleets join target groups, for the router: the router creates
    /// the group and attaches it to the fleet's Auto Scaling group.
    pub fn membership(&self) -> Arc<dyn TargetMembership> {
        Arc::new(AsgMembership::new(self.asg.clone()))
    }

    /// Suspends or resumes the processes a held group has suspended.
    async fn scale(&self, fleet: &FleetId, scaling: Scaling) -> Result<()> {
        let processes = Some(HELD.iter().map(|p| (*p).to_owned()).collect());
        let name = fleet.as_str();
        match scaling {
            Scaling::Held => {
                self.asg
                    .suspend_processes()
                    .auto_scaling_group_name(name)
                    .set_scaling_processes(processes)
                    .send()
                    .await
                    .aws(Call::new("SuspendProcesses", ResourceKind::Fleet, name))?;
            }
            _ => {
                self.asg
                    .resume_processes()
                    .auto_scaling_group_name(name)
                    .set_scaling_processes(processes)
                    .send()
                    .await
                    .aws(Call::new("ResumeProcesses", ResourceKind::Fleet, name))?;
            }
        }
        Ok(())
    }

    /// Whether a group that is gone was one of the service's fleets: EC2 still describes its
    /// instances, with the tags the group gave them, for a while after they are terminated.
    async fn was_terminated(&self, service: &ServiceName, fleet: &FleetId) -> Result<bool> {
        let filters = [
            tag_filter(tags::FLEET, fleet.as_str()),
            tag_filter(tags::SERVICE, service.as_str()),
        ];
        let found = describe_instances(&self.ec2, &filters, 1000, fleet.as_str()).await?;
        Ok(!found.is_empty())
    }
}

#[async_trait]
impl Fleet for AsgFleet {
    async fn launch(&self, spec: &FleetSpec) -> Result<FleetInfo> {
        self.launch_group(spec).await
    }

    async fn describe(&self, service: &ServiceName, fleet: &FleetId) -> Result<FleetInfo> {
        let group = self.owned_group(service, fleet).await?;
        Ok(fleet_of(service, &group))
    }

    async fn list(&self, service: &ServiceName) -> Result<Vec<FleetInfo>> {
        let groups = self.service_groups(service).await?;
        Ok(groups
            .iter()
            .filter(|g| !is_deleting(g))
            .map(|g| fleet_of(service, g))
            .collect())
    }

    async fn terminate(&self, service: &ServiceName, fleet: &FleetId) -> Result<()> {
        let group = match self.owned_group(service, fleet).await {
            Err(e) if e.is_not_found() && self.was_terminated(service, fleet).await? => {
                return Ok(());
            }
            other => other?,
        };
        if is_deleting(&group) {
            return Ok(());
        }
        // Only the version made for this fleet: an adopted group's template is its owner's,
        // and a tag naming a version the SDK did not make for this fleet is not obeyed.
        if let Some((template, version)) = group::tag(&group, tags::TEMPLATE_VERSION)
            .and_then(|v| v.split_once(':'))
            .filter(|_| self.delete_versions)
        {
            self.delete_own_version(service, fleet, template, version)
                .await?;
        }
        self.asg
            .delete_auto_scaling_group()
            .auto_scaling_group_name(fleet.as_str())
            .force_delete(true)
            .send()
            .await
            .aws(Call::new(
                "DeleteAutoScalingGroup",
                ResourceKind::Fleet,
                fleet.as_str(),
            ))?;
        Ok(())
    }

    fn cost(&self, _: &ServiceName, operation: Operation) -> Option<Cost> {
        crate::cost::asg_fleet(operation, self.delete_versions)
    }
}

#[async_trait]
impl ScalingControl for AsgFleet {
    async fn set_scaling(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
        scaling: Scaling,
    ) -> Result<()> {
        self.owned_group(service, fleet).await?;
        self.scale(fleet, scaling).await
    }
}

#[async_trait]
impl FleetAdoption for AsgFleet {
    async fn adopt(&self, spec: &AdoptSpec, mode: AdoptMode) -> Result<FleetInfo> {
        self.adopt_group(spec, mode).await
    }
}
