//! Adding routes to a running managed proxy without refusing a request: a new HAProxy starts
//! with the running one's servers written into its configuration, takes over the listeners
//! (`-sf <pid>`: the old one stops accepting and finishes what it serves), and answers on the
//! admin socket in its place.

use std::collections::BTreeMap;
use std::path::Path;

use immutable_core::{Error, Result};

use super::super::config::StaticServer;
use super::ProxyRoute;
use crate::router::RuntimeApi;

/// Whether `new` keeps every route of `old` as it is (and adds some).
pub(super) fn only_adds(old: &[ProxyRoute], new: &[ProxyRoute]) -> bool {
    old.iter().all(|o| new.contains(o))
}

/// The servers of each backend, as the running HAProxy has them (`show servers state`).
pub(super) async fn servers_of(
    socket: &Path,
    backends: &[String],
    check: (u128, u32, u32),
) -> Result<BTreeMap<String, Vec<StaticServer>>> {
    let api = RuntimeApi::new(socket);
    let mut out = BTreeMap::new();
    for backend in backends {
        let answer = api
            .request(&[format!("show servers state {backend}")])
            .await?;
        out.insert(backend.clone(), parse_state(&answer, check)?);
    }
    Ok(out)
}

/// The answer of `show servers state <backend>`: a version line, a `# ` header naming the
/// columns, then a line per server.
fn parse_state(answer: &str, check: (u128, u32, u32)) -> Result<Vec<StaticServer>> {
    let bad = |why: &str| {
        Error::provider(format!(
            "HAProxy answered `show servers state` with what cannot be read ({why}): {}",
            answer.lines().take(3).collect::<Vec<_>>().join(" | ")
        ))
    };
    let mut lines = answer.lines().map(str::trim).filter(|l| !l.is_empty());
    let header = lines
        .find_map(|l| l.strip_prefix("# "))
        .ok_or_else(|| bad("no header"))?;
    let columns: Vec<&str> = header.split_whitespace().collect();
    let at = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| bad(name))
    };
    let (name, addr, admin, weight, port) = (
        at("srv_name")?,
        at("srv_addr")?,
        at("srv_admin_state")?,
        at("srv_uweight")?,
        at("srv_port")?,
    );
    let mut servers = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        let field = |i: usize| f.get(i).copied().ok_or_else(|| bad("a short line"));
        let admin: u32 = field(admin)?.parse().map_err(|_| bad("srv_admin_state"))?;
        // Forced maintenance (0x01); a forced drain (0x08) takes no new requests: weight 0.
        let drained = admin & 0x08 != 0;
        servers.push(StaticServer {
            name: field(name)?.to_owned(),
            addr: field(addr)?.to_owned(),
            port: field(port)?.parse().map_err(|_| bad("srv_port"))?,
            weight: if drained {
                0
            } else {
                field(weight)?.parse().map_err(|_| bad("srv_uweight"))?
            },
            disabled: admin & 0x01 != 0,
            check,
        });
    }
    Ok(servers)
}

/// The pid HAProxy's `show info` gives, if the socket answers.
pub(super) async fn pid_on(socket: &Path) -> Option<u32> {
    let answer = RuntimeApi::new(socket)
        .request(&["show info".to_owned()])
        .await
        .ok()?;
    answer
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|p| p.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_state_is_read_by_its_header() {
        let answer = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state \
                      srv_admin_state srv_uweight srv_iweight srv_time_since_last_change \
                      srv_check_status srv_check_result srv_check_health srv_check_state \
                      srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port\n\
                      3 web 1 fl-1-0 127.0.0.1 2 0 7 7 4 6 3 4 6 0 0 0 - 20001\n\
                      3 web 2 fl-1-1 127.0.0.1 0 1 1 1 4 6 3 4 6 0 0 0 - 20002\n\
                      3 web 3 fl-0-0 127.0.0.1 2 8 5 5 4 6 3 4 6 0 0 0 - 20003\n";
        let servers = parse_state(answer, (500, 2, 2)).unwrap();
        assert_eq!(servers.len(), 3);
        assert_eq!(servers[0].name, "fl-1-0");
        assert_eq!((servers[0].port, servers[0].weight), (20001, 7));
        assert!(!servers[0].disabled);
        assert!(servers[1].disabled, "forced maintenance");
        assert_eq!(
            servers[2].weight, 0,
            "a drained server takes no new request"
        );
        assert!(parse_state("1\n", (500, 2, 2)).is_err());
    }
}
