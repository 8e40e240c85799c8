//! The listening TCP sockets, from the kernel's sock_diag netlink interface (`NETLINK_SOCK_DIAG`,
//! `SOCK_DIAG_BY_FAMILY`), asked for the listening state only. `/proc/net/tcp` lists every
//! socket of the network namespace on each read, thousands of them in `TIME_WAIT` on a machine
//! that serves (and health-checks) hundreds of instances, which made each readiness check cost
//! tens of milliseconds; this costs what the listeners cost.
//!
//! The messages are `struct nlmsghdr`, `struct inet_diag_req_v2` and `struct inet_diag_msg`
//! of `<linux/netlink.h>` and `<linux/inet_diag.h>`, in native byte order but for ports and
//! addresses (network order).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const TCP_LISTEN: u32 = 10;
const IPPROTO_TCP: u8 = 6;
const HEADER: usize = 16;
/// `struct inet_diag_msg`: up to and with `idiag_inode`.
const MESSAGE: usize = 72;

/// One listening socket: its address, port and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Listening {
    pub(super) ip: IpAddr,
    pub(super) port: u16,
    pub(super) inode: u64,
}

/// The listening TCP sockets of `family` (IPv4 or IPv6); `None` when the kernel cannot be
/// asked (no netlink, a family it lacks) or answers something unexpected.
pub(super) fn listening(family: AddressFamily) -> Option<Vec<Listening>> {
    let fd = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(netlink::SOCK_DIAG),
    )
    .ok()?;
    let request = request(u8::try_from(family.as_raw()).ok()?);
    let kernel = SocketAddrNetlink::new(0, 0);
    rustix::net::sendto(&fd, &request, SendFlags::empty(), &kernel).ok()?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (_, n) = rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty()).ok()?;
        if n == 0 || n > buf.len() {
            return None;
        }
        let mut at = 0;
        while at + HEADER <= n {
            let len = u32_at(&buf, at)? as usize;
            let kind = u16::from_ne_bytes(buf.get(at + 4..at + 6)?.try_into().ok()?);
            if len < HEADER || at + len > n {
                return None;
            }
            match kind {
                NLMSG_DONE => return Some(out),
                NLMSG_ERROR => return None,
                SOCK_DIAG_BY_FAMILY => out.push(parse(&buf[at + HEADER..at + len])?),
                _ => {}
            }
            at += len.next_multiple_of(4);
        }
    }
}

/// A dump request for the listening TCP sockets of `family`.
fn request(family: u8) -> Vec<u8> {
    let mut r = Vec::with_capacity(HEADER + 56);
    r.extend(((HEADER + 56) as u32).to_ne_bytes());
    r.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    r.extend((NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    r.extend(1u32.to_ne_bytes()); // sequence number
    r.extend(0u32.to_ne_bytes()); // port id: the kernel fills it in
    r.extend([family, IPPROTO_TCP, 0, 0]); // family, protocol, extensions, padding
    r.extend((1u32 << TCP_LISTEN).to_ne_bytes()); // states
    r.extend([0u8; 48]); // socket id: any
    r
}

/// One `struct inet_diag_msg`.
fn parse(m: &[u8]) -> Option<Listening> {
    if m.len() < MESSAGE {
        return None;
    }
    let port = u16::from_be_bytes(m[4..6].try_into().ok()?);
    let src: [u8; 16] = m[8..24].try_into().ok()?;
    let family = u16::from(m[0]);
    let ip = if family == AddressFamily::INET.as_raw() {
        IpAddr::V4(Ipv4Addr::new(src[0], src[1], src[2], src[3]))
    } else if family == AddressFamily::INET6.as_raw() {
        IpAddr::V6(Ipv6Addr::from(src))
    } else {
        return None;
    };
    Some(Listening {
        ip,
        port,
        inode: u64::from(u32_at(m, 68)?),
    })
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    /// A listener this test opens is in the dump, with the inode `/proc/net/tcp` gives it.
    #[test]
    fn a_listener_is_found_with_its_inode() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let Some(found) = listening(AddressFamily::INET) else {
            // No sock_diag here (a sandbox without netlink): the backend reads /proc instead.
            return;
        };
        let mine = found.iter().find(|l| l.port == port).expect("the listener");
        assert_eq!(mine.ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let proc_inode = procfs::net::tcp()
            .unwrap()
            .into_iter()
            .find(|e| e.local_address.port() == port)
            .map(|e| e.inode);
        assert_eq!(Some(mine.inode), proc_inode);
    }
}
