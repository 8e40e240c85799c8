//! Orphan cleanup: what carries a service's ownership tags, belongs to a deployment this
//! engine's journal knows to have ended, and takes no traffic.
//!
//! Orphanhood is proven from the journal, never assumed: a fleet or target whose deployment
//! the journal does not know (made by a runner journaling elsewhere, in another store, or
//! whose record was trimmed) is *foreign*. Foreign resources are reported, and removed only
//! when an operator names them ([`GcMode::RemoveNamed`]), so a `gc` run against the wrong
//! store cannot take a live deployment's way back.

use std::collections::{BTreeSet, HashMap};

use super::Engine;
use crate::{
    DeploymentId, DeploymentRecord, Error, FleetId, FleetInfo, FleetKey, Page, Result, ServiceName,
    Target, TargetId,
};

/// Whether [`Engine::gc_with`] only reports or also removes. The default reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum GcMode {
    /// Report the orphans and the foreign resources; touch nothing.
    #[default]
    DryRun,
    /// Detach the orphan targets and terminate the orphan fleets; foreign ones stay.
    Remove,
    /// Remove exactly these fleets and targets, each an orphan or a foreign resource of the
    /// service as this run finds them (never one that serves or that an unfinished
    /// deployment needs): how an operator removes what the journal cannot vouch for.
    RemoveNamed {
        /// Fleets to terminate.
        fleets: Vec<FleetId>,
        /// Targets to detach.
        targets: Vec<TargetId>,
    },
}

/// What [`Engine::gc`] or [`Engine::gc_with`] found, and what it removed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// Orphan fleets: the service's, of a deployment the journal shows ended, not serving,
    /// not needed by an unfinished deployment.
    pub fleets: Vec<FleetId>,
    /// Orphan targets, likewise.
    pub targets: Vec<TargetId>,
    /// The service's fleets (by their tags) of a deployment this journal does not know:
    /// never removed unless named.
    pub foreign_fleets: Vec<FleetId>,
    /// The service's targets of a deployment this journal does not know, likewise.
    pub foreign_targets: Vec<TargetId>,
    /// Whether the mode removed anything it was asked to ([`GcMode::Remove`] or
    /// [`GcMode::RemoveNamed`]).
    pub removed: bool,
    /// The fleets terminated.
    pub removed_fleets: Vec<FleetId>,
    /// The targets detached.
    pub removed_targets: Vec<TargetId>,
}

impl Engine {
    /// Reports the service's orphans and foreign resources without touching anything: a dry
    /// run of [`gc_with`](Self::gc_with).
    ///
    /// # Errors
    /// As [`gc_with`](Self::gc_with).
    pub async fn gc(&self, service: impl Into<String>) -> Result<GcReport> {
        self.gc_with(service, GcMode::DryRun).await
    }

    /// Finds the service's fleets and targets that take no traffic and that no unfinished
    /// deployment references, and sorts them: *orphans* belong to a deployment whose record
    /// this engine's store holds and shows ended (left by a cut-off cleanup, say); *foreign*
    /// ones belong to a deployment the store does not know. [`GcMode::Remove`] removes the
    /// orphans (targets detached, drained then deleted; fleets terminated);
    /// [`GcMode::RemoveNamed`] removes the ones named.
    ///
    /// Only resources carrying the service's ownership tags are ever listed, so nothing else
    /// is touched (I6); the serving fleet and target are never removed (I2); resources of an
    /// unfinished deployment are left for [`resume`](Engine::resume), and while traffic goes
    /// to a target the service does not own (not adopted yet, or an adoption cut off), no
    /// fleet is an orphan. It holds the service's lease while it runs, so no deployment
    /// starts meanwhile.
    ///
    /// # Cost
    /// Besides the backend's lists, it reads the service's whole history from the store
    /// (as many records as retention keeps): an operator's command, not a deployment's path.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad service name, or naming `fleets` or `targets` for a
    /// named resource that is neither an orphan nor foreign (nothing is removed then);
    /// [`Error::Locked`] while a deployment runs; backend and store errors.
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
        let journal = Journal::read(inner.store.as_ref(), service).await?;
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
        let mut report = journal.sort(&keep, &fleets, &targets);
        let (remove_fleets, remove_targets) = match mode {
            GcMode::DryRun => return Ok(report),
            GcMode::Remove => (report.fleets.clone(), report.targets.clone()),
            GcMode::RemoveNamed { fleets, targets } => report.named(fleets, targets)?,
        };
        self.remove(service, &remove_fleets, &remove_targets)
            .await?;
        report.removed = true;
        report.removed_fleets = remove_fleets;
        report.removed_targets = remove_targets;
        Ok(report)
    }

    /// Detaches the targets, then terminates the fleets.
    async fn remove(
        &self,
        service: &ServiceName,
        fleets: &[FleetId],
        targets: &[TargetId],
    ) -> Result<()> {
        let inner = &*self.inner;
        let cleanup = &inner.settings.cleanup_retry;
        let any = |e: &crate::Error| !e.is_not_found();
        let quiet = |_: u32, _: &crate::Error, _| {};
        for t in targets {
            ignore_not_found(
                cleanup
                    .run_if(|| inner.router.detach(service, t), any, quiet)
                    .await,
            )?;
        }
        for f in fleets {
            ignore_not_found(
                cleanup
                    .run_if(|| inner.fleet.terminate(service, f), any, quiet)
                    .await,
            )?;
        }
        Ok(())
    }
}

impl GcReport {
    /// The named resources, each checked to be an orphan or foreign in this report.
    fn named(
        &self,
        fleets: Vec<FleetId>,
        targets: Vec<TargetId>,
    ) -> Result<(Vec<FleetId>, Vec<TargetId>)> {
        if let Some(f) = fleets
            .iter()
            .find(|f| !self.fleets.contains(f) && !self.foreign_fleets.contains(f))
        {
            return Err(Error::invalid(
                "fleets",
                format!(
                    "fleet {f} is neither an orphan nor a foreign fleet of this service: it \
                     serves, an unfinished deployment needs it, or it is not the service's; \
                     nothing was removed"
                ),
            ));
        }
        if let Some(t) = targets
            .iter()
            .find(|t| !self.targets.contains(t) && !self.foreign_targets.contains(t))
        {
            return Err(Error::invalid(
                "targets",
                format!(
                    "target {t} is neither an orphan nor a foreign target of this service: it \
                     serves, an unfinished deployment needs it, or it is not the service's; \
                     nothing was removed"
                ),
            ));
        }
        Ok((fleets, targets))
    }
}

/// What the journal knows of the service: its deployments, and which made each target.
struct Journal {
    deployments: HashMap<DeploymentId, DeploymentRecord>,
    target_owner: HashMap<TargetId, DeploymentId>,
}

impl Journal {
    /// Every record of the service the store keeps, a page at a time.
    async fn read(store: &dyn crate::StateStore, service: &ServiceName) -> Result<Self> {
        let mut journal = Journal {
            deployments: HashMap::new(),
            target_owner: HashMap::new(),
        };
        let mut page = Some(Page::first(Page::MAX_LIMIT)?);
        while let Some(p) = page.take() {
            let got = store.history(service, &p).await?;
            for r in got.records {
                if let Some(t) = &r.green.target {
                    journal.target_owner.insert(t.clone(), r.id.clone());
                }
                journal.deployments.insert(r.id.clone(), r);
            }
            page = got.next;
        }
        Ok(journal)
    }

    /// The deployment a fleet belongs to, if the journal knows it.
    fn knows_fleet(&self, f: &FleetInfo) -> bool {
        self.deployments.contains_key(&f.deployment)
    }

    /// The deployment a target belongs to (the one whose record names it, or its fleet's),
    /// if the journal knows it.
    fn knows_target(&self, t: &Target, fleets: &[FleetInfo]) -> bool {
        let owner = self.target_owner.get(&t.id).cloned().or_else(|| {
            fleets
                .iter()
                .find(|f| f.id == t.fleet)
                .map(|f| f.deployment.clone())
        });
        owner.is_some_and(|d| self.deployments.contains_key(&d))
    }

    /// Sorts what is not kept into orphans and foreign resources.
    fn sort(&self, keep: &Keep, fleets: &[FleetInfo], targets: &[Target]) -> GcReport {
        let mut report = GcReport {
            fleets: Vec::new(),
            targets: Vec::new(),
            foreign_fleets: Vec::new(),
            foreign_targets: Vec::new(),
            removed: false,
            removed_fleets: Vec::new(),
            removed_targets: Vec::new(),
        };
        for f in fleets
            .iter()
            .filter(|f| !keep.fleets.contains(&f.id) && !keep.keys.contains(&f.key))
        {
            match self.knows_fleet(f) {
                true => report.fleets.push(f.id.clone()),
                false => report.foreign_fleets.push(f.id.clone()),
            }
        }
        for t in targets.iter().filter(|t| !keep.targets.contains(&t.id)) {
            match self.knows_target(t, fleets) {
                true => report.targets.push(t.id.clone()),
                false => report.foreign_targets.push(t.id.clone()),
            }
        }
        report
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
