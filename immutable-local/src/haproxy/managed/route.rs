//! [`ProxyRoute`]: one service a managed proxy routes, and the checks on a set of them.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use immutable_core::{Error, Result, ServiceName};
use serde::{Deserialize, Serialize};

use super::super::config::Frontend;

/// One service a [`ManagedProxy`](crate::ManagedProxy) routes: its live entry point on `127.0.0.1:<port>`, a
/// preview entry point when asked, and the path HAProxy checks each instance's health on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProxyRoute {
    /// The service (its backend in HAProxy is named after it).
    pub service: ServiceName,
    /// The live entry point's port on 127.0.0.1.
    pub port: u16,
    /// The preview entry point's port (backend `<service>:preview`), if any.
    pub preview_port: Option<u16>,
    /// What HAProxy's health checks request. Default `/health`.
    pub health_path: String,
}

impl ProxyRoute {
    /// `service` on `127.0.0.1:<port>`, checked on `/health`, without preview.
    pub fn new(service: ServiceName, port: u16) -> Self {
        ProxyRoute {
            service,
            port,
            preview_port: None,
            health_path: "/health".into(),
        }
    }

    /// A preview entry point on `port`.
    pub fn preview(mut self, port: u16) -> Self {
        self.preview_port = Some(port);
        self
    }

    /// Health checks on `path`.
    pub fn health_path(mut self, path: impl Into<String>) -> Self {
        self.health_path = path.into();
        self
    }
}

pub(super) fn frontends(routes: &[ProxyRoute]) -> Vec<Frontend> {
    let ip = Ipv4Addr::LOCALHOST.into();
    let mut out = Vec::new();
    for r in routes {
        out.push(Frontend {
            backend: r.service.to_string(),
            bind: SocketAddr::new(ip, r.port),
            health_path: r.health_path.clone(),
            servers: Vec::new(),
        });
        if let Some(port) = r.preview_port {
            out.push(Frontend {
                backend: r.service.derived("preview"),
                bind: SocketAddr::new(ip, port),
                health_path: r.health_path.clone(),
                servers: Vec::new(),
            });
        }
    }
    out
}

pub(super) fn check_routes(routes: &[ProxyRoute]) -> Result<()> {
    if routes.is_empty() {
        return Err(Error::invalid(
            "routes",
            "name at least one service and its port",
        ));
    }
    let mut ports = std::collections::BTreeMap::new();
    for (i, r) in routes.iter().enumerate() {
        if i > 0 && routes[i - 1].service == r.service {
            return Err(Error::invalid(
                "routes",
                format!("service {} is named twice", r.service),
            ));
        }
        if !crate::fsutil::is_health_path(&r.health_path) {
            return Err(Error::invalid(
                "health_path",
                format!(
                    "`{}` of service {} must start with `/` and hold no spaces",
                    r.health_path, r.service
                ),
            ));
        }
        for port in std::iter::once(r.port).chain(r.preview_port) {
            if port == 0 {
                return Err(Error::invalid(
                    "routes",
                    format!("service {}: port 0 is not a port to serve on", r.service),
                ));
            }
            if let Some(other) = ports.insert(port, &r.service) {
                return Err(Error::invalid(
                    "routes",
                    format!("port {port} is given to {other} and to {}", r.service),
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn port_is_free(service: &ServiceName, port: u16) -> Result<()> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .map(drop)
        .map_err(|e| {
            Error::invalid(
                "routes",
                format!(
                    "port {port} of service {service} on 127.0.0.1 cannot be listened on ({e}): \
                     another program uses it; pick another port"
                ),
            )
        })
}
