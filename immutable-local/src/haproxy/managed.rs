//! [`ManagedProxy`]: an HAProxy the SDK writes the configuration of, starts in the background
//! (it outlives the program that started it) and tracks by pid, for users without their own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use immutable_core::{Error, Result};
use serde::{Deserialize, Serialize};

use super::config;
use crate::fleet::{
    InstanceRecord, KILL_WAIT, ProcessId, ProcessTable, Session, Spawn, spawn, stop_sessions,
};
use crate::fsutil::{create_private_dir_all, lock_file, read_json, write_json_atomic};

mod reload;
mod route;

pub use route::ProxyRoute;
use route::{check_routes, frontends, port_is_free};

/// How long a stop waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The id the proxy's process carries in its environment (`INSTANCE_ID`), by which a stop
/// knows the recorded pid is still the proxy's.
const PROCESS_ID: &str = "immutable-proxy";

/// A running managed proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyStatus {
    /// HAProxy's pid.
    pub pid: u32,
    /// Whether this call started it (false: it ran already, with the same routes).
    pub started: bool,
    /// Its admin socket: the router's `--haproxy-socket`.
    pub admin_socket: PathBuf,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its log (HAProxy's stderr).
    pub log: PathBuf,
    /// The services it routes.
    pub routes: Vec<ProxyRoute>,
}

/// What `proxy.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    process: InstanceRecord,
    routes: Vec<ProxyRoute>,
}

/// An HAProxy run for the SDK's local backend under one directory (`<root>/proxy`): the
/// configuration (`haproxy.cfg`), the admin socket (`admin.sock`), the log (`stderr.log`) and
/// the record of the running process (`proxy.json`, pid and start time).
///
/// [`start`](Self::start) is idempotent: a proxy that runs with the same routes is left as
/// it is. It runs in its own session, so it outlives the program that started it, until
/// [`stop`](Self::stop). HAProxy forgets the servers the router added when it restarts: the
/// router puts them back ([`HaproxyRouter::restore`](crate::HaproxyRouter::restore)), which
/// the CLI's `proxy start` does right after a start.
#[derive(Debug, Clone)]
pub struct ManagedProxy {
    dir: PathBuf,
    binary: Option<PathBuf>,
    /// HAProxy's checks of the servers a reload carries over: `inter` in ms, rise, fall.
    check: (u128, u32, u32),
}

impl ManagedProxy {
    /// The proxy kept under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ManagedProxy {
            dir: dir.into(),
            binary: None,
            check: (500, 2, 2),
        }
    }

    /// The health checks of the servers a reload writes into the configuration (the
    /// router's: [`HaproxyRouterBuilder::health_checks`](crate::HaproxyRouterBuilder::health_checks)).
    /// Default 500 ms, 2, 2.
    pub fn health_checks(mut self, interval: Duration, rise: u32, fall: u32) -> Self {
        self.check = (interval.as_millis(), rise, fall);
        self
    }

    /// Runs this `haproxy` program instead of the one on `PATH` (or `/usr/sbin/haproxy`).
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = Some(binary.into());
        self
    }

    /// Its admin socket.
    pub fn admin_socket(&self) -> PathBuf {
        self.dir.join("admin.sock")
    }

    fn record_path(&self) -> PathBuf {
        self.dir.join("proxy.json")
    }

    /// The running proxy, if one runs.
    ///
    /// # Errors
    /// [`Error::Provider`] when its record cannot be read.
    pub fn status(&self) -> Result<Option<ProxyStatus>> {
        Ok(self.running()?.map(|r| self.status_of(&r, false)))
    }

    fn running(&self) -> Result<Option<Record>> {
        let record: Option<Record> = read_json(&self.record_path(), "proxy record")?;
        Ok(record.filter(|r| r.process.is_alive()))
    }

    fn status_of(&self, r: &Record, started: bool) -> ProxyStatus {
        ProxyStatus {
            pid: r.process.process.pid,
            started,
            admin_socket: self.admin_socket(),
            config: self.dir.join("haproxy.cfg"),
            log: self.dir.join("stderr.log"),
            routes: r.routes.clone(),
        }
    }

    /// Starts HAProxy with a configuration for `routes`, unless it runs with them already,
    /// and waits (up to 10 s) until its admin socket answers.
    ///
    /// A proxy that runs with some of `routes` (and none that `routes` changes or drops) gets
    /// the others without refusing a request: a new HAProxy starts with the running one's
    /// servers written into its configuration and takes over its listeners, and the old one
    /// finishes what it serves and exits.
    ///
    /// # Errors
    /// - [`Error::InvalidInput`] naming `routes` (none, a service twice, a port twice or
    ///   0, a port another program listens on) or `health_path`; nothing is started.
    /// - [`Error::Conflict`] when the proxy runs with a route that `routes` changes or
    ///   drops: stop it first.
    /// - [`Error::Provider`] when HAProxy is not installed (naming the package) or exits at
    ///   start (quoting its log); a running proxy is then left as it was.
    pub async fn start(&self, routes: &[ProxyRoute]) -> Result<ProxyStatus> {
        let mut routes = routes.to_vec();
        routes.sort_by(|a, b| a.service.cmp(&b.service));
        check_routes(&routes)?;
        create_private_dir_all(&self.dir)?;
        let lock = self.dir.join(".lock");
        let _lock = crate::fsutil::blocking(move || lock_file(&lock)).await?;
        let running = self.running()?;
        if let Some(r) = &running {
            if r.routes == routes {
                return Ok(self.status_of(r, false));
            }
            if !reload::only_adds(&r.routes, &routes) {
                let names = |rs: &[ProxyRoute]| {
                    rs.iter()
                        .map(|r| format!("{} on {}", r.service, r.port))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                return Err(Error::conflict(format!(
                    "the proxy under {} runs (pid {}) with routes ({}) that those asked ({}) \
                     change or drop: routes can be added to a running proxy, not changed; stop \
                     it first (`immutable proxy stop`), and the services' routing is restored \
                     when it starts again",
                    self.dir.display(),
                    r.process.process.pid,
                    names(&r.routes),
                    names(&routes)
                )));
            }
        } else {
            // An HAProxy started by a run that died before it recorded it holds the ports.
            let this = self.clone();
            crate::fsutil::blocking(move || this.stop_unrecorded()).await?;
        }
        for r in routes
            .iter()
            .filter(|r| running.as_ref().is_none_or(|old| !old.routes.contains(r)))
        {
            for port in std::iter::once(r.port).chain(r.preview_port) {
                port_is_free(&r.service, port)?;
            }
        }
        let binary = find_binary(self.binary.as_deref())?;
        let mut frontends = frontends(&routes);
        let mut args = vec!["-db".to_owned(), "-f".to_owned()];
        args.push(self.dir.join("haproxy.cfg").display().to_string());
        if let Some(old) = &running {
            let backends: Vec<String> = route::frontends(&old.routes)
                .into_iter()
                .map(|f| f.backend)
                .collect();
            let mut servers =
                reload::servers_of(&self.admin_socket(), &backends, self.check).await?;
            for f in &mut frontends {
                f.servers = servers.remove(&f.backend).unwrap_or_default();
            }
            // Once it listens, the new HAProxy tells the old one to stop accepting.
            args.extend(["-sf".to_owned(), old.process.process.pid.to_string()]);
        } else {
            let _ = std::fs::remove_file(self.admin_socket());
        }
        let cfg = self.dir.join("haproxy.cfg");
        let text = config::render(&self.admin_socket(), &frontends);
        std::fs::write(&cfg, text).map_err(|e| crate::fsutil::io_error("cannot write", &cfg, e))?;
        let mut child = spawn(Spawn {
            program: &binary,
            args: &args,
            dir: &self.dir,
            env: vec![("INSTANCE_ID".to_owned(), PROCESS_ID.to_owned())],
        })?;
        let process = ProcessId::of(child.id()).unwrap_or(ProcessId {
            pid: child.id(),
            start_ticks: 0,
        });
        let record = Record {
            process: InstanceRecord {
                id: immutable_core::InstanceId::new(PROCESS_ID),
                process,
                port: routes[0].port,
                dir: self.dir.clone(),
            },
            routes,
        };
        if running.is_none() {
            write_json_atomic(&self.record_path(), &record)?;
        }
        let log = self.dir.join("stderr.log");
        let socket = self.admin_socket();
        // The new process answers on the socket (on a reload, the old one answered there).
        let started = super::await_start(&mut child, &binary, &log, || async {
            reload::pid_on(&socket).await == Some(process.pid)
        })
        .await;
        if let Err(e) = started {
            if running.is_none() {
                let _ = std::fs::remove_file(self.record_path());
                return Err(e);
            }
            return Err(Error::provider(format!(
                "{e}; the running proxy goes on as it was"
            )));
        }
        if running.is_some() {
            write_json_atomic(&self.record_path(), &record)?;
        }
        // Reaps HAProxy if it exits while this program runs.
        std::thread::spawn(move || child.wait());
        Ok(self.status_of(&record, true))
    }

    /// Stops the proxy (SIGTERM, then SIGKILL after 5 s) and removes its record and socket;
    /// the pid it stopped, or `None` when none ran. Its configuration and log stay.
    ///
    /// # Errors
    /// [`Error::Timeout`] when HAProxy outlives SIGKILL; [`Error::Provider`] on I/O errors.
    pub async fn stop(&self) -> Result<Option<u32>> {
        if !self.dir.is_dir() {
            return Ok(None);
        }
        let this = self.clone();
        crate::fsutil::blocking(move || {
            let _lock = lock_file(&this.dir.join(".lock"))?;
            let running = this.running()?;
            match &running {
                Some(r) => this.stop_process(&r.process)?,
                None => this.stop_unrecorded()?,
            }
            let _ = std::fs::remove_file(this.record_path());
            let _ = std::fs::remove_file(this.admin_socket());
            Ok(running.map(|r| r.process.process.pid))
        })
        .await
    }
}

impl ManagedProxy {
    /// SIGTERM, then SIGKILL after [`STOP_GRACE`]; waits until it exited.
    fn stop_process(&self, process: &InstanceRecord) -> Result<()> {
        if stop_sessions(&[Session::of(process)], STOP_GRACE)? {
            return Ok(());
        }
        Err(Error::Timeout {
            what: format!("HAProxy (pid {}) to exit", process.process.pid),
            after: STOP_GRACE + KILL_WAIT,
        })
    }

    /// Stops an HAProxy this directory's proxy started but never recorded (its starter died
    /// between the start and the record): a session leader started as the proxy (its
    /// `INSTANCE_ID`) and running in this directory.
    fn stop_unrecorded(&self) -> Result<()> {
        let work = self.dir.join("work");
        let ours = |p: &ProcessId| {
            p.open().is_some_and(|(handle, _)| {
                let started_as = handle.environ().is_ok_and(|env| {
                    env.get(std::ffi::OsStr::new("INSTANCE_ID"))
                        .is_some_and(|v| v == PROCESS_ID)
                });
                started_as && handle.cwd().is_ok_and(|cwd| cwd.starts_with(&work))
            })
        };
        for &(process, session) in ProcessTable::scan()?.entries() {
            if process.pid == session && ours(&process) {
                self.stop_process(&InstanceRecord {
                    id: immutable_core::InstanceId::new(PROCESS_ID),
                    process,
                    port: 0,
                    dir: self.dir.clone(),
                })?;
            }
        }
        Ok(())
    }
}

/// The `haproxy` program: the one given, else `haproxy` on `PATH`, else Debian's
/// `/usr/sbin/haproxy`.
fn find_binary(given: Option<&Path>) -> Result<PathBuf> {
    let executable = |p: &Path| crate::fsutil::is_executable(p);
    let found = match given {
        Some(p) => Some(p.to_path_buf()).filter(|p| executable(p)),
        None => std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
            .map(|d| d.join("haproxy"))
            .find(|p| executable(p)),
    };
    found.ok_or_else(|| {
        let what = given.map_or("`haproxy` on PATH or in /usr/sbin".to_owned(), |p| {
            format!("the program {}", p.display())
        });
        Error::provider(format!(
            "HAProxy is not installed: no {what}. Install the package `haproxy` (Debian and \
             Ubuntu: `apt-get install haproxy`; Fedora: `dnf install haproxy`; macOS: \
             `brew install haproxy`), or use your own HAProxy with --haproxy-socket"
        ))
    })
}
