//! Orphan cleanup: what carries a service's ownership tags but no unfinished record references.

use std::collections::BTreeSet;

use super::Engine;
use crate::{DeploymentId, DeploymentRecord, FleetId, FleetKey, Result, ServiceName, TargetId};

/// Whether [`Engine::gc_with`] only reports or also removes. The default reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum GcMode {
    /// Report the orphans; touch nothing.
    #[default]
    DryRun,
    /// Detach the orphan targets and terminate the orphan fleets.
    Remove,
}

/// What [`Engine::gc`] or [`Engine::gc_with`] found, and whether it removed it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// Orphan fleets: the service's, not serving, not referenced by an unfinished deployment.
    pub fleets: Vec<FleetId>,
    /// Orphan targets, likewise.
    pub targets: Vec<TargetId>,
    /// Whether they were removed.
    pub removed: bool,
}

impl Engine {
    /// Reports the service's orphans without touching anything: a dry run of
    /// [`gc_with`](Self::gc_with).
    ///
    /// # Errors
    /// As [`gc_with`](Self::gc_with).
    pub async fn gc(&self, service: impl Into<String>) -> Result<GcReport> {
        self.gc_with(service, GcMode::DryRun).await
    }

    /// Finds the service's fleets and targets that no unfinished deployment references and
    /// that take no traffic (left by a lost record, or by hand), and with
    /// [`GcMode::Remove`] removes them: targets are detached (drained, then deleted), fleets
    /// terminated.
    ///
    /// Only resources carrying the service's ownership tags are ever listed, so nothing else
    /// is touched (I6); the serving fleet and target are never orphans (I2); resources of an
    /// unfinished deployment are left for [`resume`](Engine::resume), and while traffic goes
    /// to a target the service does not own (not adopted yet, or an adoption cut off), no
    /// fleet is an orphan. It holds the service's
    /// lease while it runs, so no deployment starts meanwhile.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for a bad service name,
    /// [`Error::Locked`](crate::Error::Locked) while a deployment runs, and backend errors.
    pub async fn gc_with(&self, service: impl Into<String>, mode: GcMode) -> Result<GcReport> {
        let service = ServiceName::new(service)?;
        let inner = &*self.inner;
        let lease = inner
            .acquire_lease(&service, &DeploymentId::generate())
            .await?;
        let result = self.collect(&service, mode).await;
        let _ = inner.store.release_lease(&lease).await;
        result
    }

    async fn collect(&self, service: &ServiceName, mode: GcMode) -> Result<GcReport> {
        let inner = &*self.inner;
        let retry = |e: &crate::Error| e.is_retryable();
        let quiet = |_: u32, _: &crate::Error, _| {};
        let mut keep = Keep::of(&inner.store.unfinished(Some(service)).await?);
        let policy = &inner.settings.retry;
        let routing = policy
            .run_if(|| inner.router.routing(service), retry, quiet)
            .await?;
        let targets = policy
            .run_if(|| inner.router.targets(service), retry, quiet)
            .await?;
        let fleets = policy
            .run_if(|| inner.fleet.list(service), retry, quiet)
            .await?;
        for t in targets.iter().filter(|t| routing.weight(&t.id) > 0) {
            keep.targets.insert(t.id.clone());
            keep.fleets.insert(t.fleet.clone());
        }
        // Traffic to a target the service does not own: an adoption may have tagged the
        // serving instances and been cut off before the target; they are no orphans.
        if routing
            .weights()
            .keys()
            .any(|r| !targets.iter().any(|t| &t.id == r))
        {
            keep.fleets.extend(fleets.iter().map(|f| f.id.clone()));
        }
        let report = GcReport {
            targets: targets
                .iter()
                .filter(|t| !keep.targets.contains(&t.id))
                .map(|t| t.id.clone())
                .collect(),
            fleets: fleets
                .iter()
                .filter(|f| !keep.fleets.contains(&f.id) && !keep.keys.contains(&f.key))
                .map(|f| f.id.clone())
                .collect(),
            removed: mode == GcMode::Remove,
        };
        if mode == GcMode::Remove {
            self.remove(service, &report).await?;
        }
        Ok(report)
    }

    /// Detaches the orphan targets, then terminates the orphan fleets.
    async fn remove(&self, service: &ServiceName, orphans: &GcReport) -> Result<()> {
        let inner = &*self.inner;
        let cleanup = &inner.settings.cleanup_retry;
        let any = |e: &crate::Error| !e.is_not_found();
        let quiet = |_: u32, _: &crate::Error, _| {};
        for t in &orphans.targets {
            ignore_not_found(
                cleanup
                    .run_if(|| inner.router.detach(service, t), any, quiet)
                    .await,
            )?;
        }
        for f in &orphans.fleets {
            ignore_not_found(
                cleanup
                    .run_if(|| inner.fleet.terminate(service, f), any, quiet)
                    .await,
            )?;
        }
        Ok(())
    }
}

/// What unfinished deployments still need: their fleets and targets, old and new, and the
/// launch keys of fleets they may have launched without recording them.
#[derive(Default)]
struct Keep {
    fleets: BTreeSet<FleetId>,
    targets: BTreeSet<TargetId>,
    keys: BTreeSet<FleetKey>,
}

impl Keep {
    fn of(unfinished: &[DeploymentRecord]) -> Self {
        let mut keep = Keep::default();
        for r in unfinished {
            keep.keys.insert(FleetKey::from(&r.id));
            keep.fleets.extend(r.green.fleet.iter().cloned());
            keep.targets.extend(r.green.target.iter().cloned());
            if let Some(b) = &r.blue {
                keep.fleets.insert(b.fleet.clone());
                keep.targets.insert(b.target.clone());
            }
        }
        keep
    }
}

fn ignore_not_found(r: Result<()>) -> Result<()> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}
