//! Orphan cleanup: what carries a service's ownership tags, belongs to a deployment this
//! engine's journal knows to have ended, and takes no traffic.
//!
//! Orphanhood is proven from the journal, never assumed: a fleet or target whose deployment
//! the journal does not know (made by a runner journaling elsewhere, in another store, or
//! whose record was trimmed) is *foreign*. Foreign resources are reported, and removed only
//! when an operator names them ([`GcMode::RemoveNamed`]), so a `gc` run against the wrong
//! store cannot take a live deployment's way back.

use std::collections::{BTreeSet, HashMap};

use crate::engine::Engine;
use crate::{
    DeploymentId, DeploymentRecord, Error, FleetId, FleetInfo, FleetKey, Result, ServiceName,
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
    /// Besides the backend's lists, one record read per deployment the loose fleets and
    /// targets name, and one describe per loose target whose fleet is not listed: it does
    /// not grow with the service's history.
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
        let describe = async |fleet: &FleetId| {
            let found = policy
                .run_if(|| inner.fleet.describe(service, fleet), retry, quiet)
                .await;
            found.ok().map(|f| f.deployment)
        };
        let mut journal = Journal::new(inner.store.as_ref(), service);
        let serving: Vec<&Target> = targets
            .iter()
            .filter(|t| routing.weight(&t.id) > 0)
            .collect();
        let mut report = journal
            .sort(&keep, &fleets, &targets, &serving, describe)
            .await?;
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
        loose_only(
            "fleets",
            "fleet",
            &fleets,
            &[&self.fleets, &self.foreign_fleets],
        )?;
        loose_only(
            "targets",
            "target",
            &targets,
            &[&self.targets, &self.foreign_targets],
        )?;
        Ok((fleets, targets))
    }
}

/// Refuses, naming `field`, the first of `named` that none of `lists` (the orphans and the
/// foreign ones found) holds.
fn loose_only<T: PartialEq + std::fmt::Display>(
    field: &str,
    what: &str,
    named: &[T],
    lists: &[&Vec<T>],
) -> Result<()> {
    match named.iter().find(|n| !lists.iter().any(|l| l.contains(n))) {
        None => Ok(()),
        Some(n) => Err(Error::invalid(
            field,
            format!(
                "{what} {n} is neither an orphan nor a foreign {what} of this service: it \
                 serves, an unfinished deployment needs it, or it is not the service's; \
                 nothing was removed"
            ),
        )),
    }
}

/// Which deployments the journal knows, looked up one by one (each once) as fleets and
/// targets name them: the cost follows the resources found, not the history's length.
struct Journal<'a> {
    store: &'a dyn crate::StateStore,
    service: &'a ServiceName,
    known: HashMap<DeploymentId, bool>,
}

impl<'a> Journal<'a> {
    fn new(store: &'a dyn crate::StateStore, service: &'a ServiceName) -> Self {
        Journal {
            store,
            service,
            known: HashMap::new(),
        }
    }

    /// Whether the store holds the record of `deployment`, for this service.
    async fn knows(&mut self, deployment: &DeploymentId) -> Result<bool> {
        if let Some(known) = self.known.get(deployment) {
            return Ok(*known);
        }
        let known = match self.store.load(deployment).await {
            Ok(r) => r.service() == self.service,
            Err(e) if e.is_not_found() => false,
            Err(e) => return Err(e),
        };
        self.known.insert(deployment.clone(), known);
        Ok(known)
    }

    /// Sorts what is not kept into orphans and foreign resources. A target's deployment is
    /// its fleet's: from the fleets listed, else described (a fleet whose instances are gone
    /// may still be known to the backend); a target whose fleet cannot be found is foreign.
    ///
    /// This journal proves orphans only while it is the one in charge of the service: when a
    /// target that serves belongs to a deployment it does not know, another journal runs the
    /// service (a deployment made from another store may be baking, its way back among what
    /// looks ended here), and everything loose is foreign.
    async fn sort(
        &mut self,
        keep: &Keep,
        fleets: &[FleetInfo],
        targets: &[Target],
        serving: &[&Target],
        describe: impl AsyncFn(&FleetId) -> Option<DeploymentId>,
    ) -> Result<GcReport> {
        let mut in_charge = true;
        for t in serving {
            in_charge &= self.knows_target(t, fleets, &describe).await?;
        }
        let mut report = GcReport {
            fleets: Vec::new(),
            targets: Vec::new(),
            foreign_fleets: Vec::new(),
            foreign_targets: Vec::new(),
            removed: false,
            removed_fleets: Vec::new(),
            removed_targets: Vec::new(),
        };
        let loose = fleets
            .iter()
            .filter(|f| !keep.fleets.contains(&f.id) && !keep.keys.contains(&f.key));
        for f in loose {
            match in_charge && self.knows(&f.deployment).await? {
                true => report.fleets.push(f.id.clone()),
                false => report.foreign_fleets.push(f.id.clone()),
            }
        }
        for t in targets.iter().filter(|t| !keep.targets.contains(&t.id)) {
            match in_charge && self.knows_target(t, fleets, &describe).await? {
                true => report.targets.push(t.id.clone()),
                false => report.foreign_targets.push(t.id.clone()),
            }
        }
        Ok(report)
    }

    /// Whether the journal knows the deployment a target belongs to: its fleet's, from the
    /// fleets listed, else described.
    async fn knows_target(
        &mut self,
        t: &Target,
        fleets: &[FleetInfo],
        describe: &impl AsyncFn(&FleetId) -> Option<DeploymentId>,
    ) -> Result<bool> {
        let deployment = match fleets.iter().find(|f| f.id == t.fleet) {
            Some(f) => Some(f.deployment.clone()),
            None => describe(&t.fleet).await,
        };
        match deployment {
            Some(d) => self.knows(&d).await,
            None => Ok(false),
        }
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
