//! Docker for the Docker backend's tests: the machine's daemon, private daemons, and a
//! daemon that refuses to start containers when a test says so.
//!
//! - [`system`]: a client of the machine's daemon (`DOCKER_HOST`, or `/var/run/docker.sock`),
//!   its API version negotiated down to the daemon's.
//! - [`PrivateDaemon`]: a second `dockerd` of the test's own (its own data, socket and
//!   containerd, under a directory in `/tmp`), killed and deleted when dropped.
//! - [`RefusingPlugin`]: an authorization plugin served by the test; a private daemon started
//!   with it refuses `POST /containers/{id}/start` while the test asks it to.
//! - [`Sweep`]: removes, when dropped, the containers and images a test made, even when the
//!   test panics.
//!
//! ```no_run
//! # async fn example() {
//! use immutable_testkit::docker::{PrivateDaemon, RefusingPlugin};
//!
//! let plugin = RefusingPlugin::start();
//! let daemon = PrivateDaemon::builder().authorization_plugin(&plugin).start().await;
//! let docker = daemon.client();
//! // ... create a container on `docker`, then:
//! plugin.refuse_container_starts(true);
//! // starting it now fails with the plugin's message, immutable_testkit::docker::REFUSAL
//! # }
//! ```
//!
//! # Assumptions
//! Debian's `docker.io` (dockerd 20.10, API 1.41), run as root: `scripts/test.sh` installs it
//! and starts the system daemon when none answers. Tests fail, never skip, without it.
//!
//! # Caveats
//! bollard speaks API 1.53 unless told otherwise; every client made here has negotiated down
//! to the daemon's version, as clients of an older daemon must.

mod daemon;
mod plugin;
mod sweep;
mod teardown;
mod tls;

use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};

pub use daemon::{DOCKERD, PrivateDaemon, PrivateDaemonBuilder};
pub use plugin::{PLUGIN_DIR, REFUSAL, RefusingPlugin};
pub use sweep::Sweep;
pub use tls::TlsCerts;

/// The system daemon's socket when `DOCKER_HOST` names none.
pub const SYSTEM_SOCKET: &str = "/var/run/docker.sock";

/// How long a client waits for one answer of the daemon, in seconds (bollard's unit).
const CLIENT_TIMEOUT_SECS: u64 = 120;

/// How long a ping may take before the daemon counts as not answering.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of the machine's Docker daemon: `DOCKER_HOST` (`unix://` or `tcp://`), or
/// [`SYSTEM_SOCKET`]; pinged, and its API version negotiated down to the daemon's.
///
/// # Panics
/// When no daemon answers there, saying what to install and start.
pub async fn system() -> Docker {
    let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| format!("unix://{SYSTEM_SOCKET}"));
    match connect(&host).await {
        Ok((docker, _)) => docker,
        Err(why) => panic!(
            "no Docker daemon answers at {host} ({why}): install docker.io and start dockerd; \
             scripts/test.sh does both"
        ),
    }
}

/// Connects to `host` (`unix:///path`, a bare socket path, or `tcp://host:port`), pings it
/// and negotiates the API version; the client and that version.
pub(crate) async fn connect(host: &str) -> Result<(Docker, ClientVersion), String> {
    let docker = client_of(host, API_DEFAULT_VERSION)?;
    match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(format!("ping failed: {e}")),
        Err(_) => {
            return Err(format!(
                "no answer to a ping within {} s",
                PING_TIMEOUT.as_secs()
            ));
        }
    }
    let docker = tokio::time::timeout(PING_TIMEOUT, docker.negotiate_version())
        .await
        .map_err(|_| {
            format!(
                "no answer to GET /version within {} s",
                PING_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("API version negotiation failed: {e}"))?;
    let version = docker.client_version();
    Ok((docker, version))
}

/// A client of `host` speaking `version`, without a call to the daemon.
pub(crate) fn client_of(host: &str, version: &ClientVersion) -> Result<Docker, String> {
    let connected = if let Some(address) = host.strip_prefix("tcp://") {
        Docker::connect_with_http(&format!("tcp://{address}"), CLIENT_TIMEOUT_SECS, version)
    } else if host.starts_with("unix://") || host.starts_with('/') {
        Docker::connect_with_unix(host, CLIENT_TIMEOUT_SECS, version)
    } else {
        return Err("DOCKER_HOST must start with unix:// or tcp://".into());
    };
    connected.map_err(|e| e.to_string())
}
