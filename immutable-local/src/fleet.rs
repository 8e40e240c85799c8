//! [`ProcessFleet`]: fleets of OS processes started from local images.

mod lifecycle;
mod process;
mod state;

use std::fs;
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
use self::state::{FleetState, all_fleets, fleets_dir, state_path};
use crate::fsutil::{blocking, io_error, is_safe_component, read_json};
use crate::image::{LocalImageStore, check_command};

pub(crate) use process::log_tail;
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
/// - Fleet state lives in `<root>/fleets/<fleet>/fleet.json`, written atomically after each
///   process starts, with each process's pid and start time: a reused pid is never mistaken
///   for an instance, and a fleet launched by a deploy tool that then died is found,
///   described and terminated by the next `ProcessFleet` over the same root.
/// - Launch is idempotent by `(service, key)`: the fleet id is derived from them, and a
///   launch cut short by a crash starts only the missing instances when repeated.
/// - [`describe`](Fleet::describe) observes real process state: running once the process
///   accepts connections on its port, pending before, terminated once it is gone.
/// - [`terminate`](Fleet::terminate) sends SIGTERM to each instance's session, waits the
///   grace period, then sends SIGKILL; it is idempotent.
///
/// # Errors
/// Bad input leaves nothing behind: a command that is not executable or an instance that
/// exits at once is [`Error::InvalidInput`] on `command` (with the exit status and the end of
/// its stderr), and no free port is [`Error::InvalidInput`] on `port_range`; every process
/// started by that launch is killed and its directory removed.
///
/// # Caveats
/// A crash between starting a process and recording it (a few microseconds) leaves that one
/// process unrecorded.
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
        let dir = fleets_dir(images.root());
        fs::create_dir_all(&dir).map_err(|e| io_error("cannot create", &dir, e))?;
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
    pub fn with_port_range(mut self, ports: RangeInclusive<u16>) -> Self {
        Arc::make_mut(&mut self.settings).ports = ports;
        self
    }

    /// How long terminate waits after SIGTERM before SIGKILL. Default 10 s. Zero sends SIGKILL
    /// at once, with no SIGTERM: what a crash of every instance looks like.
    pub fn with_grace_period(mut self, grace: Duration) -> Self {
        Arc::make_mut(&mut self.settings).grace = grace;
        self
    }

    /// How long launch watches new processes for an immediate exit. Default 300 ms.
    pub fn with_startup_check(mut self, window: Duration) -> Self {
        Arc::make_mut(&mut self.settings).startup_check = window;
        self
    }

    fn root(&self) -> &Path {
        self.images.root()
    }

    /// The loopback address of each live instance of a fleet.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown fleet, [`Error::NotOwned`] for another service's.
    pub async fn addresses(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
    ) -> Result<Vec<(InstanceId, SocketAddr)>> {
        let state = self.owned(service, fleet).await?;
        Ok(state
            .instances
            .iter()
            .filter(|i| i.process.is_alive())
            .map(|i| (i.id.clone(), i.addr()))
            .collect())
    }

    /// The directory of one instance (working directory `work/`, `stdout.log`, `stderr.log`).
    pub fn instance_dir(&self, fleet: &FleetId, instance: &InstanceId) -> PathBuf {
        fleets_dir(self.root())
            .join(fleet.as_str())
            .join(instance.as_str())
    }

    /// SIGKILLs every recorded process of every fleet under the root, at once and without a
    /// grace period; returns how many were alive. For test and example teardown (it blocks
    /// briefly and may run in `Drop`).
    pub fn kill_all(&self) -> usize {
        let fleets = all_fleets(self.root()).unwrap_or_default();
        let mut killed = 0;
        for f in &fleets {
            for i in f.instances.iter().filter(|i| i.process.is_alive()) {
                i.process.signal(Signal::KILL);
                killed += 1;
            }
        }
        killed
    }

    async fn read(&self, fleet: &FleetId) -> Result<FleetState> {
        if !is_safe_component(fleet.as_str()) {
            return Err(Error::not_found(ResourceKind::Fleet, fleet.as_str()));
        }
        let path = state_path(self.root(), fleet);
        blocking(move || read_json::<FleetState>(&path, "fleet state"))
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

    async fn observe(&self, state: &FleetState) -> FleetInfo {
        let probes = state
            .instances
            .iter()
            .map(|i| async move { i.process.is_alive() && accepts(i.addr()).await });
        state.observe(&futures::future::join_all(probes).await)
    }
}

/// Whether something accepts TCP connections at `addr`.
async fn accepts(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr)
        )
        .await,
        Ok(Ok(_))
    )
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
        Ok(self.observe(&state).await)
    }

    async fn describe(&self, service: &ServiceName, fleet: &FleetId) -> Result<FleetInfo> {
        let state = self.owned(service, fleet).await?;
        Ok(self.observe(&state).await)
    }

    async fn list(&self, service: &ServiceName) -> Result<Vec<FleetInfo>> {
        let root = self.root().to_path_buf();
        let fleets = blocking(move || all_fleets(&root)).await?;
        let mut out = Vec::new();
        for f in fleets.iter().filter(|f| &f.service == service) {
            let info = self.observe(f).await;
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
