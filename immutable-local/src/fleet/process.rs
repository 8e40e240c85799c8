//! OS processes: identity from `/proc/<pid>/stat` (pid plus start time, so a reused pid is
//! never mistaken for an instance), signals that reach only the process meant, free loopback
//! ports, spawning in a new session.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::ops::RangeInclusive;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use immutable_core::{BoxError, Error, Result};
use procfs::process::{Process, Stat};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, Signal};
use serde::{Deserialize, Serialize};

use crate::fsutil::{create_file, create_private_dir_all};

/// A process as the kernel knows it: its pid and its start time in clock ticks since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct ProcessId {
    pub(crate) pid: u32,
    pub(crate) start_ticks: u64,
}

/// `/proc/<pid>/stat` of a process, through a handle on its `/proc` directory (so that further
/// reads through the handle, such as its fds, are of this very process); `None` once it is gone.
pub(crate) fn open_stat(pid: u32) -> Option<(Process, Stat)> {
    let process = Process::new(i32::try_from(pid).ok()?).ok()?;
    let stat = process.stat().ok()?;
    Some((process, stat))
}

/// Whether a process state is that of a dead process (a zombie waiting to be reaped).
pub(crate) fn is_dead(state: char) -> bool {
    matches!(state, 'Z' | 'X' | 'x')
}

impl ProcessId {
    /// The identity of a running process.
    pub(crate) fn of(pid: u32) -> Option<Self> {
        open_stat(pid).map(|(_, stat)| ProcessId {
            pid,
            start_ticks: stat.starttime,
        })
    }

    /// Whether this very process still runs: same pid, same start time, not a zombie. (The
    /// backend asks [`runs_as`](Self::runs_as), which also checks what it was started as.)
    #[cfg(test)]
    pub(crate) fn is_alive(&self) -> bool {
        self.open().is_some_and(|(_, stat)| !is_dead(stat.state))
    }

    /// Whether this very process runs and is `instance`'s: the `INSTANCE_ID` it was started
    /// with, or (for a program that rewrites that memory to set its process title, as nginx
    /// and Python's setproctitle do) its working directory inside the instance's directory
    /// `dir`, where it was started. So a fleet state file naming some other process (a
    /// tampered file, say) never makes the SDK take it for an instance, signal it or count
    /// its listener.
    pub(crate) fn runs_as(&self, instance: &immutable_core::InstanceId, dir: &Path) -> bool {
        self.open().is_some_and(|(process, stat)| {
            if is_dead(stat.state) {
                return false;
            }
            let started_as = process.environ().is_ok_and(|env| {
                env.get(std::ffi::OsStr::new("INSTANCE_ID"))
                    .map(|v| v.as_os_str())
                    == Some(std::ffi::OsStr::new(instance.as_str()))
            });
            started_as || process.cwd().is_ok_and(|cwd| cwd.starts_with(dir))
        })
    }

    /// A handle on this very process and its stat, dead or alive, if its pid is not reused.
    pub(crate) fn open(&self) -> Option<(Process, Stat)> {
        open_stat(self.pid).filter(|(_, stat)| stat.starttime == self.start_ticks)
    }

    /// Sends `signal` to this very process, never to another that took its pid: a pidfd pins
    /// the process before its identity is checked, so the signal reaches the process checked.
    pub(crate) fn signal(&self, signal: Signal) {
        let Some(pid) = i32::try_from(self.pid).ok().and_then(Pid::from_raw) else {
            return;
        };
        match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
            Ok(pidfd) => {
                if self.open().is_some() {
                    let _ = rustix::process::pidfd_send_signal(&pidfd, signal);
                }
            }
            Err(Errno::SRCH) => {}
            // A kernel without pidfds (before 5.3): check, then signal by pid.
            Err(_) => {
                if self.open().is_some() {
                    let _ = rustix::process::kill_process(pid, signal);
                }
            }
        }
    }
}

/// How long a port handed out stays reserved in this process: a port is found free by binding
/// and dropping it, and the instance binds it a little later; until then no other launch here
/// may be handed it.
const PORT_HOLD: Duration = Duration::from_secs(60);

/// Ports handed out within [`PORT_HOLD`], with when.
static HANDED_OUT: Mutex<Vec<(Instant, u16)>> = Mutex::new(Vec::new());

/// A free port on 127.0.0.1 within `range`, tried from a random start, that this process has
/// not handed out within the last minute.
pub(crate) fn free_port(range: &RangeInclusive<u16>) -> Result<u16> {
    let (lo, hi) = (*range.start(), *range.end());
    // `with_port_range` refuses an empty range; this only keeps the arithmetic honest.
    let Some(span) = hi.checked_sub(lo).map(|d| u32::from(d) + 1) else {
        return Err(Error::invalid("port_range", format!("{lo}-{hi} is empty")));
    };
    let start = fastrand::u32(0..span);
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    handed.retain(|(at, _)| now.duration_since(*at) < PORT_HOLD);
    for i in 0..span {
        let port = lo + ((start + i) % span) as u16;
        if handed.iter().any(|(_, p)| *p == port) {
            continue;
        }
        if TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).is_ok() {
            handed.push((now, port));
            return Ok(port);
        }
    }
    Err(Error::invalid(
        "port_range",
        format!(
            "no free port on 127.0.0.1 in {lo}-{hi}: all {span} are in use or were handed to \
             instances launched within the last minute; widen ProcessFleet::with_port_range or \
             free some"
        ),
    ))
}

/// What one instance is started with.
pub(crate) struct Spawn<'a> {
    pub(crate) program: &'a Path,
    pub(crate) args: &'a [String],
    pub(crate) dir: &'a Path,
    pub(crate) env: Vec<(String, String)>,
}

/// Starts the program in a new session (through `setsid`, which execs it in place, so the pid
/// is the program's), with its own working directory and log files.
pub(crate) fn spawn(s: Spawn<'_>) -> Result<Child> {
    let work = s.dir.join("work");
    create_private_dir_all(&work)?;
    let log = |name: &str| create_file(&s.dir.join(name));
    let mut cmd = Command::new("setsid");
    cmd.arg("--")
        .arg(s.program)
        .args(s.args)
        .current_dir(&work)
        .stdin(Stdio::null())
        .stdout(log("stdout.log")?)
        .stderr(log("stderr.log")?);
    for (k, v) in s.env {
        cmd.env(k, v);
    }
    cmd.spawn().map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            " (`setsid` from util-linux is needed to start instances in their own session)"
        } else {
            ""
        };
        Error::Provider {
            message: format!("cannot start {}{hint}: {e}", s.program.display()),
            source: Some(Box::new(e) as BoxError),
        }
    })
}

/// The last lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_known_by_pid_and_start_time() {
        let me = ProcessId::of(std::process::id()).expect("own stat");
        assert!(me.is_alive());
        let reused = ProcessId {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(
            !reused.is_alive(),
            "a different start time is another process"
        );
    }

    /// Two adjacent ports on loopback that are free now.
    fn two_free_ports() -> u16 {
        (40_000..50_000)
            .step_by(2)
            .find(|p| {
                TcpListener::bind(("127.0.0.1", *p)).is_ok()
                    && TcpListener::bind(("127.0.0.1", *p + 1)).is_ok()
            })
            .expect("two adjacent free ports")
    }

    /// A port found free is not handed out again before its instance had time to bind it:
    /// two launches at once get different ports, and a range whose ports were all just handed
    /// out has none to give.
    #[test]
    fn a_port_handed_out_is_not_handed_out_again() {
        let lo = two_free_ports();
        let range = lo..=lo + 1;
        let first = free_port(&range).unwrap();
        let second = free_port(&range).unwrap();
        assert_ne!(first, second);
        let err = free_port(&range).unwrap_err();
        assert!(err.to_string().contains("handed to instances"), "{err}");
    }

    #[test]
    fn no_free_port_is_a_clear_error() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let err = free_port(&(port..=port)).unwrap_err();
        assert!(err.to_string().contains("no free port"), "{err}");
    }
}
