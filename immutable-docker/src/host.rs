//! [`DockerHost`]: one Docker Engine a fleet may run containers on, and [`DockerHosts`], the
//! ordered set a fleet spreads over.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::{API_DEFAULT_VERSION, Docker};
use immutable_core::{Error, ResourceKind, Result};

use crate::error::{REQUEST_TIMEOUT, map};

/// The files of a TLS connection to a Docker daemon, as `docker` reads them from
/// `DOCKER_CERT_PATH`: the CA that signed the daemon's certificate, and the client's own
/// certificate and key.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsFiles {
    /// The CA certificate (`ca.pem`).
    pub ca: PathBuf,
    /// The client certificate (`cert.pem`).
    pub cert: PathBuf,
    /// The client key (`key.pem`); its content is never read into an error or a log.
    pub key: PathBuf,
}

impl TlsFiles {
    /// `ca.pem`, `cert.pem` and `key.pem` in `dir`, as `DOCKER_CERT_PATH` names them.
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFiles")
            .field("ca", &self.ca)
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

/// One Docker Engine, reached through its API: a unix socket (`unix:///var/run/docker.sock`)
/// or TCP (`tcp://10.0.0.5:2376`, with TLS when [`TlsFiles`] are given).
///
/// A host has a name, unique in its [`DockerHosts`], that instance ids and state files
/// record, and an address: where the proxy reaches the ports its containers listen on.
/// It is 127.0.0.1 by default, right for a daemon on the proxy's machine.
///
/// The client negotiates the API version down to the daemon's (Debian 12's docker.io 20.10
/// speaks 1.41), so any daemon from API 1.41 on works.
#[derive(Clone)]
pub struct DockerHost {
    inner: Arc<HostInner>,
}

struct HostInner {
    name: String,
    url: String,
    address: IpAddr,
    client: Docker,
}

impl fmt::Debug for DockerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerHost")
            .field("name", &self.inner.name)
            .field("url", &self.inner.url)
            .field("address", &self.inner.address)
            .finish_non_exhaustive()
    }
}

impl DockerHost {
    /// Connects to the daemon at `url` (`unix://PATH`, or `tcp://HOST:PORT` in plain HTTP)
    /// and negotiates the API version.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `name` (see [`DockerHosts::new`]) or on `url` for another
    /// scheme; [`Error::Provider`] naming the URL when no daemon answers there.
    pub async fn connect(name: impl Into<String>, url: impl Into<String>) -> Result<Self> {
        let (name, url) = (name.into(), url.into());
        Self::check_name(&name)?;
        Self::check_url(&url)?;
        let timeout = REQUEST_TIMEOUT.as_secs();
        let client = match url.strip_prefix("unix://") {
            Some(path) => Docker::connect_with_unix(path, timeout, API_DEFAULT_VERSION),
            None => Docker::connect_with_http(&url, timeout, API_DEFAULT_VERSION),
        };
        let client = client.map_err(|e| unreachable_daemon(&url, e))?;
        Self::negotiated(name, url, client).await
    }

    /// Connects to the daemon at `tcp://HOST:PORT` over TLS, verifying its certificate
    /// against `tls.ca` and presenting `tls.cert` and `tls.key`.
    ///
    /// # Errors
    /// As [`connect`](Self::connect); a certificate that cannot be read is
    /// [`Error::InvalidInput`] on `tls`, naming the file.
    ///
    /// # Caveats
    /// TLS goes through rustls with the ring provider. When the program has named no process
    /// default provider, this names ring: rustls cannot choose one itself in a program that
    /// also links another (the AWS SDK links aws-lc-rs), and would panic.
    pub async fn connect_tls(
        name: impl Into<String>,
        url: impl Into<String>,
        tls: &TlsFiles,
    ) -> Result<Self> {
        let (name, url) = (name.into(), url.into());
        Self::check_name(&name)?;
        for file in [&tls.ca, &tls.cert, &tls.key] {
            if !file.is_file() {
                return Err(Error::invalid(
                    "tls",
                    format!("{} is not a readable file", file.display()),
                ));
            }
        }
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Another thread may have named one meanwhile: then that one serves.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = Docker::connect_with_ssl(
            &url,
            &tls.key,
            &tls.cert,
            &tls.ca,
            REQUEST_TIMEOUT.as_secs(),
            API_DEFAULT_VERSION,
        )
        .map_err(|e| Error::invalid("tls", format!("cannot use the files for {url}: {e}")))?;
        Self::negotiated(name, url, client).await
    }

    /// A host over a client built by the caller (a request modifier, a custom transport);
    /// the client's API version is negotiated here.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn with_client(
        name: impl Into<String>,
        url: impl Into<String>,
        client: Docker,
    ) -> Result<Self> {
        let name = name.into();
        Self::check_name(&name)?;
        Self::negotiated(name, url.into(), client).await
    }

    /// Checks a host name without connecting: 1 to 32 ASCII letters, digits, `-` and `_`,
    /// starting with a letter or digit.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `name`.
    pub fn check_name(name: &str) -> Result<()> {
        let ok = !name.is_empty()
            && name.len() <= 32
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                "name",
                format!(
                    "Docker host name `{name}` must be 1 to 32 letters, digits, `-` or `_`, \
                     starting with a letter or digit"
                ),
            ))
        }
    }

    /// Checks a URL [`connect`](Self::connect) takes, without connecting: `unix://PATH`,
    /// `tcp://HOST:PORT` or `http://HOST:PORT`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `url` for another scheme or nothing after it.
    pub fn check_url(url: &str) -> Result<()> {
        let rest = ["unix://", "tcp://", "http://"]
            .iter()
            .find_map(|scheme| url.strip_prefix(scheme));
        match rest {
            Some(rest) if !rest.is_empty() => Ok(()),
            _ => Err(Error::invalid(
                "url",
                format!(
                    "`{url}` is not a Docker host: use unix:///path/to/docker.sock or \
                     tcp://host:port"
                ),
            )),
        }
    }

    async fn negotiated(name: String, url: String, client: Docker) -> Result<Self> {
        let client = client
            .negotiate_version()
            .await
            .map_err(|e| unreachable_daemon(&url, e))?;
        Ok(DockerHost {
            inner: Arc::new(HostInner {
                name,
                url,
                address: IpAddr::V4(Ipv4Addr::LOCALHOST),
                client,
            }),
        })
    }

    /// Where the proxy reaches this host's container ports (127.0.0.1 by default).
    #[must_use]
    pub fn with_address(self, address: IpAddr) -> Self {
        let inner = &self.inner;
        DockerHost {
            inner: Arc::new(HostInner {
                name: inner.name.clone(),
                url: inner.url.clone(),
                address,
                client: inner.client.clone(),
            }),
        }
    }

    /// The host's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The URL it was reached at.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Where its containers' ports are reached.
    pub fn address(&self) -> IpAddr {
        self.inner.address
    }

    /// The Engine API client.
    pub fn client(&self) -> &Docker {
        &self.inner.client
    }

    /// Maps an error of `what` on this host.
    pub(crate) fn error(
        &self,
        what: &str,
        kind: ResourceKind,
        id: &str,
        e: bollard::errors::Error,
    ) -> Error {
        map(self.name(), what, kind, id, e)
    }
}

fn unreachable_daemon(url: &str, e: bollard::errors::Error) -> Error {
    Error::Provider {
        message: format!(
            "no Docker daemon answers at {url}: {e}; start dockerd, or name another host"
        ),
        source: Some(Box::new(e)),
    }
}

/// The Docker hosts a fleet spreads over, in order: instance `n` of a fleet runs on host
/// `n mod len`, and that placement is recorded when the fleet is launched, so a resumed
/// launch puts each instance where the first attempt did.
#[derive(Debug, Clone)]
pub struct DockerHosts {
    hosts: Arc<Vec<DockerHost>>,
}

impl DockerHosts {
    /// The hosts, in placement order.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `hosts` when there is none or two share a name.
    pub fn new(hosts: impl IntoIterator<Item = DockerHost>) -> Result<Self> {
        let hosts: Vec<DockerHost> = hosts.into_iter().collect();
        if hosts.is_empty() {
            return Err(Error::invalid("hosts", "name at least one Docker host"));
        }
        for (i, host) in hosts.iter().enumerate() {
            if hosts[..i].iter().any(|h| h.name() == host.name()) {
                return Err(Error::invalid(
                    "hosts",
                    format!(
                        "two Docker hosts are named `{}`: names must differ",
                        host.name()
                    ),
                ));
            }
        }
        Ok(DockerHosts {
            hosts: Arc::new(hosts),
        })
    }

    /// The hosts in placement order.
    pub fn iter(&self) -> impl Iterator<Item = &DockerHost> {
        self.hosts.iter()
    }

    /// How many hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Never true: there is at least one host.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The host named `name`.
    pub fn get(&self, name: &str) -> Option<&DockerHost> {
        self.hosts.iter().find(|h| h.name() == name)
    }

    /// The host of instance `index`.
    pub(crate) fn for_index(&self, index: u32) -> &DockerHost {
        &self.hosts[index as usize % self.hosts.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_follow_a_grammar() {
        for ok in ["a", "host-1", "b_2", "X9"] {
            DockerHost::check_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", "-a", "a.b", "a/b", "a b", &"x".repeat(33)] {
            match DockerHost::check_name(bad) {
                Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "name"),
                other => panic!("{bad:?}: expected InvalidInput, got {other:?}"),
            }
        }
    }

    #[test]
    fn urls_are_checked_without_connecting() {
        for ok in [
            "unix:///var/run/docker.sock",
            "tcp://10.0.0.5:2376",
            "http://h:2375",
        ] {
            DockerHost::check_url(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "unix://",
            "ssh://user@h",
            "npipe:////./pipe/docker",
            "/var/run/docker.sock",
        ] {
            match DockerHost::check_url(bad) {
                Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "url"),
                other => panic!("{bad:?}: expected InvalidInput, got {other:?}"),
            }
        }
    }

    #[test]
    fn tls_files_never_show_the_key_path_in_debug() {
        let tls = TlsFiles::in_dir("/secret/dir");
        let shown = format!("{tls:?}");
        assert!(!shown.contains("key.pem"), "{shown}");
        assert!(shown.contains("ca.pem"), "{shown}");
    }
}
