//! A fleet's state file: `<root>/fleets/<fleet-id>/fleet.json`, written atomically.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use immutable_core::{
    DeploymentId, Error, FleetId, FleetInfo, FleetKey, FleetSpec, ImageId, Instance, InstanceId,
    InstanceState, Result, ServiceName,
};
use serde::{Deserialize, Serialize};

use super::process::ProcessId;
use crate::fsutil::{io_error, is_safe_component, read_json};

/// One instance as recorded when it was started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InstanceRecord {
    pub(crate) id: InstanceId,
    pub(crate) process: ProcessId,
    pub(crate) port: u16,
    /// Its directory: working directory and logs.
    pub(crate) dir: PathBuf,
}

impl InstanceRecord {
    /// Whether the instance's own process runs (see [`ProcessId::runs_as`]).
    pub(crate) fn is_alive(&self) -> bool {
        self.process.runs_as(&self.id, &self.dir)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// An instance whose process is being started: recorded before the process starts, so that
/// a crash before its pid is recorded leaves the instance named (see `fleet/starting.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InstanceSlot {
    pub(crate) id: InstanceId,
    pub(crate) port: u16,
    /// Its directory: working directory and logs.
    pub(crate) dir: PathBuf,
}

impl InstanceSlot {
    /// The record of the slot's instance once its process started.
    pub(crate) fn started(&self, process: ProcessId) -> InstanceRecord {
        InstanceRecord {
            id: self.id.clone(),
            process,
            port: self.port,
            dir: self.dir.clone(),
        }
    }
}

/// Everything known about one fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FleetState {
    pub(crate) id: FleetId,
    pub(crate) service: ServiceName,
    pub(crate) key: FleetKey,
    pub(crate) deployment: DeploymentId,
    pub(crate) image: ImageId,
    pub(crate) capacity: u32,
    pub(crate) created: SystemTime,
    /// Set once terminate was asked for; the fleet is never started again.
    pub(crate) terminated: bool,
    pub(crate) instances: Vec<InstanceRecord>,
    /// Instances whose processes a launch is starting: written before they start, moved to
    /// `instances` with their pids once they have. Left over only by a crash in between.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) starting: Vec<InstanceSlot>,
}

impl FleetState {
    /// The fleet as observed: a process that runs and whose session holds the listener on its
    /// port (`listening`, from [`listener::ready`](super::listener::ready)) is running, one that
    /// runs but does not listen yet (or whose port someone else holds) is pending, one that is
    /// gone is terminated.
    pub(crate) fn observe(&self, listening: &[bool]) -> FleetInfo {
        let instances = self
            .instances
            .iter()
            .zip(listening.iter().copied().chain(std::iter::repeat(false)))
            .map(|(i, listens)| Instance {
                id: i.id.clone(),
                state: match (i.is_alive(), listens, self.terminated) {
                    (false, _, _) => InstanceState::Terminated,
                    (true, _, true) => InstanceState::Stopping,
                    (true, true, false) => InstanceState::Running,
                    (true, false, false) => InstanceState::Pending,
                },
            });
        let spec = FleetSpec::new(
            self.service.clone(),
            self.deployment.clone(),
            self.image.clone(),
            self.capacity,
        );
        FleetInfo::new(self.id.clone(), spec.with_key(self.key.clone())).with_instances(instances)
    }
}

impl FleetState {
    /// Refuses a state whose names could not have been written by the backend: an id that is
    /// not its directory's name, an instance id that is not a plain id (it becomes an HAProxy
    /// server name and a directory name), a port of 0.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field within the file, and the file.
    fn check(&self, path: &Path) -> Result<()> {
        let refuse = |field: String, value: &str, rule: &str| {
            Error::invalid(
                field,
                format!(
                    "in fleet state file {} is {value:?}: {rule}; the file was left untouched: \
                     restore it from a backup or move it aside",
                    path.display()
                ),
            )
        };
        let dir = path
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if self.id.as_str() != dir {
            return Err(refuse(
                "id".into(),
                self.id.as_str(),
                "not the name of its directory",
            ));
        }
        let slots = self.instances.iter().enumerate().map(|(i, r)| {
            let slot = (r.id.as_str(), r.dir.as_path(), r.port);
            (format!("instances[{i}]"), slot)
        });
        let starting = self.starting.iter().enumerate().map(|(i, s)| {
            let slot = (s.id.as_str(), s.dir.as_path(), s.port);
            (format!("starting[{i}]"), slot)
        });
        for (at, (id, own_dir, port)) in slots.chain(starting) {
            if !is_safe_component(id) {
                return Err(refuse(
                    format!("{at}.id"),
                    id,
                    "not a plain id (letters, digits, '-', '_' and '.', not starting with '.')",
                ));
            }
            let own = path.parent().map(|fleet| fleet.join(id));
            if own.as_deref() != Some(own_dir) {
                return Err(refuse(
                    format!("{at}.dir"),
                    &own_dir.display().to_string(),
                    "not the instance's directory beside the file",
                ));
            }
            if port == 0 {
                return Err(refuse(format!("{at}.port"), "0", "not a port"));
            }
        }
        Ok(())
    }
}

/// Reads and [checks](FleetState::check) one fleet's state file; `None` when there is none.
///
/// # Errors
/// A file that cannot be read, parsed or checked, naming it.
pub(crate) fn read_state(path: &Path) -> Result<Option<FleetState>> {
    let state = read_json::<FleetState>(path, "fleet state")?;
    if let Some(s) = &state {
        s.check(path)?;
    }
    Ok(state)
}

pub(crate) fn fleets_dir(root: &Path) -> PathBuf {
    root.join("fleets")
}

pub(crate) fn state_path(root: &Path, id: &FleetId) -> PathBuf {
    fleets_dir(root).join(id.as_str()).join("fleet.json")
}

/// Every fleet state under the root that can be read. A file that cannot be read, parsed or
/// checked is left out, with a warning naming it and why: one broken file (another service's,
/// say) does not stop the others' fleets from being listed. Callers that must not overlook
/// a fleet use [`all_fleets_strictly`].
pub(crate) fn all_fleets(root: &Path) -> Result<Vec<FleetState>> {
    let (fleets, refused) = scan(root)?;
    for e in refused {
        tracing::warn!(error = %e, "a fleet state file was left out");
    }
    Ok(fleets)
}

/// Every fleet state under the root; the first file that cannot be read, parsed or checked
/// is an error naming it.
pub(crate) fn all_fleets_strictly(root: &Path) -> Result<Vec<FleetState>> {
    let (fleets, mut refused) = scan(root)?;
    match refused.is_empty() {
        true => Ok(fleets),
        false => Err(refused.swap_remove(0)),
    }
}

/// The fleet states under the root, and the errors of those that could not be read.
fn scan(root: &Path) -> Result<(Vec<FleetState>, Vec<Error>)> {
    let dir = fleets_dir(root);
    let read = match fs::read_dir(&dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(io_error("cannot list", &dir, e)),
    };
    let (mut out, mut refused) = (Vec::new(), Vec::new());
    for entry in read.flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        match read_state(&entry.path().join("fleet.json")) {
            Ok(Some(s)) => out.push(s),
            Ok(None) => {}
            Err(e) => refused.push(e),
        }
    }
    out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    Ok((out, refused))
}

/// The live processes that run `image`, across every fleet of the root; a fleet state that
/// cannot be read is an error, since the image it runs is unknown. An instance whose start
/// is not recorded yet (a launch under way, or cut short) counts as one.
pub(crate) fn processes_using(root: &Path, image: &ImageId) -> Result<usize> {
    let fleets = all_fleets_strictly(root)?;
    let using = fleets.iter().filter(|f| &f.image == image);
    let running = using
        .clone()
        .flat_map(|f| &f.instances)
        .filter(|i| i.is_alive())
        .count();
    Ok(running + using.map(|f| f.starting.len()).sum::<usize>())
}

/// Property: a fleet state file broken in any of the ways `conformance::hostile` knows is
/// read without a panic, and either refused naming the file or accepted with instance ids
/// that are plain ids and ports that are ports; the file is never changed.
#[cfg(test)]
mod hostile {
    use immutable_core::conformance::hostile::{Tally, hostile_json, runner};

    use super::*;

    #[test]
    #[allow(clippy::print_stdout)] // the tally, for the test's output
    fn hostile_fleet_state_files_are_refused_naming_the_file_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let id = FleetId::new("fl-0123456789abcdef");
        let file = state_path(dir.path(), &id);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let valid = FleetState {
            id: id.clone(),
            service: ServiceName::new("web").unwrap(),
            key: FleetKey::new("01jd7w5kq2h3n4p5r6s7t8v9wx"),
            deployment: DeploymentId::new("01jd7w5kq2h3n4p5r6s7t8v9wx"),
            image: ImageId::new("img-0123"),
            capacity: 2,
            created: SystemTime::UNIX_EPOCH,
            terminated: false,
            instances: (0..2)
                .map(|i| InstanceRecord {
                    id: InstanceId::new(format!("{id}-{i}")),
                    process: ProcessId {
                        pid: 4_000_000 + i,
                        start_ticks: 7,
                    },
                    port: 20_000 + i as u16,
                    dir: file.parent().unwrap().join(format!("{id}-{i}")),
                })
                .collect(),
            starting: vec![InstanceSlot {
                id: InstanceId::new(format!("{id}-2")),
                port: 20_002,
                dir: file.parent().unwrap().join(format!("{id}-2")),
            }],
        };
        let shown = file.display().to_string();
        let doc = serde_json::to_value(&valid).unwrap();
        let tally = Tally::default();
        runner()
            .run(&hostile_json(doc), |bytes| {
                std::fs::write(&file, &bytes).unwrap();
                match read_state(&file) {
                    Ok(Some(state)) => {
                        for i in &state.instances {
                            proptest::prop_assert!(is_safe_component(i.id.as_str()));
                            proptest::prop_assert!(i.port > 0);
                        }
                        for s in &state.starting {
                            proptest::prop_assert!(is_safe_component(s.id.as_str()));
                            proptest::prop_assert!(s.port > 0);
                        }
                        tally.record(true);
                    }
                    Ok(None) => proptest::prop_assert!(false, "the file was there"),
                    Err(e) => {
                        proptest::prop_assert!(e.to_string().contains(&shown), "{e}");
                        tally.record(false);
                    }
                }
                let listed = all_fleets_strictly(dir.path());
                proptest::prop_assert_eq!(listed.is_ok(), tally_last_ok(&file));
                proptest::prop_assert!(all_fleets(dir.path()).is_ok());
                proptest::prop_assert_eq!(std::fs::read(&file).unwrap(), bytes);
                Ok(())
            })
            .unwrap();
        println!("{}", tally.summary("fleet state files"));
        assert!(tally.refused() > 0);
    }

    /// Whether the file reads as a valid state now.
    fn tally_last_ok(file: &Path) -> bool {
        read_state(file).is_ok()
    }
}
