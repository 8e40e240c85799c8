//! A second `dockerd` on this machine, the test's own: [`PrivateDaemon`].

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};
use rustix::process::{Pid, Signal};

use super::RefusingPlugin;
use super::teardown;
use super::tls::TlsCerts;

/// Where Debian's `docker.io` package puts the daemon.
pub const DOCKERD: &str = "/usr/sbin/dockerd";

/// How often the socket is tried while the daemon starts.
const POLL: Duration = Duration::from_millis(100);

/// How long a dockerd asked to stop may take before it is killed.
const SHUTDOWN: Duration = Duration::from_secs(20);

/// A `dockerd` of the test's own, with its own data, socket and containerd under a directory
/// in `/tmp`; dropping it stops it and deletes all of it.
///
/// The daemon runs with `--iptables=false --ip-masq=false` and a bridge of its own (made for
/// it, `imdk-<6 hex>` on a 10.213.x.0/24 network, deleted after it), so it touches neither the
/// host's firewall nor `docker0`: with `--bridge=none` dockerd deletes `docker0` at start,
/// which breaks the system daemon's bridge network under its feet. The tests run containers
/// on the host's network. It reads an empty configuration file of its own, not `/etc/docker/daemon.json`, and
/// names its containerd namespaces after its directory, so it shares nothing with the system
/// daemon even where both reach one containerd.
///
/// # Guarantees
/// Dropped (the test's end, or its panic), what its containers run is killed; then it is
/// asked to stop (SIGTERM: it stops its containerd and unmounts what it mounted) and waited
/// for at most 20 s, then its process group is killed; whatever still names its directory
/// (its containerd, the shims of its containers, what they run) is killed, what is still
/// mounted under the directory is unmounted, and the directory is deleted.
#[derive(Debug)]
pub struct PrivateDaemon {
    child: Child,
    socket: PathBuf,
    version: ClientVersion,
    // Dropped after `Drop::drop` has stopped the daemon: the directory, then the plugins it
    // asked while it ran.
    dir: tempfile::TempDir,
    bridge: String,
    tls: Option<(TlsCerts, String)>,
    _plugins: Vec<RefusingPlugin>,
}

/// How to start a [`PrivateDaemon`]: which `dockerd`, which authorization plugins, how long
/// to wait for it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PrivateDaemonBuilder {
    dockerd: PathBuf,
    plugins: Vec<RefusingPlugin>,
    ready: Duration,
    tls: bool,
}

impl Default for PrivateDaemonBuilder {
    fn default() -> Self {
        Self::from_env()
    }
}

impl PrivateDaemonBuilder {
    /// Debian's `dockerd`, or the one `IMMUTABLE_DOCKERD` names; no plugin; 60 s to answer.
    pub fn from_env() -> Self {
        PrivateDaemonBuilder {
            dockerd: std::env::var_os("IMMUTABLE_DOCKERD")
                .map_or_else(|| PathBuf::from(DOCKERD), PathBuf::from),
            plugins: Vec::new(),
            ready: Duration::from_secs(60),
            tls: false,
        }
    }

    /// Runs this `dockerd` binary.
    pub fn with_dockerd(mut self, path: impl Into<PathBuf>) -> Self {
        self.dockerd = path.into();
        self
    }

    /// Starts the daemon with `--authorization-plugin <the plugin's name>`; the plugin keeps
    /// serving as long as the daemon runs.
    pub fn authorization_plugin(mut self, plugin: &RefusingPlugin) -> Self {
        self.plugins.push(plugin.clone());
        self
    }

    /// Also listens on TCP (a free port on 127.0.0.1) with TLS, clients verified against a
    /// CA made for it: see [`PrivateDaemon::tls_url`] and [`PrivateDaemon::tls`].
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// How long the daemon may take to answer a ping on its socket.
    pub fn ready_within(mut self, ready: Duration) -> Self {
        self.ready = ready;
        self
    }

    /// Starts the daemon and waits until it answers on its socket.
    ///
    /// # Panics
    /// When `dockerd` is missing (saying what to install), or does not answer in time (with
    /// the end of its log). What it started is stopped and deleted all the same.
    pub async fn start(self) -> PrivateDaemon {
        assert!(
            is_executable(&self.dockerd),
            "dockerd not found at {}: install docker.io (Debian's package; scripts/test.sh does), \
             or name another with IMMUTABLE_DOCKERD",
            self.dockerd.display()
        );
        // Short, as unix sockets are: containerd's lies three levels below the exec root.
        let dir = tempfile::Builder::new()
            .prefix("imdk.")
            .tempdir_in("/tmp")
            .expect("a directory in /tmp for a private dockerd");
        let root = dir.path();
        let namespace = format!(
            "immutable-{}",
            root.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("private")
        );
        std::fs::write(root.join("daemon.json"), "{}\n").expect("an empty daemon.json");
        let log = File::create(root.join("dockerd.log")).expect("a log file for dockerd");
        let err = log.try_clone().expect("the log file, twice");
        let socket = root.join("d.sock");
        let bridge = make_bridge();
        let mut command = Command::new(&self.dockerd);
        command
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("x"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .arg("--config-file")
            .arg(root.join("daemon.json"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args(["--iptables=false", "--ip-masq=false", "--bridge", &bridge])
            .args(["--containerd-namespace", &namespace])
            .args([
                "--containerd-plugins-namespace",
                &format!("{namespace}-plugins"),
            ]);
        for plugin in &self.plugins {
            command.arg("--authorization-plugin").arg(plugin.name());
        }
        let tls = self.tls.then(|| {
            let certs = TlsCerts::make(root);
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            command
                .arg("-H")
                .arg(format!("tcp://127.0.0.1:{port}"))
                .args(certs.daemon_args());
            (certs, format!("tcp://127.0.0.1:{port}"))
        });
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.dockerd.display()));
        let mut daemon = PrivateDaemon {
            child,
            socket,
            version: *API_DEFAULT_VERSION,
            dir,
            bridge,
            tls,
            _plugins: self.plugins,
        };
        daemon.version = daemon.await_ready(self.ready).await;
        daemon
    }
}

/// Makes a bridge for a private daemon: `imdk-<6 hex>` on 10.213.<n>.1/24, up.
fn make_bridge() -> String {
    let n = fastrand::u32(..0x100_0000);
    let name = format!("imdk-{n:06x}");
    let address = format!("10.213.{}.1/24", n % 250 + 1);
    for args in [
        vec!["link", "add", name.as_str(), "type", "bridge"],
        vec!["addr", "add", address.as_str(), "dev", name.as_str()],
        vec!["link", "set", name.as_str(), "up"],
    ] {
        let status = Command::new(IP).args(&args).status();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "`ip {}` failed ({status:?}): a private dockerd needs a bridge of its own \
             (iproute2, as root)",
            args.join(" ")
        );
    }
    name
}

/// Debian's `ip` (iproute2).
const IP: &str = "/usr/sbin/ip";

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl PrivateDaemon {
    /// How to start one with an authorization plugin, or another `dockerd`.
    pub fn builder() -> PrivateDaemonBuilder {
        PrivateDaemonBuilder::from_env()
    }

    /// Starts Debian's `dockerd` as [`PrivateDaemonBuilder::from_env`] says.
    ///
    /// # Panics
    /// As [`PrivateDaemonBuilder::start`].
    pub async fn start() -> PrivateDaemon {
        Self::builder().start().await
    }

    /// Waits until the socket answers a ping, and negotiates the API version.
    async fn await_ready(&mut self, within: Duration) -> ClientVersion {
        let started = Instant::now();
        let mut last = String::from("its socket does not exist yet");
        loop {
            if self.socket.exists() {
                match super::connect(&self.host_url()).await {
                    Ok((_, version)) => return version,
                    Err(why) => last = why,
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the private dockerd exited ({status}) before it answered; its log ends:\n{}",
                    self.log_tail()
                );
            }
            assert!(
                started.elapsed() < within,
                "the private dockerd did not answer on {} within {} s ({last}); its log ends:\n{}",
                self.socket.display(),
                within.as_secs(),
                self.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Its TCP address with TLS (`tcp://127.0.0.1:<port>`), when started with
    /// [`PrivateDaemonBuilder::tls`].
    pub fn tls_url(&self) -> Option<&str> {
        self.tls.as_ref().map(|(_, url)| url.as_str())
    }

    /// Its certificates, when started with [`PrivateDaemonBuilder::tls`].
    pub fn tls(&self) -> Option<&TlsCerts> {
        self.tls.as_ref().map(|(certs, _)| certs)
    }

    /// The daemon's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon's address as `DOCKER_HOST` takes it: `unix:///tmp/imdk.…/d.sock`.
    pub fn host_url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// A client of the daemon, speaking the API version negotiated when it started.
    pub fn client(&self) -> Docker {
        super::client_of(&self.host_url(), &self.version)
            .unwrap_or_else(|why| panic!("no client of the private dockerd: {why}"))
    }

    /// The directory holding everything of the daemon (its data root, exec root, socket and
    /// log), deleted on drop.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The daemon's process id, which is also the id of its process group.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the daemon's log, for a failing test to show.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.root().join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Asks dockerd to stop, and kills its group if it has not within [`SHUTDOWN`].
    fn stop(&mut self) {
        let pid = Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, Signal::TERM);
        let deadline = Instant::now() + SHUTDOWN;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = rustix::process::kill_process_group(pid, Signal::KILL);
        let _ = self.child.wait();
    }
}

impl Drop for PrivateDaemon {
    fn drop(&mut self) {
        teardown::kill_containers(self.dir.path());
        self.stop();
        let root = self.dir.path().to_path_buf();
        teardown::kill_processes_naming(&root);
        teardown::unmount_under(&root);
        let _ = Command::new(IP)
            .args(["link", "del", self.bridge.as_str()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
