//! A fleet's state file, `<root>/fleets/<fleet>.json`: what was asked for and where each
//! instance runs (host and port), written before any container is created, so that a launch
//! cut short puts each instance where the first attempt did, and marked terminated once
//! every container is gone (so terminating again succeeds, while an id never launched is not
//! found). Every change holds the service's lock, `<root>/fleets/.<service>.lock`.

use std::path::{Path, PathBuf};

use immutable_core::{DeploymentId, FleetId, FleetKey, ImageId, InstanceId, Result, ServiceName};
use immutable_local::state_files::{
    create_private_dir_all, lock_file, read_json, write_json_atomic,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Network;

/// One instance's place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Placed {
    /// The instance id, which is also its container's name.
    pub(crate) id: InstanceId,
    /// The host's name.
    pub(crate) host: String,
    /// The port it listens on (on the host's address).
    pub(crate) port: u16,
}

/// A fleet as launched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FleetState {
    pub(crate) id: FleetId,
    pub(crate) service: ServiceName,
    pub(crate) key: FleetKey,
    pub(crate) deployment: DeploymentId,
    pub(crate) image: ImageId,
    pub(crate) capacity: u32,
    pub(crate) network: Network,
    pub(crate) instances: Vec<Placed>,
    #[serde(default)]
    pub(crate) terminated: bool,
}

/// The fleet id of `(service, key)`: `dk-` and 16 hex digits of a SHA-256 over both, so a
/// repeated launch finds its fleet, and no two services' fleets meet.
pub(crate) fn fleet_id(service: &ServiceName, key: &FleetKey) -> FleetId {
    let mut hash = Sha256::new();
    hash.update(service.as_str());
    hash.update([0]);
    hash.update(key.as_str());
    let digest = hash.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    FleetId::new(format!("dk-{hex}"))
}

/// Whether `id` has the form of [`fleet_id`]'s ids (so it can name a file).
pub(crate) fn is_fleet_id(id: &FleetId) -> bool {
    id.as_str()
        .strip_prefix("dk-")
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The state files under a store root.
#[derive(Debug, Clone)]
pub(crate) struct States {
    dir: PathBuf,
}

impl States {
    pub(crate) fn open(root: &Path) -> Result<Self> {
        let dir = root.join("fleets");
        create_private_dir_all(&dir)?;
        Ok(States { dir })
    }

    fn path(&self, fleet: &FleetId) -> PathBuf {
        self.dir.join(format!("{fleet}.json"))
    }

    /// Holds the service's lock until dropped.
    pub(crate) fn lock(&self, service: &ServiceName) -> Result<std::fs::File> {
        lock_file(&self.dir.join(format!(".{service}.lock")))
    }

    /// The fleet's state; `None` when it was never launched here.
    pub(crate) fn read(&self, fleet: &FleetId) -> Result<Option<FleetState>> {
        if !is_fleet_id(fleet) {
            return Ok(None);
        }
        let state: Option<FleetState> = read_json(&self.path(fleet), "fleet state")?;
        Ok(state.filter(|s| &s.id == fleet))
    }

    /// Writes the fleet's state (the caller holds the lock).
    pub(crate) fn write(&self, state: &FleetState) -> Result<()> {
        write_json_atomic(&self.path(&state.id), state)
    }

    /// Every fleet state here, of every service.
    pub(crate) fn all(&self) -> Result<Vec<FleetState>> {
        let Ok(files) = std::fs::read_dir(&self.dir) else {
            return Ok(Vec::new());
        };
        let mut states = Vec::new();
        for file in files.flatten() {
            let name = file.file_name();
            let name = name.to_string_lossy();
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if let Some(state) = self.read(&FleetId::new(id))? {
                states.push(state);
            }
        }
        Ok(states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_ids_differ_by_service_and_key() {
        let web = ServiceName::new("web").unwrap();
        let api = ServiceName::new("api").unwrap();
        let key = FleetKey::new("dep-1");
        let a = fleet_id(&web, &key);
        assert!(is_fleet_id(&a), "{a}");
        assert_eq!(a, fleet_id(&web, &key));
        assert_ne!(a, fleet_id(&api, &key));
        assert_ne!(a, fleet_id(&web, &FleetKey::new("dep-2")));
        for bad in [
            "dk-",
            "dk-../../etc/passwd",
            "fl-0000000000000000",
            "dk-00000000000000zz",
        ] {
            assert!(!is_fleet_id(&FleetId::new(bad)), "{bad}");
        }
    }
}
