//! [`Haproxy`]: starts an HAProxy with a generated configuration on loopback ports, for tests
//! and examples.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use immutable_core::{BoxError, Error, Result, ServiceName};

use crate::HaproxyRouter;
use crate::fsutil::io_error;
use crate::router::HaproxyRouterBuilder;

mod config;
mod managed;

pub use managed::{ManagedProxy, ProxyRoute, ProxyStatus};

/// What to start: which services get a frontend, a backend and a preview pair.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HaproxyOptions {
    /// The `haproxy` program. Default `haproxy` on `PATH`, else `/usr/sbin/haproxy` (where
    /// Debian puts it, outside a normal user's `PATH`).
    pub binary: PathBuf,
    /// The services.
    pub services: Vec<String>,
    /// The path HAProxy's health checks request. Default `/health`.
    pub health_path: String,
    /// A directory for the configuration, the admin socket and the log; a temporary one
    /// (removed on drop) when unset.
    pub dir: Option<PathBuf>,
    /// Whether each service gets a preview frontend and backend (`<service>:preview`).
    /// Default true.
    pub preview: bool,
}

/// `haproxy` if `PATH` has it, else Debian's `/usr/sbin/haproxy` if that exists.
fn default_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("haproxy").is_file()));
    let sbin = PathBuf::from("/usr/sbin/haproxy");
    if !on_path && sbin.is_file() {
        sbin
    } else {
        PathBuf::from("haproxy")
    }
}

impl HaproxyOptions {
    /// Options for `services`.
    pub fn new<S: Into<String>>(services: impl IntoIterator<Item = S>) -> Self {
        HaproxyOptions {
            binary: default_binary(),
            services: services.into_iter().map(Into::into).collect(),
            health_path: "/health".into(),
            dir: None,
            preview: true,
        }
    }

    /// No preview frontend or backend: the router skips preview steps.
    pub fn without_preview(mut self) -> Self {
        self.preview = false;
        self
    }

    /// Uses another `haproxy` program.
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = binary.into();
        self
    }

    /// Keeps the configuration, socket and log in `dir`.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
}

/// One service's entry points on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryPoints {
    /// The live frontend.
    pub live: SocketAddr,
    /// The preview frontend (its port is reserved even without one).
    pub preview: SocketAddr,
}

/// A running HAProxy: killed when dropped.
///
/// The generated configuration gives each service a backend named after it (and a frontend
/// `fe-<service>` feeding it), and a `<service>:preview` pair (unless
/// [`without_preview`](HaproxyOptions::without_preview)), every frontend on its own loopback
/// port. Backends balance
/// `roundrobin` (a dynamic algorithm, which `add server` requires) and check
/// `GET <health path>`. For zero-failure swaps: `option redispatch` with `retries 3` moves a
/// request whose connection fails to another server; `http-reuse safe` never sends a first
/// request over a reused connection; client and server timeouts outlast any drain. Requests are
/// not replayed once sent (no `retry-on` beyond connection failures), so a server killed with
/// requests in flight fails them, which is what draining prevents.
#[derive(Debug)]
pub struct Haproxy {
    child: Option<Child>,
    options: HaproxyOptions,
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    entry_points: BTreeMap<ServiceName, EntryPoints>,
}

impl Haproxy {
    /// Writes the configuration and starts HAProxy, waiting (up to 10 s) until its admin
    /// socket answers.
    ///
    /// # Errors
    /// [`Error::Provider`] when HAProxy cannot start (the program is missing, say, or it
    /// exits), naming the program and quoting its log; [`Error::InvalidInput`] for a bad
    /// service name.
    pub async fn start(options: HaproxyOptions) -> Result<Self> {
        let (temp, dir) = match &options.dir {
            Some(d) => {
                crate::fsutil::create_private_dir_all(d)?;
                (None, d.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("immutable-haproxy-")
                    .tempdir()
                    .map_err(|e| io_error("cannot create", &std::env::temp_dir(), e))?;
                let d = t.path().to_path_buf();
                (Some(t), d)
            }
        };
        let mut entry_points = BTreeMap::new();
        // Every probe's listener stays open until all ports are known, so no two entry points
        // are handed the same port.
        let mut probes = Vec::new();
        for s in &options.services {
            let service = ServiceName::new(s.clone())?;
            entry_points.insert(
                service,
                EntryPoints {
                    live: loopback_port(&mut probes)?,
                    preview: loopback_port(&mut probes)?,
                },
            );
        }
        drop(probes);
        let haproxy = Haproxy {
            child: None,
            options,
            dir,
            _temp: temp,
            entry_points,
        };
        let cfg = haproxy.config_path();
        std::fs::write(&cfg, haproxy.config()).map_err(|e| io_error("cannot write", &cfg, e))?;
        let mut haproxy = haproxy;
        haproxy.launch().await?;
        Ok(haproxy)
    }

    /// The admin socket (level admin).
    pub fn admin_socket(&self) -> PathBuf {
        self.dir.join("admin.sock")
    }

    /// The directory of the configuration, socket and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A service's entry points.
    pub fn entry_points(&self, service: &str) -> Option<EntryPoints> {
        self.entry_points
            .iter()
            .find(|(s, _)| s.as_str() == service)
            .map(|(_, e)| *e)
    }

    /// `http://<live entry point>`, for a service this HAProxy routes.
    ///
    /// # Panics
    /// If the service is not one of the options' services.
    pub fn url(&self, service: &str) -> String {
        let e = self
            .entry_points(service)
            .expect("a service of this HAProxy");
        format!("http://{}", e.live)
    }

    /// `http://<preview entry point>`.
    ///
    /// # Panics
    /// If the service is not one of the options' services.
    pub fn preview_url(&self, service: &str) -> String {
        let e = self
            .entry_points(service)
            .expect("a service of this HAProxy");
        format!("http://{}", e.preview)
    }

    /// A router builder for this HAProxy's admin socket and every service.
    pub fn router_builder(&self) -> HaproxyRouterBuilder {
        self.entry_points
            .keys()
            .fold(HaproxyRouter::builder(self.admin_socket()), |b, s| {
                b.service(s.as_str())
            })
    }

    /// The configuration file HAProxy runs with.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("haproxy.cfg")
    }

    /// Stops HAProxy and starts it again with the same configuration file and ports: every
    /// dynamic server is lost, as on a reload; the router puts them back (see
    /// [`HaproxyRouter::keep_restored`]).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn restart(&mut self) -> Result<()> {
        self.stop();
        self.launch().await
    }

    /// Kills HAProxy with SIGKILL, as a crash would: its socket file stays behind, and
    /// [`start_again`](Self::start_again) starts it with the same configuration.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts HAProxy again after [`kill`](Self::kill) (or [`stop`](Self::stop)), with the same
    /// configuration file, unchanged, waiting (up to 10 s) until its admin socket answers.
    ///
    /// # Errors
    /// As [`start`](Self::start); a running HAProxy is left as it is.
    pub async fn start_again(&mut self) -> Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        self.launch().await
    }

    /// Kills HAProxy now.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.admin_socket());
    }

    fn config(&self) -> String {
        let mut frontends = Vec::new();
        for (service, e) in &self.entry_points {
            frontends.push(config::Frontend {
                backend: service.to_string(),
                bind: e.live,
                health_path: self.options.health_path.clone(),
                servers: Vec::new(),
            });
            if self.options.preview {
                frontends.push(config::Frontend {
                    backend: service.derived("preview"),
                    bind: e.preview,
                    health_path: self.options.health_path.clone(),
                    servers: Vec::new(),
                });
            }
        }
        config::render(&self.admin_socket(), &frontends)
    }

    async fn launch(&mut self) -> Result<()> {
        let cfg = self.config_path();
        let log_path = self.dir.join("haproxy.log");
        // Appended to, so that a restart keeps the log of the run before it.
        let log = crate::fsutil::append_file(&log_path)?;
        let err_log = log
            .try_clone()
            .map_err(|e| io_error("cannot open", &log_path, e))?;
        let binary = &self.options.binary;
        let child = Command::new(binary)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| Error::Provider {
                message: format!(
                    "cannot start HAProxy `{}`: {e} (install it: apt-get install haproxy)",
                    binary.display()
                ),
                source: Some(Box::new(e) as BoxError),
            })?;
        self.child = Some(child);
        self.await_socket(&log_path).await
    }

    async fn await_socket(&mut self, log: &Path) -> Result<()> {
        let socket = self.admin_socket();
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        let started = await_start(child, &self.options.binary, log, || {
            crate::router::probe(socket.clone())
        })
        .await;
        if started.is_err() {
            // Exited, or killed and reaped on the timeout.
            self.child = None;
        }
        started
    }
}

/// Waits (up to 10 s) until `ready` says the HAProxy just started answers, or it exits; on
/// the timeout, kills and reaps it. The errors name the program and quote its log.
pub(crate) async fn await_start<F, Fut>(
    child: &mut Child,
    binary: &Path,
    log: &Path,
    mut ready: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::provider(format!(
                "HAProxy `{}` exited at start ({status}); its log ({}): {}",
                binary.display(),
                log.display(),
                crate::fleet::log_tail(log, 10)
            )));
        }
        if ready().await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::provider(format!(
                "HAProxy `{}` did not open its admin socket within 10 s; its log ({}): {}",
                binary.display(),
                log.display(),
                crate::fleet::log_tail(log, 10)
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free loopback address; its listener is kept in `probes` until the caller drops them.
fn loopback_port(probes: &mut Vec<TcpListener>) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| io_error("cannot bind", Path::new("127.0.0.1:0"), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| io_error("cannot bind", Path::new("127.0.0.1:0"), e))?;
    probes.push(listener);
    Ok(addr)
}
