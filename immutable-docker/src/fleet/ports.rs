//! Ports for new instances: within the fleet's range, not recorded for another instance on
//! the same host (state files, and the `immutable:port` label of the SDK's containers there,
//! which covers containers launched from another store root), and, on a host reached on
//! this machine's loopback, free to bind now.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::ops::RangeInclusive;

use immutable_core::{Error, Result};

/// Picks a port of `range` on a host at `address` that is in none of `taken`, and adds it
/// there. A random start spreads fleets over the range.
pub(crate) fn pick(
    range: &RangeInclusive<u16>,
    address: IpAddr,
    taken: &mut BTreeSet<u16>,
) -> Result<u16> {
    let (start, end) = (*range.start(), *range.end());
    let span = u32::from(end - start) + 1;
    let first = fastrand::u32(0..span);
    for step in 0..span {
        let port = start + ((first + step) % span) as u16;
        if taken.contains(&port) || (address.is_loopback() && !bindable(port)) {
            continue;
        }
        taken.insert(port);
        return Ok(port);
    }
    Err(Error::invalid(
        "port_range",
        format!("no free port in {start}-{end} on {address}: widen the range"),
    ))
}

fn bindable(port: u16) -> bool {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_ports_are_skipped_and_a_full_range_says_which_field() {
        let range = 40100..=40102;
        let remote = IpAddr::from([10, 0, 0, 5]);
        let mut taken = BTreeSet::from([40100, 40102]);
        assert_eq!(pick(&range, remote, &mut taken).unwrap(), 40101);
        match pick(&range, remote, &mut taken) {
            Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "port_range"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_port_in_use_on_loopback_is_skipped() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let mut taken = BTreeSet::new();
        match pick(
            &(port..=port),
            IpAddr::from(Ipv4Addr::LOCALHOST),
            &mut taken,
        ) {
            Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "port_range"),
            other => panic!("a bound port was picked: {other:?}"),
        }
    }
}
