//! The [`TrafficRouter`] impl: each operation checks the service and ownership, then calls the
//! concern that does the work.

use async_trait::async_trait;
use immutable_core::{
    Adoptable, Cost, Error, FleetInfo, HealthReport, Operation, PreviewRouter, ResourceKind,
    Result, Routing, ServiceName, Target, TargetAdoption, TargetId, TrafficRouter,
};

use super::AwsRouter;
use super::actions::{routing_of, with_routing};
use super::naming::name_prefix;
use crate::error::{Call, MapAws};
use crate::paginate::all_pages;

/// Target groups per `DescribeTargetGroups` page.
const GROUPS_PAGE: i32 = 400;

impl AwsRouter {
    /// The ARNs of every group whose name carries the service's prefix, all pages.
    async fn groups_named_for(&self, service: &ServiceName) -> Result<Vec<String>> {
        let prefix = &name_prefix(service);
        all_pages(|marker| async move {
            let out = self
                .elb
                .describe_target_groups()
                .page_size(GROUPS_PAGE)
                .set_marker(marker)
                .send()
                .await
                .aws(Call::new(
                    "DescribeTargetGroups",
                    ResourceKind::Target,
                    service.as_str(),
                ))?;
            let found = out
                .target_groups()
                .iter()
                .filter(|g| {
                    g.target_group_name()
                        .is_some_and(|n| n.starts_with(prefix.as_str()))
                })
                .filter_map(|g| g.target_group_arn().map(str::to_owned))
                .collect();
            Ok((found, out.next_marker().map(str::to_owned)))
        })
        .await
    }
}

#[async_trait]
impl TrafficRouter for AwsRouter {
    async fn attach(&self, fleet: &FleetInfo) -> Result<Target> {
        self.attach_fleet(fleet).await
    }

    async fn targets(&self, service: &ServiceName) -> Result<Vec<Target>> {
        let entry = self.entry(service)?;
        let (mut candidates, actions) =
            futures::try_join!(self.groups_named_for(service), self.actions(entry))?;
        // An adopted group keeps the name it was made with: find it where traffic goes.
        for forwarded in routing_of(&actions).weights().keys() {
            if !candidates.iter().any(|c| c == forwarded.as_str()) {
                candidates.push(forwarded.to_string());
            }
        }
        let tags = self.group_tags(&candidates).await?;
        Ok(candidates
            .into_iter()
            .filter_map(|arn| {
                let t = tags.get(&arn)?;
                if t.owner.as_ref() != Some(service) {
                    return None;
                }
                let fleet = t.fleet.clone()?;
                Some(Target::new(TargetId::new(arn), fleet, service.clone()))
            })
            .collect())
    }

    async fn health(&self, service: &ServiceName, target: &TargetId) -> Result<HealthReport> {
        self.ensure_owned(service, target).await?;
        Ok(HealthReport {
            target: target.clone(),
            instances: self.target_health(target).await?,
        })
    }

    async fn routing(&self, service: &ServiceName) -> Result<Routing> {
        let entry = self.entry(service)?;
        Ok(routing_of(&self.actions(entry).await?))
    }

    async fn set_weights(&self, service: &ServiceName, routing: &Routing) -> Result<()> {
        let entry = self.entry(service)?;
        for target in routing.weights().keys() {
            self.ensure_owned(service, target).await?;
        }
        let current = self.actions(entry).await?;
        self.write_actions(entry, with_routing(&current, routing))
            .await
    }

    async fn detach(&self, service: &ServiceName, target: &TargetId) -> Result<()> {
        self.detach_target(service, target).await
    }

    fn cost(&self, service: &ServiceName, operation: Operation) -> Option<Cost> {
        let entry = self.entry(service).ok()?;
        let group = entry.target_group();
        let delay = group.and_then(|g| g.deregistration_delay);
        let shape = crate::cost::RouterShape {
            copies_settings: group.is_none(),
            sets_delay: delay.is_some(),
            previews: entry.preview_listener().is_some(),
            drain: delay.unwrap_or(crate::cost::DEFAULT_DEREGISTRATION_DELAY),
            drain_poll: self.drain_poll,
            membership: self.membership.as_ref().map(|m| m.cost()),
        };
        crate::cost::router(operation, shape)
    }
}

#[async_trait]
impl PreviewRouter for AwsRouter {
    async fn preview(&self, service: &ServiceName, target: Option<&TargetId>) -> Result<()> {
        let entry = self.entry(service)?;
        let Some(listener) = entry.preview_listener() else {
            return Err(Error::not_supported(
                "preview",
                format!(
                    "service `{service}` has no preview listener configured \
                     (EntryPoint::with_preview_listener)"
                ),
            ));
        };
        let routing = match target {
            Some(t) => {
                self.ensure_owned(service, t).await?;
                Routing::all_to(t)
            }
            None => Routing::empty(),
        };
        let current = self.listener_actions(listener).await?;
        self.write_listener(listener, with_routing(&current, &routing))
            .await
    }
}

#[async_trait]
impl TargetAdoption for AwsRouter {
    async fn adoptable(&self, service: &ServiceName, target: &TargetId) -> Result<Adoptable> {
        self.adoptable_group(service, target).await
    }

    async fn adopt_target(
        &self,
        service: &ServiceName,
        target: &TargetId,
        fleet: &FleetInfo,
    ) -> Result<Target> {
        self.adopt_group(service, target, fleet).await
    }
}
