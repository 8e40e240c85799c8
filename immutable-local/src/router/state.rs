//! The router's own record of each service's routing, kept in `<state dir>/<service>.json`
//! (written atomically) so that it can be restored into a restarted HAProxy.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use immutable_core::{FleetId, InstanceId, Result, Routing, ServiceName, TargetId};
use serde::{Deserialize, Serialize};

use crate::fsutil::{blocking, lock_file, read_json, write_json_atomic};

/// One dynamic server: an instance of a fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServerState {
    pub(crate) name: String,
    pub(crate) instance: InstanceId,
    pub(crate) addr: SocketAddr,
}

/// One attached fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TargetState {
    pub(crate) id: TargetId,
    pub(crate) fleet: FleetId,
    pub(crate) servers: Vec<ServerState>,
}

/// One service's entry point as the router last set it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServiceState {
    pub(crate) targets: Vec<TargetState>,
    pub(crate) routing: Routing,
    pub(crate) preview: Option<TargetId>,
}

impl ServiceState {
    pub(crate) fn target(&self, id: &TargetId) -> Option<&TargetState> {
        self.targets.iter().find(|t| &t.id == id)
    }

    /// Each server's HAProxy weight for `routing`: a target's percent shared among its
    /// servers, on HAProxy's 0 to 256 scale, at least 1 for a target that takes traffic.
    pub(crate) fn server_weights(&self, routing: &Routing) -> Vec<(&ServerState, u32)> {
        let mut out = Vec::new();
        for t in &self.targets {
            let percent = routing.weight(&t.id);
            let n = t.servers.len().max(1) as u32;
            let w = match percent {
                0 => 0,
                p => ((p * 256 + 50 * n) / (100 * n)).clamp(1, 256),
            };
            out.extend(t.servers.iter().map(|s| (s, w)));
        }
        out
    }
}

/// Where one service's state lives.
pub(crate) fn path(dir: &Path, service: &ServiceName) -> PathBuf {
    dir.join(format!("{service}.json"))
}

pub(crate) async fn load(dir: &Path, service: &ServiceName) -> Result<ServiceState> {
    let path = path(dir, service);
    Ok(blocking(move || read_json(&path, "router state"))
        .await?
        .unwrap_or_default())
}

pub(crate) async fn save(dir: &Path, service: &ServiceName, state: &ServiceState) -> Result<()> {
    let (path, lock, state) = (
        path(dir, service),
        dir.join(format!(".{service}.lock")),
        state.clone(),
    );
    blocking(move || {
        let _lock = lock_file(&lock)?;
        write_json_atomic(&path, &state)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: &str, n: usize) -> TargetState {
        TargetState {
            id: TargetId::new(id),
            fleet: FleetId::new(id),
            servers: (0..n)
                .map(|i| ServerState {
                    name: format!("{id}-{i}"),
                    instance: InstanceId::new(format!("{id}-{i}")),
                    addr: SocketAddr::from(([127, 0, 0, 1], 20000 + i as u16)),
                })
                .collect(),
        }
    }

    #[test]
    fn weights_share_each_percent_among_servers() {
        let s = ServiceState {
            targets: vec![target("a", 2), target("b", 2)],
            ..Default::default()
        };
        let r = Routing::new([(TargetId::new("a"), 90), (TargetId::new("b"), 10)]).unwrap();
        let w: Vec<u32> = s.server_weights(&r).into_iter().map(|(_, w)| w).collect();
        assert_eq!(w, vec![115, 115, 13, 13]);
        let all_b = Routing::all_to(&TargetId::new("b"));
        let w: Vec<u32> = s
            .server_weights(&all_b)
            .into_iter()
            .map(|(_, w)| w)
            .collect();
        assert_eq!(w, vec![0, 0, 128, 128]);
    }
}
