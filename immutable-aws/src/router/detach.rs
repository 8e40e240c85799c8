//! `detach` in named steps: refuse the group that serves, take it off the preview listener,
//! have its fleet leave it (when fleets join groups themselves), deregister its instances,
//! wait while they drain, delete it.

use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use immutable_core::{
    Error, HealthState, InstanceHealth, ResourceKind, Result, Routing, ServiceName, TargetId,
};
use tokio::time::Instant;

use super::actions::{routing_of, with_routing};
use super::{AwsRouter, EntryPoint, TARGETS_BATCH};
use crate::cost::DEFAULT_DEREGISTRATION_DELAY;
use crate::error::{Call, MapAws};

impl AwsRouter {
    /// Drains and deletes one of the service's target groups that takes no traffic.
    pub(super) async fn detach_target(
        &self,
        service: &ServiceName,
        target: &TargetId,
    ) -> Result<()> {
        let entry = self.entry(service)?;
        self.ensure_owned(service, target).await?;
        let registered = if entry.preview_listener().is_none() && self.membership.is_none() {
            // Nothing changes the group between the refusal and the read of its instances:
            // both reads at once.
            let (refused, registered) = futures::join!(
                self.refuse_serving(service, entry, target),
                self.target_health(target)
            );
            refused?;
            registered?
        } else {
            self.refuse_serving(service, entry, target).await?;
            self.clear_preview(entry, target).await?;
            self.leave(service, target).await?;
            self.target_health(target).await?
        };
        self.deregister(target, &registered).await?;
        if !registered.is_empty() {
            self.await_drained(target).await?;
        }
        self.delete_group(target).await
    }

    /// [`Error::TargetServing`] while the entry point sends the group any traffic (I2).
    async fn refuse_serving(
        &self,
        service: &ServiceName,
        entry: &EntryPoint,
        target: &TargetId,
    ) -> Result<()> {
        let routing = routing_of(&self.actions(entry).await?);
        if routing.weight(target) > 0 {
            return Err(Error::TargetServing {
                service: service.clone(),
                target: target.clone(),
            });
        }
        Ok(())
    }

    /// Has the fleet behind the group stop adding instances to it, when fleets join their
    /// groups themselves.
    async fn leave(&self, service: &ServiceName, target: &TargetId) -> Result<()> {
        let Some(membership) = &self.membership else {
            return Ok(());
        };
        let tags = self.group_tags(&[target.to_string()]).await?;
        if let Some(fleet) = tags.get(target.as_str()).and_then(|t| t.fleet.clone()) {
            membership.leave(service, &fleet, target.as_str()).await?;
        }
        Ok(())
    }

    /// Points the preview listener at nothing if it shows the group.
    async fn clear_preview(&self, entry: &EntryPoint, target: &TargetId) -> Result<()> {
        let Some(preview) = entry.preview_listener() else {
            return Ok(());
        };
        let actions = self.listener_actions(preview).await?;
        if routing_of(&actions).weight(target) > 0 {
            self.write_listener(preview, with_routing(&actions, &Routing::empty()))
                .await?;
        }
        Ok(())
    }

    /// Deregisters the instances not draining already, 1,000 per call.
    async fn deregister(&self, target: &TargetId, registered: &[InstanceHealth]) -> Result<()> {
        let ids: Vec<TargetDescription> = registered
            .iter()
            .filter(|h| h.state != HealthState::Draining)
            .map(|h| TargetDescription::builder().id(h.instance.as_str()).build())
            .collect();
        for batch in ids.chunks(TARGETS_BATCH) {
            self.elb
                .deregister_targets()
                .target_group_arn(target.as_str())
                .set_targets(Some(batch.to_vec()))
                .send()
                .await
                .aws(Call::new(
                    "DeregisterTargets",
                    ResourceKind::Target,
                    target.as_str(),
                ))?;
        }
        Ok(())
    }

    /// Waits while any instance drains: connections drain for at most the group's delay, then
    /// the group can go. The delay is read only once an instance is seen draining.
    async fn await_drained(&self, target: &TargetId) -> Result<()> {
        let mut deadline = None;
        loop {
            let draining = self
                .target_health(target)
                .await?
                .iter()
                .filter(|h| h.state == HealthState::Draining)
                .count();
            if draining == 0 {
                return Ok(());
            }
            let deadline = match deadline {
                Some(at) => at,
                None => {
                    let delay = self
                        .deregistration_delay(target)
                        .await?
                        .unwrap_or(DEFAULT_DEREGISTRATION_DELAY);
                    *deadline.insert(Instant::now() + delay + self.drain_poll)
                }
            };
            if Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(self.drain_poll).await;
        }
    }

    async fn delete_group(&self, target: &TargetId) -> Result<()> {
        self.elb
            .delete_target_group()
            .target_group_arn(target.as_str())
            .send()
            .await
            .aws(Call::new(
                "DeleteTargetGroup",
                ResourceKind::Target,
                target.as_str(),
            ))?;
        self.forget(target.as_str());
        Ok(())
    }
}
