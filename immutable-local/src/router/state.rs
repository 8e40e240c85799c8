//! The router's own record of each service's routing, kept in `<state dir>/<service>.json`
//! (written atomically) so that it can be put back into a restarted HAProxy.
//!
//! A state file is data from outside the process: every name in it that reaches HAProxy's
//! runtime API is checked when the file is read ([`ServiceState::check`]), so a tampered
//! file is refused, naming the file and the field, and never turns into commands.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use immutable_core::{Error, FleetId, InstanceId, Result, Routing, ServiceName, TargetId};
use serde::{Deserialize, Serialize};

use super::names::{is_haproxy_name, is_plain_id};
use crate::fsutil::{blocking, read_json, write_json_atomic};

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
    /// When it was attached (absent in files of earlier versions): a server of a target
    /// attached longer ago than a health check that has no check result yet was put back
    /// after an HAProxy restart, and its first check is awaited before its health is told.
    #[serde(default)]
    pub(crate) attached_at: Option<SystemTime>,
    /// Set, and saved, before its servers are drained and deleted, so that nothing puts them
    /// back into HAProxy meanwhile; the target leaves the file once they are gone.
    #[serde(default)]
    pub(crate) detaching: bool,
}

/// One service's entry point as the router last set it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServiceState {
    pub(crate) targets: Vec<TargetState>,
    pub(crate) routing: Routing,
    pub(crate) preview: Option<TargetId>,
    /// Servers of the previous preview target, saved before they are taken out of the
    /// preview backend, so that nothing puts them back meanwhile and a cut-off removal is
    /// finished later.
    #[serde(default)]
    pub(crate) preview_stale: Vec<ServerState>,
}

impl ServiceState {
    pub(crate) fn target(&self, id: &TargetId) -> Option<&TargetState> {
        self.targets.iter().find(|t| &t.id == id)
    }

    /// Each server's HAProxy weight for `routing`: a target's percent shared among its
    /// servers, on HAProxy's 0 to 256 scale, at least 1 for a target that takes traffic.
    /// Targets being detached are left out: their servers are on their way out of HAProxy.
    pub(crate) fn server_weights(&self, routing: &Routing) -> Vec<(&ServerState, u32)> {
        let mut out = Vec::new();
        for t in self.targets.iter().filter(|t| !t.detaching) {
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

    /// The servers the live backend should have, with their weights.
    pub(crate) fn live_servers(&self) -> Vec<(&ServerState, u32)> {
        self.server_weights(&self.routing)
    }

    /// The servers the preview backend should have: the preview target's.
    pub(crate) fn preview_servers(&self) -> &[ServerState] {
        self.preview
            .as_ref()
            .and_then(|p| self.target(p))
            .filter(|t| !t.detaching)
            .map_or(&[], |t| &t.servers)
    }

    /// Refuses a state whose names could not have been written by the router: a server
    /// name HAProxy would not take as one word, an id that is not a plain id, a routing or
    /// preview naming a target the file does not hold.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field within the file, and the file.
    pub(crate) fn check(&self, path: &Path) -> Result<()> {
        let refuse = |field: String, value: &str, rule: &str| {
            Error::invalid(
                field,
                format!(
                    "in router state file {} is {value:?}: {rule}; the file was left \
                     untouched: restore it from a backup or move it aside",
                    path.display()
                ),
            )
        };
        const SERVER: &str = "not a valid HAProxy server name (letters, digits, '-', '_', \
                              '.' and ':', at most 100)";
        const ID: &str = "not a plain id (letters, digits, '-', '_' and '.', at most 128)";
        let servers = self.targets.iter().enumerate().flat_map(|(i, t)| {
            let at = format!("targets[{i}].servers");
            t.servers
                .iter()
                .enumerate()
                .map(move |(j, s)| (format!("{at}[{j}]"), s))
        });
        let stale = self
            .preview_stale
            .iter()
            .enumerate()
            .map(|(j, s)| (format!("preview_stale[{j}]"), s));
        for (at, s) in servers.chain(stale) {
            if !is_haproxy_name(&s.name) {
                return Err(refuse(format!("{at}.name"), &s.name, SERVER));
            }
            if !is_plain_id(s.instance.as_str()) {
                return Err(refuse(format!("{at}.instance"), s.instance.as_str(), ID));
            }
        }
        for (i, t) in self.targets.iter().enumerate() {
            if !is_plain_id(t.id.as_str()) {
                return Err(refuse(format!("targets[{i}].id"), t.id.as_str(), ID));
            }
            if !is_plain_id(t.fleet.as_str()) {
                return Err(refuse(format!("targets[{i}].fleet"), t.fleet.as_str(), ID));
            }
        }
        let named = self
            .routing
            .weights()
            .keys()
            .map(|id| ("routing", id))
            .chain(self.preview.iter().map(|id| ("preview", id)));
        for (field, id) in named {
            if self.target(id).is_none() {
                return Err(refuse(
                    field.into(),
                    id.as_str(),
                    "names a target the file does not hold",
                ));
            }
        }
        Ok(())
    }
}

/// Where one service's state lives.
pub(crate) fn path(dir: &Path, service: &ServiceName) -> PathBuf {
    dir.join(format!("{service}.json"))
}

/// Reads one service's state: empty when there is none yet.
///
/// # Errors
/// A file that cannot be read, parsed or [checked](ServiceState::check), naming it.
pub(crate) async fn load(dir: &Path, service: &ServiceName) -> Result<ServiceState> {
    let path = path(dir, service);
    blocking(move || {
        let state: ServiceState = read_json(&path, "router state")?.unwrap_or_default();
        state.check(&path)?;
        Ok(state)
    })
    .await
}

/// Writes one service's state (atomically); the caller holds the service's lock.
pub(crate) async fn save(dir: &Path, service: &ServiceName, state: &ServiceState) -> Result<()> {
    let (path, state) = (path(dir, service), state.clone());
    blocking(move || write_json_atomic(&path, &state)).await
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
            attached_at: None,
            detaching: false,
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

    #[test]
    fn a_target_being_detached_is_not_put_back() {
        let mut s = ServiceState {
            targets: vec![target("a", 2), target("b", 1)],
            routing: Routing::all_to(&TargetId::new("a")),
            preview: Some(TargetId::new("b")),
            ..Default::default()
        };
        s.targets[1].detaching = true;
        let live: Vec<&str> = s.live_servers().iter().map(|(s, _)| &*s.name).collect();
        assert_eq!(live, ["a-0", "a-1"]);
        assert!(s.preview_servers().is_empty());
    }

    #[test]
    fn a_server_name_that_would_inject_a_command_is_refused_naming_the_field() {
        let path = Path::new("/state/web.json");
        let mut s = ServiceState {
            targets: vec![target("a", 2)],
            ..Default::default()
        };
        assert!(s.check(path).is_ok());
        s.targets[0].servers[1].name = "a-1 weight 0; shutdown sessions server web/a-0".into();
        match s.check(path).unwrap_err() {
            Error::InvalidInput { field, reason, .. } => {
                assert_eq!(field, "targets[0].servers[1].name");
                assert!(reason.contains("/state/web.json"), "{reason}");
            }
            other => panic!("{other}"),
        }
    }
}

/// Property: a router state file broken in any of the ways `conformance::hostile` knows is
/// loaded without a panic, and either refused naming the file or accepted with every name
/// that reaches HAProxy one safe word; the file is never changed.
#[cfg(test)]
mod hostile {
    use immutable_core::conformance::hostile::{Tally, hostile_json, runner};

    use super::*;
    use crate::router::names::is_haproxy_name;

    #[test]
    #[allow(clippy::print_stdout)] // the tally, for the test's output
    fn hostile_router_state_files_are_refused_naming_the_file_and_left_untouched() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let web = ServiceName::new("web").unwrap();
        let target = |id: &str| TargetState {
            id: TargetId::new(format!("tg-{id}")),
            fleet: FleetId::new(format!("fl-{id}")),
            servers: (0..2)
                .map(|i| ServerState {
                    name: format!("fl-{id}-{i}"),
                    instance: InstanceId::new(format!("fl-{id}-{i}")),
                    addr: SocketAddr::from(([127, 0, 0, 1], 20000 + i)),
                })
                .collect(),
            attached_at: Some(SystemTime::UNIX_EPOCH),
            detaching: false,
        };
        let valid = ServiceState {
            targets: vec![target("a"), target("b")],
            routing: Routing::new([(TargetId::new("tg-a"), 90), (TargetId::new("tg-b"), 10)])
                .unwrap(),
            preview: Some(TargetId::new("tg-b")),
            preview_stale: Vec::new(),
        };
        let file = path(dir.path(), &web);
        let shown = file.display().to_string();
        let doc = serde_json::to_value(&valid).unwrap();
        let tally = Tally::default();
        runner()
            .run(&hostile_json(doc), |bytes| {
                std::fs::write(&file, &bytes).unwrap();
                match rt.block_on(load(dir.path(), &web)) {
                    Ok(state) => {
                        let names = state
                            .targets
                            .iter()
                            .flat_map(|t| &t.servers)
                            .chain(&state.preview_stale);
                        for s in names {
                            proptest::prop_assert!(is_haproxy_name(&s.name), "{:?}", s.name);
                        }
                        tally.record(true);
                    }
                    Err(e) => {
                        proptest::prop_assert!(e.to_string().contains(&shown), "{e}");
                        tally.record(false);
                    }
                }
                proptest::prop_assert_eq!(std::fs::read(&file).unwrap(), bytes);
                Ok(())
            })
            .unwrap();
        println!("{}", tally.summary("router state files"));
        assert!(tally.refused() > 0);
    }
}
