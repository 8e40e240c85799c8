//! Readiness: an instance is ready once a socket listening on its port, for connections to
//! 127.0.0.1, is held by a process of the instance's session. A process squatting on the
//! port never passes for the instance.
//!
//! Listening sockets come from the kernel's sock_diag interface (`sockdiag.rs`), or from
//! `/proc/net/tcp` and `/proc/net/tcp6` where it cannot be asked (their inodes), and are
//! matched against the socket links in `/proc/<pid>/fd` of the leader first, then, only when
//! the leader does not hold it, of the rest of the session (a listener opened by a child).

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use procfs::net::TcpState;
use procfs::process::FDTarget;
use rustix::net::AddressFamily;

use super::process::ProcessId;
use super::session::{ProcessTable, Session};
use super::sockdiag;
use super::state::InstanceRecord;

/// The inodes of the sockets that accept connections to 127.0.0.1, by port.
#[derive(Debug, Default)]
struct Listeners(HashMap<u16, HashSet<u64>>);

impl Listeners {
    /// Asks the kernel for the listening sockets (see `sockdiag.rs`), IPv4 and IPv6 (which
    /// may be off: then none); reads `/proc/net/tcp` and `/proc/net/tcp6` instead when it
    /// cannot be asked.
    fn read() -> Listeners {
        let Some(v4) = sockdiag::listening(AddressFamily::INET) else {
            return Self::read_proc();
        };
        let v6 = sockdiag::listening(AddressFamily::INET6).unwrap_or_default();
        let listening = v4.into_iter().chain(v6).map(|l| (l.ip, l.port, l.inode));
        Self::of(listening)
    }

    /// Reads both tables once; a table that cannot be read lists nothing (IPv6 may be off).
    fn read_proc() -> Listeners {
        let listening = [procfs::net::tcp(), procfs::net::tcp6()]
            .into_iter()
            .flat_map(|table| table.unwrap_or_default())
            .filter(|e| e.state == TcpState::Listen)
            .map(|e| (e.local_address.ip(), e.local_address.port(), e.inode));
        Self::of(listening)
    }

    /// The listening sockets `(address, port, inode)` that take connections to 127.0.0.1.
    fn of(listening: impl Iterator<Item = (IpAddr, u16, u64)>) -> Listeners {
        let mut by_port: HashMap<u16, HashSet<u64>> = HashMap::new();
        for (_, port, inode) in listening.filter(|(ip, _, _)| takes_loopback(*ip)) {
            by_port.entry(port).or_default().insert(inode);
        }
        Listeners(by_port)
    }
}

/// Whether a socket bound to `ip` receives connections made to 127.0.0.1.
fn takes_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4 == Ipv4Addr::LOCALHOST || v4.is_unspecified(),
        IpAddr::V6(v6) => v6 == Ipv6Addr::UNSPECIFIED || v6 == Ipv4Addr::LOCALHOST.to_ipv6_mapped(),
    }
}

/// Whether the process holds one of `sockets` open. Its fds are read through the handle its
/// identity was checked on, so a reused pid is never read instead.
fn holds(process: ProcessId, sockets: &HashSet<u64>) -> bool {
    let Some((handle, _)) = process.open() else {
        return false;
    };
    let Ok(fds) = handle.fd() else {
        return false;
    };
    fds.filter_map(|fd| fd.ok())
        .any(|fd| matches!(fd.target, FDTarget::Socket(inode) if sockets.contains(&inode)))
}

/// For each instance, whether it is alive and a process of its session listens on its port.
/// Blocking: reads `/proc`.
pub(crate) fn ready(instances: &[InstanceRecord]) -> Vec<bool> {
    let listeners = Listeners::read();
    // Listed only when some leader does not hold its listener itself.
    let table = OnceCell::new();
    instances
        .iter()
        .map(|i| {
            let Some(sockets) = listeners.0.get(&i.port) else {
                return false;
            };
            if !i.is_alive() {
                return false;
            }
            if holds(i.process, sockets) {
                return true;
            }
            let Some(table) = table.get_or_init(|| ProcessTable::scan().ok()) else {
                return false;
            };
            Session::of(i)
                .members(table)
                .into_iter()
                .any(|p| p != i.process && holds(p, sockets))
        })
        .collect()
}
