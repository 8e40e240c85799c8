//! The HAProxy configuration the SDK generates: an admin socket, defaults for zero-failure
//! swaps, and a frontend feeding a backend per entry point.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

/// One entry point: a frontend on `bind` feeding the backend `backend`, whose servers are
/// checked with `GET <health_path>`; `servers` are written into the backend (a reload
/// carries a running HAProxy's servers over), the router adds the others at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frontend {
    pub(crate) backend: String,
    pub(crate) bind: SocketAddr,
    pub(crate) health_path: String,
    pub(crate) servers: Vec<StaticServer>,
}

/// A server written into a backend, as HAProxy ran it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StaticServer {
    pub(crate) name: String,
    pub(crate) addr: String,
    pub(crate) port: u16,
    pub(crate) weight: u32,
    /// In maintenance (`disabled`).
    pub(crate) disabled: bool,
    /// `inter` in milliseconds, `rise`, `fall`.
    pub(crate) check: (u128, u32, u32),
}

/// The configuration text. Backends balance `roundrobin` (a dynamic algorithm, which `add
/// server` requires); `option redispatch` with `retries 3` moves a request whose connection
/// fails to another server; `http-reuse safe` never sends a first request over a reused
/// connection; client and server timeouts outlast any drain.
pub(crate) fn render(admin_socket: &Path, frontends: &[Frontend]) -> String {
    let mut c = String::new();
    let _ = write!(
        c,
        "global\n  stats socket {} mode 600 level admin\n  stats timeout 30s\n  \
         maxconn 4096\n\ndefaults\n  mode http\n  timeout connect 2s\n  \
         timeout client 60s\n  timeout server 60s\n  timeout http-keep-alive 30s\n  \
         timeout queue 10s\n  timeout check 2s\n  option redispatch\n  retries 3\n  \
         http-reuse safe\n\n",
        admin_socket.display()
    );
    for f in frontends {
        let _ = write!(
            c,
            "frontend fe-{name}\n  bind {addr}\n  default_backend {name}\n\n\
             backend {name}\n  balance roundrobin\n  option httpchk GET {path}\n  \
             http-check expect status 200\n\n",
            name = f.backend,
            addr = f.bind,
            path = f.health_path,
        );
        c.pop();
        for s in &f.servers {
            let (inter, rise, fall) = s.check;
            let _ = writeln!(
                c,
                "  server {} {}:{} weight {} check inter {inter} rise {rise} fall {fall}{}",
                s.name,
                s.addr,
                s.port,
                s.weight,
                if s.disabled { " disabled" } else { "" }
            );
        }
        c.push('\n');
    }
    c
}
