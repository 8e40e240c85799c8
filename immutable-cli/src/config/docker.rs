//! The Docker backend's settings: the `[docker]` table of the service file, and the hosts,
//! network and limits the flags and the table give together, checked before anything is
//! read or made (a bad host, a duplicate name, a limit Docker refuses: exit 2).

use std::path::PathBuf;
use std::time::Duration;

use immutable_docker::{DockerHost, Limits, Network};
use serde::{Deserialize, Deserializer};

use crate::cli::{DockerFlags, DockerNetwork, LocalFlags};
use crate::exit::{Failure, reason};

/// The host a Docker backend uses when none is named and DOCKER_HOST is not set.
pub(crate) const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// The `[docker]` table: the Docker backend's flags, and the root and HAProxy options it
/// shares with the local backend, in snake case (`docker_host = ["a=tcp://10.0.0.5:2375"]`,
/// `memory = "512m"`, `cpus = 0.5`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct DockerTable {
    root: Option<PathBuf>,
    haproxy_socket: Option<PathBuf>,
    router_state: Option<PathBuf>,
    #[serde(deserialize_with = "crate::cli::opt_duration")]
    health_check_interval: Option<Duration>,
    docker_host: Vec<String>,
    docker_tls_dir: Option<PathBuf>,
    docker_network: Option<DockerNetwork>,
    #[serde(deserialize_with = "opt_memory")]
    memory: Option<u64>,
    #[serde(deserialize_with = "opt_cpus")]
    cpus: Option<f64>,
}

impl DockerTable {
    /// The root and HAProxy options, as the local backend takes them.
    pub(crate) fn local(&self) -> LocalFlags {
        LocalFlags {
            root: self.root.clone(),
            haproxy_socket: self.haproxy_socket.clone(),
            router_state: self.router_state.clone(),
            health_check_interval: self.health_check_interval,
        }
    }

    /// The Docker options.
    pub(crate) fn docker(&self) -> DockerFlags {
        DockerFlags {
            docker_host: self.docker_host.clone(),
            docker_tls_dir: self.docker_tls_dir.clone(),
            docker_network: self.docker_network,
            memory: self.memory,
            cpus: self.cpus,
        }
    }
}

fn opt_memory<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let s = String::deserialize(d)?;
    crate::cli::memory(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn opt_cpus<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let n = f64::deserialize(d)?;
    crate::cli::cpus(&n.to_string())
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// The Docker backend's settings, checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct DockerConfig {
    /// In placement order; empty unless the backend is Docker or hosts were named.
    pub(crate) hosts: Vec<HostSpec>,
    /// `--docker-tls-dir`: TLS files for the tcp:// hosts.
    pub(crate) tls_dir: Option<PathBuf>,
    pub(crate) network: Network,
    pub(crate) limits: Limits,
}

/// One Docker host, and how it was given (named in errors about it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostSpec {
    pub(crate) name: String,
    pub(crate) url: String,
    /// `--docker-host a=unix:///...`, `docker_host "a=..." in [docker]` or `DOCKER_HOST=...`.
    pub(crate) given: String,
}

impl DockerConfig {
    /// The Docker options (flags over the `[docker]` table), checked; `from_file` says the
    /// hosts came from the table. The default host (DOCKER_HOST, else [`DEFAULT_HOST`]) is
    /// taken only for the Docker backend (`docker`).
    ///
    /// Refused (exit 2): a host not written NAME=URL, a name outside Docker hosts' grammar, a
    /// URL of another scheme, two hosts of one name.
    pub(crate) fn new(flags: &DockerFlags, from_file: bool, docker: bool) -> Result<Self, Failure> {
        let mut hosts = Vec::new();
        for word in &flags.docker_host {
            let given = if from_file {
                format!("docker_host `{word}` in [docker]")
            } else {
                format!("--docker-host {word}")
            };
            let Some((name, url)) = word.split_once('=') else {
                return Err(Failure::refused(format!(
                    "{given}: expected NAME=URL, such as local={DEFAULT_HOST}"
                )));
            };
            hosts.push(HostSpec {
                name: name.to_owned(),
                url: url.to_owned(),
                given,
            });
        }
        if hosts.is_empty() && docker {
            let url = std::env::var("DOCKER_HOST").unwrap_or_default();
            let (url, given) = if url.is_empty() {
                let given = format!(
                    "the default Docker host {DEFAULT_HOST} (name one with --docker-host \
                     NAME=URL)"
                );
                (DEFAULT_HOST.to_owned(), given)
            } else {
                (
                    url.clone(),
                    format!("DOCKER_HOST={url} (pass --docker-host NAME=URL)"),
                )
            };
            hosts.push(HostSpec {
                name: "local".into(),
                url,
                given,
            });
        }
        for (i, host) in hosts.iter().enumerate() {
            DockerHost::check_name(&host.name)
                .and_then(|()| DockerHost::check_url(&host.url))
                .map_err(|e| Failure::refused(format!("{}: {}", host.given, reason(e))))?;
            if let Some(first) = hosts[..i].iter().find(|h| h.name == host.name) {
                return Err(Failure::refused(format!(
                    "{}: the name `{}` is taken by {}; each Docker host needs a name of its own",
                    host.given, host.name, first.given
                )));
            }
        }
        let mut limits = Limits::none();
        if let Some(bytes) = flags.memory {
            limits = limits
                .memory(bytes)
                .map_err(|e| Failure::refused(format!("--memory: {}", reason(e))))?;
        }
        if let Some(cpus) = flags.cpus {
            limits = limits
                .cpus(cpus)
                .map_err(|e| Failure::refused(format!("--cpus: {}", reason(e))))?;
        }
        Ok(DockerConfig {
            hosts,
            tls_dir: flags.docker_tls_dir.clone(),
            network: match flags.docker_network {
                Some(DockerNetwork::Published) => Network::Published,
                Some(DockerNetwork::Host) | None => Network::Host,
            },
            limits,
        })
    }
}

/// The flags over the `[docker]` table.
pub(crate) fn merge(f: DockerFlags, file: DockerFlags) -> (DockerFlags, bool) {
    let from_file = f.docker_host.is_empty() && !file.docker_host.is_empty();
    let merged = DockerFlags {
        docker_host: if f.docker_host.is_empty() {
            file.docker_host
        } else {
            f.docker_host
        },
        docker_tls_dir: f.docker_tls_dir.or(file.docker_tls_dir),
        docker_network: f.docker_network.or(file.docker_network),
        memory: f.memory.or(file.memory),
        cpus: f.cpus.or(file.cpus),
    };
    (merged, from_file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(hosts: &[&str]) -> DockerFlags {
        DockerFlags {
            docker_host: hosts.iter().map(|h| h.to_string()).collect(),
            ..DockerFlags::default()
        }
    }

    #[test]
    fn hosts_are_checked_and_named_as_given() {
        let ok = DockerConfig::new(
            &flags(&["a=unix:///var/run/docker.sock", "b=tcp://10.0.0.5:2375"]),
            false,
            true,
        )
        .unwrap();
        assert_eq!(ok.hosts.len(), 2);
        assert_eq!(ok.hosts[1].url, "tcp://10.0.0.5:2375");
        for (hosts, says) in [
            (
                vec!["a=ssh://me@h"],
                "--docker-host a=ssh://me@h: `ssh://me@h` is not",
            ),
            (
                vec!["unix:///x"],
                "--docker-host unix:///x: expected NAME=URL",
            ),
            (
                vec!["a.b=unix:///x"],
                "--docker-host a.b=unix:///x: Docker host name",
            ),
            (
                vec!["a=unix:///x", "a=tcp://h:1"],
                "--docker-host a=tcp://h:1: the name `a` is taken by --docker-host a=unix:///x",
            ),
        ] {
            let e = DockerConfig::new(&flags(&hosts), false, true).unwrap_err();
            assert_eq!(e.code, crate::exit::Code::Refused, "{hosts:?}");
            assert!(e.message.starts_with(says), "{hosts:?}: {}", e.message);
        }
        let e = DockerConfig::new(&flags(&["a=ftp://h"]), true, true).unwrap_err();
        assert!(
            e.message.starts_with("docker_host `a=ftp://h` in [docker]"),
            "{}",
            e.message
        );
    }

    #[test]
    fn no_default_host_but_for_the_docker_backend() {
        assert!(
            DockerConfig::new(&DockerFlags::default(), false, false)
                .unwrap()
                .hosts
                .is_empty()
        );
    }

    #[test]
    fn the_table_takes_the_flags_names_and_checks_the_limits() {
        let table: DockerTable = toml::from_str(
            r#"
            root = "/srv/immutable"
            docker_host = ["a=unix:///var/run/docker.sock"]
            docker_network = "published"
            memory = "512m"
            cpus = 0.5
            health_check_interval = "100ms"
            "#,
        )
        .unwrap();
        assert_eq!(table.docker().memory, Some(512 << 20));
        assert_eq!(table.docker().cpus, Some(0.5));
        assert_eq!(table.local().root, Some("/srv/immutable".into()));
        for bad in [
            "memory = \"5m\"",
            "memory = \"lots\"",
            "cpus = 0",
            "cpus = -1",
            "port = 1",
        ] {
            assert!(toml::from_str::<DockerTable>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_and_cpus_read_as_docker_reads_them() {
        use crate::cli::{cpus, memory};
        assert_eq!(memory("6m"), Ok(6 << 20));
        assert_eq!(memory("1G"), Ok(1 << 30));
        assert_eq!(memory("7000000"), Ok(7_000_000));
        for bad in ["5m", "6291455", "1.5g", "", "m", "12x"] {
            assert!(memory(bad).is_err(), "{bad}");
        }
        assert_eq!(cpus("0.5"), Ok(0.5));
        for bad in ["0", "-1", "nan", "inf", "two"] {
            assert!(cpus(bad).is_err(), "{bad}");
        }
    }
}
