//! What every container of a fleet gets: how the proxy reaches it, and its resource limits.

use immutable_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// How the proxy reaches a container's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Network {
    /// The container shares its host's network (`--network host`) and listens on `PORT`
    /// itself, on the host's loopback or every address. The default: no NAT, no
    /// docker-proxy, the same port inside and out.
    #[default]
    Host,
    /// The container runs on Docker's bridge and `PORT` (the same number inside) is
    /// published on the host's address only (127.0.0.1 by default, see
    /// [`DockerHost::with_address`](crate::DockerHost::with_address)); the app must listen on every address of its
    /// container (0.0.0.0), since the bridge is where Docker delivers the traffic.
    Published,
}

/// Resource limits of every container: none by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Limits {
    /// Memory in bytes (`--memory`).
    pub memory_bytes: Option<i64>,
    /// CPUs in billionths (`--cpus 0.5` is 500,000,000).
    pub nano_cpus: Option<i64>,
}

impl Limits {
    /// No limits.
    pub fn none() -> Self {
        Limits::default()
    }

    /// Limits memory to `bytes`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `memory` below Docker's minimum of 6 MiB.
    pub fn memory(mut self, bytes: u64) -> Result<Self> {
        if bytes < 6 * 1024 * 1024 {
            return Err(Error::invalid(
                "memory",
                format!("{bytes} bytes is below Docker's minimum of 6 MiB"),
            ));
        }
        self.memory_bytes = Some(i64::try_from(bytes).unwrap_or(i64::MAX));
        Ok(self)
    }

    /// Limits CPU time to `cpus` CPUs (0.5 is half of one).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `cpus` when not above 0 and finite.
    pub fn cpus(mut self, cpus: f64) -> Result<Self> {
        if !(cpus.is_finite() && cpus > 0.0 && cpus <= 1024.0) {
            return Err(Error::invalid(
                "cpus",
                format!("{cpus} is not a number of CPUs: give one above 0, such as 0.5"),
            ));
        }
        self.nano_cpus = Some((cpus * 1e9) as i64);
        Ok(self)
    }
}
