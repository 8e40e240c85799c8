//! [`ProcessFleet`]: fleets of OS processes started from local images.

mod lifecycle;
mod listener;
mod process;
mod session;
mod sockdiag;
mod starting;
mod state;

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use immutable_core::{
    Cost, Error, Fleet, FleetId, FleetInfo, FleetSpec, InstanceId, Operation, ResourceKind, Result,
    ServiceName,
};
use rustix::process::Signal;
use sha2::{Digest, Sha256};

use self::lifecycle::{LaunchJob, launch_blocking, terminate_blocking};
use self::session::members_of;
use self::state::{FleetState, all_fleets, fleets_dir, read_state, state_path};
use crate::fsutil::{blocking, create_private_dir_all, is_safe_component};
use crate::image::{LocalImageStore, check_command};

pub(crate) use process::{ProcessId, Spawn, log_tail, spawn};
pub(crate) use session::{KILL_WAIT, ProcessTable, Session, stop as stop_sessions};
pub(crate) use state::InstanceRecord;
pub(crate) use state::processes_using;

/// Fleets of OS processes, one per instance, started from a [`LocalImageStore`]'s images.
///
/// # Expected flow
/// [`launch`](Fleet::launch) starts `capacity` processes of the image's command, each in its
/// own session (so it outlives the deploy tool), with `PORT` (a free port on 127.0.0.1),
/// `INSTANCE_ID`, `IMAGE_ID`, `IMAGE_DIR`, `SERVICE` and `FLEET_ID` in its environment, its own
/// working directory and `stdout.log` / `stderr.log` under `<root>/fleets/<fleet>/<instance>/`.
///
/// # Guarantees
/// - Fleet state lives in `<root>/fleets/<fleet>/fleet.json`, written atomically twice per
///   launch whatever its size: each new instance's id, port and directory before any process
///   starts, then each process's pid and start time once all have started. A reused pid is
///   never mistaken for an instance, and a fleet launched by a deploy tool that then died is
///   found, described and terminated by the next `ProcessFleet` over the same root; one that
///   died between the two writes left instances named but without a pid, whose processes the
///   next launch or terminate finds by the `INSTANCE_ID` they were started with.
/// - Launch is idempotent by `(service, key)`: the fleet id is derived from them, and a
///   launch cut short by a crash starts only the missing instances when repeated.
/// - [`describe`](Fleet::describe) observes real process state: running once a socket
///   listening on the instance's port (on 127.0.0.1, 0.0.0.0 or `::`) is held by a process of
///   the instance's session, pending before, terminated once the process is gone. A process
///   of someone else squatting on the port never makes an instance running.
/// - [`terminate`](Fleet::terminate) sends SIGTERM to every process of each instance's
///   session (children included, even once the instance's own process died), waits up to the
///   grace period, then sends SIGKILL and waits until none is left; it is idempotent.
/// - Directories it creates (`<root>/fleets`, each fleet's and instance's) are private to the
///   user (mode 0700); state files are written through temporary files created exclusively
///   under random names, and a symbolic link planted at a lock file is refused, never followed.
///
/// # Errors
/// Bad input leaves nothing behind: a command that is not executable or an instance that
/// exits at once is [`Error::InvalidInput`] on `command` (with the exit status and the end of
/// its stderr), and no free port is [`Error::InvalidInput`] on `port_range`; every process
/// started by that launch is killed and its directory removed.
///
/// # Caveats
/// - After a crash between a launch's two writes, an instance's process that wrote over its
///   environment (to set its process title) before the next launch or terminate is not
///   found, and outlives them.
/// - A process of an instance that leaves its session (a double fork and `setsid`, as
///   daemons do) is no longer the instance's: terminate does not reach it.
/// - Once an instance's own process is gone, a leftover process of its session is recognized
///   by the `INSTANCE_ID` in the environment it started with (a pid can be reused by then):
///   one started with a cleared environment (`env -i`), or whose environment cannot be read
///   (undumpable, another user), then outlives terminate.
/// - An instance's own process is recognised by its pid and start time, and by the
///   `INSTANCE_ID` it was started with or its working directory inside the instance's
///   directory: a program that both writes over its environment (to set its process title)
///   and moves its working directory elsewhere, or whose `/proc` entries cannot be read, is
///   seen as gone (described terminated, and terminate does not reach it).
/// - Readiness reads the instance's file descriptors in `/proc`: a program that makes itself
///   undumpable (`PR_SET_DUMPABLE` 0) or runs as another user is never seen running. Another
///   process of the same user listening on the same port with `SO_REUSEPORT` shares its
///   connections undetected.
#[derive(Debug, Clone)]
pub struct ProcessFleet {
    images: LocalImageStore,
    settings: Arc<FleetSettings>,
}

#[derive(Debug, Clone)]
struct FleetSettings {
    ports: RangeInclusive<u16>,
    grace: Duration,
    startup_check: Duration,
}

impl ProcessFleet {
    /// Fleets over the same root as `images`.
    ///
    /// # Errors
    /// [`Error::Provider`] naming the directory if `<root>/fleets` cannot be created.
    pub fn open(images: &LocalImageStore) -> Result<Self> {
        create_private_dir_all(&fleets_dir(images.root()))?;
        Ok(ProcessFleet {
            images: images.clone(),
            settings: Arc::new(FleetSettings {
                ports: 20000..=29999,
                grace: Duration::from_secs(10),
                startup_check: Duration::from_millis(300),
            }),
        })
    }

    /// Ports on 127.0.0.1 that instances may listen on. Default 20000 to 29999, below Linux's
    /// ephemeral range so that outgoing connections never take them.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `port_range` when the range is empty (start after end) or
    /// reaches below 1024 (port 0 and the ports reserved to the system).
    pub fn with_port_range(mut self, ports: RangeInclusive<u16>) -> Result<Self> {
        let (start, end) = (*ports.start(), *ports.end());
        if start > end {
            return Err(Error::invalid(
                "port_range",
                format!("{start}-{end} is empty: its start must not be after its end"),
            ));
        }
        if start < 1024 {
            return Err(Error::invalid(
                "port_range",
                format!("{start}-{end} reaches below 1024: pick ports from 1024 to 65535"),
            ));
        }
        Arc::make_mut(&mut self.settings).ports = ports;
        Ok(self)
    }

    /// How long terminate waits after SIGTERM before SIGKILL. Default 10 s. Zero sends SIGKILL
    /// at once, with no SIGTERM: what a crash of every instance looks like.
    pub fn with_grace_period(mut self, grace: Duration) -> Self {
        Arc::make_mut(&mut self.settings).grace = grace;
        self
    }

    /// How long launch watches new processes for an immediate exit (an instance that exits
    /// within it is [`Error::InvalidInput`] on `command`); the watch ends early once every new
    /// instance listens on its port. Default 300 ms.
    pub fn with_startup_check(mut self, window: Duration) -> Self {
        Arc::make_mut(&mut self.settings).startup_check = window;
        self
    }

    fn root(&self) -> &Path {
        self.images.root()
    }

    /// The loopback address of each instance of a fleet that is alive and listens on its port
    /// itself: its own process runs, and a process of its session holds the socket listening
    /// there (what [`describe`](Fleet::describe) calls running). An instance still starting,
    /// or one whose port some other process holds, is not listed: traffic is never routed to
    /// a squatter.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown fleet, [`Error::NotOwned`] for another service's.
    pub async fn addresses(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
    ) -> Result<Vec<(InstanceId, SocketAddr)>> {
        let state = self.owned(service, fleet).await?;
        let ready = readiness(&state).await?;
        Ok(state
            .instances
            .iter()
            .zip(ready)
            .filter(|(_, ready)| *ready)
            .map(|(i, _)| (i.id.clone(), i.addr()))
            .collect())
    }

    /// The directory of one instance (working directory `work/`, `stdout.log`, `stderr.log`).
    pub fn instance_dir(&self, fleet: &FleetId, instance: &InstanceId) -> PathBuf {
        fleets_dir(self.root())
            .join(fleet.as_str())
            .join(instance.as_str())
    }

    /// SIGKILLs every process of every instance's session of every fleet under the root, at
    /// once and without a grace period; returns how many were alive. For test and example
    /// teardown (it blocks briefly and may run in `Drop`).
    pub fn kill_all(&self) -> usize {
        let mut fleets = all_fleets(self.root()).unwrap_or_default();
        for f in &mut fleets {
            // Instances a launch started but had not recorded yet are killed too.
            let _ = starting::take_over(f);
        }
        let sessions: Vec<Session<'_>> = fleets
            .iter()
            .flat_map(|f| &f.instances)
            .map(Session::of)
            .collect();
        let alive = members_of(&sessions).unwrap_or_default();
        for p in &alive {
            p.signal(Signal::KILL);
        }
        alive.len()
    }

    async fn read(&self, fleet: &FleetId) -> Result<FleetState> {
        if !is_safe_component(fleet.as_str()) {
            return Err(Error::not_found(ResourceKind::Fleet, fleet.as_str()));
        }
        let path = state_path(self.root(), fleet);
        blocking(move || read_state(&path))
            .await?
            .ok_or_else(|| Error::not_found(ResourceKind::Fleet, fleet.as_str()))
    }

    async fn owned(&self, service: &ServiceName, fleet: &FleetId) -> Result<FleetState> {
        let state = self.read(fleet).await?;
        if &state.service != service {
            return Err(Error::NotOwned {
                kind: ResourceKind::Fleet,
                id: fleet.to_string(),
                service: service.to_string(),
            });
        }
        Ok(state)
    }

    async fn observe(&self, state: &FleetState) -> Result<FleetInfo> {
        Ok(state.observe(&readiness(state).await?))
    }
}

/// For each instance of the fleet, whether it is alive and listens on its port itself.
async fn readiness(state: &FleetState) -> Result<Vec<bool>> {
    let instances = state.instances.clone();
    blocking(move || Ok(listener::ready(&instances))).await
}

fn fleet_id(service: &ServiceName, key: &str) -> FleetId {
    let digest = Sha256::digest(format!("{service}\0{key}"));
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    FleetId::new(format!("fl-{hex}"))
}

#[async_trait]
impl Fleet for ProcessFleet {
    /// Processes and files: no provider call.
    fn cost(&self, _: &ServiceName, _: Operation) -> Option<Cost> {
        Some(Cost::calls(0))
    }

    async fn launch(&self, spec: &FleetSpec) -> Result<FleetInfo> {
        if spec.capacity == 0 {
            return Err(Error::invalid("capacity", "must be at least 1"));
        }
        let (manifest, files) = self.images.launch_info(&spec.image).await?;
        let program = check_command(&files, &manifest.command)?;
        let job = LaunchJob {
            root: self.root().to_path_buf(),
            settings: Arc::clone(&self.settings),
            spec: spec.clone(),
            id: fleet_id(&spec.service, spec.key.as_str()),
            manifest,
            files,
            program,
        };
        let state = blocking(move || launch_blocking(job)).await?;
        self.observe(&state).await
    }

    async fn describe(&self, service: &ServiceName, fleet: &FleetId) -> Result<FleetInfo> {
        let state = self.owned(service, fleet).await?;
        self.observe(&state).await
    }

    async fn list(&self, service: &ServiceName) -> Result<Vec<FleetInfo>> {
        let root = self.root().to_path_buf();
        let fleets = blocking(move || all_fleets(&root)).await?;
        let mut out = Vec::new();
        for f in fleets.iter().filter(|f| &f.service == service) {
            let info = self.observe(f).await?;
            if info.is_live() {
                out.push(info);
            }
        }
        Ok(out)
    }

    async fn terminate(&self, service: &ServiceName, fleet: &FleetId) -> Result<()> {
        self.owned(service, fleet).await?;
        let (root, grace, id) = (
            self.root().to_path_buf(),
            self.settings.grace,
            fleet.clone(),
        );
        blocking(move || terminate_blocking(&root, &id, grace)).await
    }
}
