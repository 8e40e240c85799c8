//! The [`TrafficRouter`] calls of [`HaproxyRouter`] (the server lifecycle behind them is in
//! `servers.rs`).

use async_trait::async_trait;
use immutable_core::{
    Cost, Error, FleetInfo, HealthReport, HealthState, InstanceHealth, Operation, PreviewRouter,
    Result, Routing, ServiceName, Target, TargetId, TrafficRouter,
};

use super::health::health_of;
use super::names::is_haproxy_name;
use super::restore::now;
use super::servers::{EXISTS, NO_SUCH};
use super::state::{ServerState, ServiceState, TargetState};
use super::{HaproxyRouter, Inner};

impl Inner {
    /// A new target of the fleet's live instances; refuses an instance id HAProxy would not
    /// take as one word (it becomes the server's name in runtime-API commands).
    async fn new_target(&self, fleet: &FleetInfo, id: TargetId) -> Result<TargetState> {
        let addresses = self.addresses.addresses(&fleet.service, &fleet.id).await?;
        if addresses.is_empty() {
            return Err(Error::conflict(format!(
                "fleet {} has no live instance to attach",
                fleet.id
            )));
        }
        if let Some((bad, _)) = addresses.iter().find(|(i, _)| !is_haproxy_name(i.as_str())) {
            return Err(Error::invalid(
                "instances",
                format!(
                    "the instance addresses of fleet {} name instance {:?}, which is not a \
                     valid HAProxy server name (letters, digits, '-', '_', '.', ':'); nothing \
                     was attached",
                    fleet.id,
                    bad.as_str()
                ),
            ));
        }
        Ok(TargetState {
            id,
            fleet: fleet.id.clone(),
            servers: addresses
                .into_iter()
                .map(|(instance, addr)| ServerState {
                    name: instance.to_string(),
                    instance,
                    addr,
                })
                .collect(),
            attached_at: now(),
            detaching: false,
        })
    }

    async fn owned_target(
        &self,
        service: &ServiceName,
        state: &ServiceState,
        target: &TargetId,
    ) -> Result<TargetState> {
        match state.target(target) {
            Some(t) => Ok(t.clone()),
            None => Err(self.unknown_target(service, target).await),
        }
    }
}

fn target_id(fleet: &FleetInfo) -> TargetId {
    let fleet = fleet.id.as_str();
    TargetId::new(format!("tg-{}", fleet.strip_prefix("fl-").unwrap_or(fleet)))
}

#[async_trait]
impl TrafficRouter for HaproxyRouter {
    /// HAProxy runtime-API requests, whatever the fleet size: one write to attach a fleet
    /// (all its servers), to set every weight, or to point the preview; one `show stat` per
    /// health read; a detach drains in one write, reads stats until no session is left,
    /// deletes every server in one write and reads stats once to confirm (again while a
    /// server's last connections close). Clearing a preview takes three more requests than
    /// declared: a write that cuts the old servers' sessions, their deletion and its check.
    fn cost(&self, _: &ServiceName, operation: Operation) -> Option<Cost> {
        let inner = &*self.inner;
        Some(match operation {
            Operation::Attach | Operation::Health | Operation::SetWeights | Operation::Preview => {
                Cost::calls(1)
            }
            Operation::Targets | Operation::Routing => Cost::calls(0),
            Operation::Detach => Cost::calls(3).polling(1, inner.poll, inner.drain_timeout),
            _ => return None,
        })
    }

    async fn attach(&self, fleet: &FleetInfo) -> Result<Target> {
        let inner = &*self.inner;
        let backends = inner.backends(&fleet.service)?;
        let _guard = inner.lock(&fleet.service).await?;
        let mut state = inner.load(&fleet.service).await?;
        let id = target_id(fleet);
        let target = match state.target(&id) {
            Some(t) => t.clone(),
            None => {
                let t = inner.new_target(fleet, id.clone()).await?;
                // Recorded before HAProxy learns of it, so a crash leaves nothing unrecorded.
                state.targets.push(t.clone());
                inner.save(&fleet.service, &state).await?;
                t
            }
        };
        let weights = state.server_weights(&state.routing);
        let commands: Vec<String> = weights
            .iter()
            .filter(|(s, _)| target.servers.contains(s))
            .flat_map(|(s, w)| inner.add_commands(&backends.live, s, *w))
            .collect();
        inner.api.write(&commands, &[EXISTS]).await?;
        Ok(Target::new(id, fleet.id.clone(), fleet.service.clone()))
    }

    async fn targets(&self, service: &ServiceName) -> Result<Vec<Target>> {
        self.inner.backends(service)?;
        let state = self.inner.load(service).await?;
        Ok(state
            .targets
            .into_iter()
            .map(|t| Target::new(t.id, t.fleet, service.clone()))
            .collect())
    }

    async fn health(&self, service: &ServiceName, target: &TargetId) -> Result<HealthReport> {
        let inner = &*self.inner;
        let backends = inner.backends(service)?;
        let mut state = inner.load(service).await?;
        let mut t = inner.owned_target(service, &state, target).await?;
        let mut rows = inner.api.stats(&backends.live).await?;
        let lost = state
            .live_servers()
            .iter()
            .any(|(s, _)| !rows.iter().any(|r| r.name == s.name));
        if lost {
            // HAProxy restarted or reloaded: put the routing back before telling health.
            inner.restore_service(service).await?;
            state = inner.load(service).await?;
            t = inner.owned_target(service, &state, target).await?;
            rows = inner.api.stats(&backends.live).await?;
        }
        let rows = inner.await_first_checks(&backends.live, &t, rows).await?;
        let own = match inner.addresses.addresses(service, &t.fleet).await {
            Ok(own) => own,
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(e),
        };
        let instances = t
            .servers
            .iter()
            .map(|s| {
                let (mut state, mut reason) = health_of(rows.iter().find(|r| r.name == s.name));
                let listens = own.iter().any(|(i, a)| *i == s.instance && *a == s.addr);
                if !listens && state == HealthState::Healthy {
                    state = HealthState::Unhealthy;
                    reason = Some(format!(
                        "instance {} no longer listens at {} itself (its process is gone, or \
                         another process holds the port): whatever answers there is not it",
                        s.instance, s.addr
                    ));
                }
                InstanceHealth {
                    instance: s.instance.clone(),
                    state,
                    reason,
                }
            })
            .collect();
        Ok(HealthReport {
            target: target.clone(),
            instances,
        })
    }

    async fn routing(&self, service: &ServiceName) -> Result<Routing> {
        self.inner.backends(service)?;
        Ok(self.inner.load(service).await?.routing)
    }

    async fn set_weights(&self, service: &ServiceName, routing: &Routing) -> Result<()> {
        let inner = &*self.inner;
        let backends = inner.backends(service)?;
        let _guard = inner.lock(service).await?;
        let mut state = inner.load(service).await?;
        for t in routing.weights().keys() {
            if inner.owned_target(service, &state, t).await?.detaching {
                return Err(Error::conflict(format!(
                    "target {t} of service {service} is being detached: it can take no traffic"
                )));
            }
        }
        let commands: Vec<String> = state
            .server_weights(routing)
            .iter()
            .map(|(s, w)| format!("set weight {}/{} {w}", backends.live, s.name))
            .collect();
        // Every weight in one request: HAProxy applies them back to back.
        match inner.api.write(&commands, &[]).await {
            Err(Error::Provider { message, .. }) if message.contains(NO_SUCH) => {
                // HAProxy restarted or reloaded and lost the servers: put them back (with
                // the weights they had), then set the new ones.
                inner.reconcile(service).await?;
                inner.api.write(&commands, &[]).await?;
            }
            other => other?,
        }
        state.routing = routing.clone();
        inner.save(service, &state).await
    }

    async fn detach(&self, service: &ServiceName, target: &TargetId) -> Result<()> {
        let inner = &*self.inner;
        let backends = inner.backends(service)?;
        let _guard = inner.lock(service).await?;
        let mut state = inner.load(service).await?;
        let t = inner.owned_target(service, &state, target).await?;
        if state.routing.weight(target) > 0 {
            return Err(Error::TargetServing {
                service: service.clone(),
                target: target.clone(),
            });
        }
        // Marked before its servers go, so that a restore meanwhile (this process's guard,
        // or another process's) does not put them back.
        if let Some(saved) = state.targets.iter_mut().find(|x| &x.id == target) {
            saved.detaching = true;
        }
        if state.preview.as_ref() == Some(target) {
            state.preview = None;
            state.preview_stale.extend(t.servers.iter().cloned());
        }
        inner.save(service, &state).await?;
        if !state.preview_stale.is_empty() {
            if let Some(preview) = &backends.preview {
                inner.remove_now(preview, &state.preview_stale).await?;
            }
            state.preview_stale.clear();
        }
        inner.drain_and_delete(&backends.live, &t).await?;
        state.targets.retain(|x| &x.id != target);
        inner.save(service, &state).await
    }
}

#[async_trait]
impl PreviewRouter for HaproxyRouter {
    async fn preview(&self, service: &ServiceName, target: Option<&TargetId>) -> Result<()> {
        let inner = &*self.inner;
        let backends = inner.backends(service)?;
        let Some(preview) = &backends.preview else {
            return Err(Error::not_supported(
                "preview",
                format!("service `{service}` has no preview backend on this router"),
            ));
        };
        let _guard = inner.lock(service).await?;
        let mut state = inner.load(service).await?;
        if let Some(t) = target {
            inner.owned_target(service, &state, t).await?;
        }
        let old = state
            .preview
            .clone()
            .and_then(|t| state.target(&t).cloned())
            .filter(|old| Some(&old.id) != target);
        state.preview = target.cloned();
        // Saved before the old servers go, so that nothing puts them back meanwhile, and a
        // removal cut off here is finished by the next restore.
        state
            .preview_stale
            .extend(old.into_iter().flat_map(|t| t.servers));
        inner.save(service, &state).await?;
        if !state.preview_stale.is_empty() {
            inner.remove_now(preview, &state.preview_stale).await?;
            state.preview_stale.clear();
            inner.save(service, &state).await?;
        }
        if let Some(t) = target {
            inner.preview_add(backends, &state, t).await?;
        }
        Ok(())
    }
}
