//! HAProxy's runtime API over its admin unix socket: one request is one connection carrying
//! one or more commands separated by `;`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use immutable_core::{BoxError, Error, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Answers of write commands that mean success.
const SUCCESS: &[&str] = &["New server registered.", "Server deleted."];

/// A client of one admin socket, counting its requests.
#[derive(Debug)]
pub(crate) struct RuntimeApi {
    socket: PathBuf,
    requests: AtomicU64,
    writes: AtomicU64,
}

/// One server's row of `show stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerStat {
    /// The backend it belongs to.
    pub(crate) proxy: String,
    pub(crate) name: String,
    pub(crate) status: String,
    pub(crate) check_status: String,
    pub(crate) check_desc: String,
    pub(crate) sessions: u64,
}

impl RuntimeApi {
    pub(crate) fn new(socket: &Path) -> Self {
        RuntimeApi {
            socket: socket.to_path_buf(),
            requests: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    /// Requests sent so far.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests that changed something, so far.
    pub(crate) fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Sends `commands` in one request and returns the raw answer.
    pub(crate) async fn request(&self, commands: &[String]) -> Result<String> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let line = format!("{}\n", commands.join("; "));
        let exchange = async {
            let mut stream = UnixStream::connect(&self.socket).await?;
            stream.write_all(line.as_bytes()).await?;
            let mut out = String::new();
            stream.read_to_string(&mut out).await?;
            Ok::<_, std::io::Error>(out)
        };
        match tokio::time::timeout(Duration::from_secs(10), exchange).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(self.io_error(e)),
            Err(_) => Err(Error::Timeout {
                what: format!("HAProxy's admin socket {}", self.socket.display()),
                after: Duration::from_secs(10),
            }),
        }
    }

    /// A socket that is gone or refuses connections is HAProxy restarting, or stopped:
    /// transient, so that callers retry (bounded) through a restart. Whether a socket is
    /// HAProxy's at all is checked once, by [`verify`](Self::verify).
    fn io_error(&self, e: std::io::Error) -> Error {
        let gone = if self.socket.exists() {
            ""
        } else {
            " (the socket is gone: is HAProxy running, or restarting?)"
        };
        Error::Transient {
            message: format!(
                "HAProxy admin socket {} cannot be reached: {e}{gone}",
                self.socket.display()
            ),
            source: Some(Box::new(e) as BoxError),
        }
    }

    /// Sends write commands in one request; fails on any answer but success or one of the
    /// `tolerated` messages, naming it.
    pub(crate) async fn write(&self, commands: &[String], tolerated: &[&str]) -> Result<()> {
        if commands.is_empty() {
            return Ok(());
        }
        self.writes.fetch_add(1, Ordering::Relaxed);
        let out = self.request(commands).await?;
        let refused: Vec<&str> = out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !SUCCESS.contains(l))
            .filter(|l| !tolerated.iter().any(|t| l.starts_with(t)))
            .collect();
        if refused.is_empty() {
            return Ok(());
        }
        Err(Error::provider(format!(
            "HAProxy refused `{}`: {}",
            commands.join("; "),
            refused.join(" ")
        )))
    }

    /// Checks that the socket is HAProxy's admin socket, with admin level.
    pub(crate) async fn verify(&self) -> Result<()> {
        let invalid = |reason: String| Error::invalid("admin_socket", reason);
        if !self.socket.exists() {
            return Err(invalid(format!(
                "{} does not exist: start HAProxy with `stats socket {} level admin`",
                self.socket.display(),
                self.socket.display()
            )));
        }
        let info = self.request(&["show info".into()]).await.map_err(|e| {
            invalid(format!(
                "{} is not an HAProxy admin socket: `show info` failed: {e}",
                self.socket.display()
            ))
        })?;
        if !info.lines().any(|l| l.trim() == "Name: HAProxy") {
            let head: String = info.chars().take(80).collect();
            return Err(invalid(format!(
                "{} is not an HAProxy admin socket: `show info` answered {head:?}",
                self.socket.display()
            )));
        }
        Ok(())
    }

    /// How long this HAProxy process has run (`Uptime_sec` of `show info`, whole seconds).
    pub(crate) async fn uptime(&self) -> Result<Duration> {
        let out = self.request(&["show info".into()]).await?;
        if out.trim().is_empty() {
            return Err(self.closed("show info"));
        }
        parse_uptime(&out)
    }

    /// HAProxy closed the connection before a word: it went away mid-request (a restart or a
    /// crash), which a retry rides out.
    fn closed(&self, command: &str) -> Error {
        Error::Transient {
            message: format!(
                "HAProxy closed its admin socket {} without answering `{command}` (is it \
                 restarting?)",
                self.socket.display()
            ),
            source: None,
        }
    }

    /// The names of the proxies HAProxy knows.
    pub(crate) async fn backends(&self) -> Result<Vec<String>> {
        let out = self.request(&["show backend".into()]).await?;
        Ok(out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect())
    }

    /// The servers of one backend, from `show stat`.
    pub(crate) async fn stats(&self, backend: &str) -> Result<Vec<ServerStat>> {
        Ok(self
            .all_stats()
            .await?
            .into_iter()
            .filter(|r| r.proxy == backend)
            .collect())
    }

    /// The servers of every backend, from one `show stat` (servers only: a frontend may
    /// share a backend's name).
    pub(crate) async fn all_stats(&self) -> Result<Vec<ServerStat>> {
        let out = self.request(&["show stat -1 4 -1".into()]).await?;
        if out.trim().is_empty() {
            return Err(self.closed("show stat"));
        }
        parse_stats(&out)
    }
}

/// `Uptime_sec` of a `show info` answer.
pub(crate) fn parse_uptime(info: &str) -> Result<Duration> {
    info.lines()
        .find_map(|l| l.trim().strip_prefix("Uptime_sec:"))
        .and_then(|v| v.trim().parse().ok())
        .map(Duration::from_secs)
        .ok_or_else(|| {
            Error::provider(format!(
                "HAProxy's `show info` has no Uptime_sec: {:?}",
                info.chars().take(80).collect::<String>()
            ))
        })
}

/// Parses `show stat` CSV by column name; rows too short for the columns are skipped.
pub(crate) fn parse_stats(out: &str) -> Result<Vec<ServerStat>> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
        return Err(Error::provider(format!(
            "HAProxy answered `show stat` with {:?}",
            out.chars().take(80).collect::<String>()
        )));
    };
    let cols: Vec<&str> = header.split(',').collect();
    let col = |name: &str| cols.iter().position(|c| *c == name);
    let (Some(px), Some(sv), Some(st), Some(cs), Some(cd), Some(sc)) = (
        col("pxname"),
        col("svname"),
        col("status"),
        col("check_status"),
        col("check_desc"),
        col("scur"),
    ) else {
        return Err(Error::provider(
            "HAProxy's `show stat` lacks expected columns",
        ));
    };
    Ok(lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > px.max(sv).max(st).max(cs).max(cd).max(sc))
        .map(|f| ServerStat {
            proxy: f[px].to_owned(),
            name: f[sv].to_owned(),
            status: f[st].to_owned(),
            check_status: f[cs].to_owned(),
            check_desc: f[cd].to_owned(),
            sessions: f[sc].parse().unwrap_or(0),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An HAProxy that dies mid-request closes the connection without a word: a retry rides
    /// that out, so it is transient, not a provider error that rolls a deployment back.
    #[tokio::test]
    async fn a_connection_closed_without_an_answer_is_transient() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let closer = tokio::spawn(async move {
            for _ in 0..2 {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut line = Vec::new();
                let mut byte = [0u8; 1];
                while stream.read(&mut byte).await.unwrap() == 1 && byte[0] != b'\n' {
                    line.push(byte[0]);
                }
                drop(stream);
            }
        });
        let api = RuntimeApi::new(&path);
        for e in [
            api.all_stats().await.unwrap_err(),
            api.uptime().await.unwrap_err(),
        ] {
            assert!(e.is_retryable(), "{e}");
            assert!(e.to_string().contains("without answering"), "{e}");
        }
        closer.await.unwrap();
    }

    #[test]
    fn show_stat_is_parsed_by_column_name() {
        let out = "# pxname,svname,scur,status,check_status,check_desc\n\
                   web,a-0,2,UP,L7OK,Layer7 check passed\n\
                   web,a-1,0,DOWN,L7STS,Layer7 wrong status\n\
                   web-preview,a-1,0,UP,L7OK,Layer7 check passed\n\n";
        let rows: Vec<_> = parse_stats(out)
            .unwrap()
            .into_iter()
            .filter(|r| r.proxy == "web")
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "a-0");
        assert_eq!(rows[0].sessions, 2);
        assert_eq!(rows[1].check_status, "L7STS");
        assert!(parse_stats("Unknown command\n").is_err());
    }
}

/// Property: whatever HAProxy (or whatever listens on the admin socket) answers, parsing it
/// never panics: a `show stat` answer is rows or an error, a `show info` answer an uptime or
/// an error, and every row's health maps to a state.
#[cfg(test)]
mod hostile {
    use immutable_core::conformance::hostile::{Tally, hostile_string, runner};
    use proptest::prelude::*;

    use super::*;

    const HEADER: &str = "# pxname,svname,qcur,qmax,scur,smax,status,check_status,check_desc";

    /// Answers: any text, or a `show stat` header over rows of hostile fields.
    fn answers() -> impl Strategy<Value = String> {
        let field = prop_oneof![hostile_string(), "[A-Z0-9 */]{0,8}"];
        let row = proptest::collection::vec(field, 0..12).prop_map(|f| f.join(","));
        prop_oneof![
            any::<String>(),
            proptest::collection::vec(row, 0..6)
                .prop_map(|rows| format!("{HEADER}\n{}\n", rows.join("\n"))),
            hostile_string().prop_map(|s| format!("Name: HAProxy\nUptime_sec: {s}\n")),
        ]
    }

    #[test]
    #[allow(clippy::print_stdout)] // the tally, for the test's output
    fn hostile_runtime_api_answers_never_panic() {
        let tally = Tally::default();
        runner()
            .run(&answers(), |answer| {
                let stats = parse_stats(&answer);
                if let Ok(rows) = &stats {
                    for row in rows {
                        let _ = super::super::health::health_of(Some(row));
                    }
                }
                let uptime = parse_uptime(&answer);
                tally.record(stats.is_ok() || uptime.is_ok());
                Ok(())
            })
            .unwrap();
        println!("{}", tally.summary("HAProxy runtime-API answers"));
    }
}
