//! An instance's session: the process started with `setsid` (its pid is the session id) and
//! every process it started that stayed in its session, found through `/proc`, stopped and
//! waited for together.
//!
//! # Which processes are the instance's
//! Linux never hands out a pid that is still some process's session or group id. So while the
//! leader (recorded pid, same start time) is alive or a zombie, every process whose session id
//! is its pid belongs to the instance. Once the pid is held by another process (another start
//! time), the instance's session had no process left when it was reused: nothing is the
//! instance's. Once the leader is gone and its pid free, the processes of that session are the
//! instance's leftovers, unless the number was reused in between by a process that opened a
//! session and died too (a daemon's double fork leaves such a session behind): so a process is
//! taken for the instance's only if it also carries the instance's `INSTANCE_ID` in the
//! environment it was started with, and started no earlier than the leader.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::time::{Duration, Instant};

use immutable_core::{BoxError, Error, InstanceId, Result};
use rustix::process::Signal;

use super::process::{ProcessId, is_dead, open_stat};
use super::state::InstanceRecord;

/// How long terminate waits for processes to die after SIGKILL.
pub(crate) const KILL_WAIT: Duration = Duration::from_secs(5);

/// How often terminate checks whether the processes it signalled have exited.
const POLL: Duration = Duration::from_millis(10);

/// How often, at most, terminate lists every process again (one pass over `/proc`), to find
/// processes forked meanwhile; sooner once all it signalled have exited.
const RESCAN: Duration = Duration::from_millis(100);

/// One pass over `/proc`: each live process's identity and session.
pub(crate) struct ProcessTable(Vec<(ProcessId, u32)>);

impl ProcessTable {
    /// Reads every process's stat; processes that exit meanwhile are left out.
    ///
    /// # Errors
    /// [`Error::Provider`] when `/proc` cannot be listed.
    pub(crate) fn scan() -> Result<ProcessTable> {
        let all = procfs::process::all_processes().map_err(|e| Error::Provider {
            message: format!("cannot list processes in /proc: {e}"),
            source: Some(Box::new(e) as BoxError),
        })?;
        let entries = all
            .filter_map(|p| p.ok()?.stat().ok())
            .filter(|stat| !is_dead(stat.state))
            .filter_map(|stat| {
                let id = ProcessId {
                    pid: u32::try_from(stat.pid).ok()?,
                    start_ticks: stat.starttime,
                };
                Some((id, u32::try_from(stat.session).ok()?))
            })
            .collect();
        Ok(ProcessTable(entries))
    }

    /// Each live process and its session id.
    pub(crate) fn entries(&self) -> &[(ProcessId, u32)] {
        &self.0
    }
}

/// The session an instance's leader opened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Session<'a> {
    leader: ProcessId,
    instance: &'a InstanceId,
    dir: &'a std::path::Path,
}

impl<'a> Session<'a> {
    pub(crate) fn of(record: &'a InstanceRecord) -> Self {
        Session {
            leader: record.process,
            instance: &record.id,
            dir: &record.dir,
        }
    }

    /// The live processes of the session, as the module's header decides.
    pub(crate) fn members(&self, table: &ProcessTable) -> Vec<ProcessId> {
        let sid = self.leader.pid;
        let leader_held = match open_stat(sid) {
            Some((_, stat)) if stat.starttime != self.leader.start_ticks => return Vec::new(),
            // A live leader that was not started as this instance is not the instance's (a
            // state file naming another process): nothing of its session is touched.
            Some((_, stat))
                if !is_dead(stat.state) && !self.leader.runs_as(self.instance, self.dir) =>
            {
                return Vec::new();
            }
            Some(_) => true,
            None => false,
        };
        table
            .0
            .iter()
            .filter(|(_, session)| *session == sid)
            .map(|(id, _)| *id)
            .filter(|id| leader_held || self.is_leftover(id))
            .collect()
    }

    /// Whether a process of a leaderless session is one the instance started.
    fn is_leftover(&self, id: &ProcessId) -> bool {
        if id.start_ticks < self.leader.start_ticks {
            return false;
        }
        let Some((process, _)) = id.open() else {
            return false;
        };
        process.environ().is_ok_and(|env| {
            env.get(OsStr::new("INSTANCE_ID")).map(|v| v.as_os_str())
                == Some(OsStr::new(self.instance.as_str()))
        })
    }
}

/// The live processes of all `sessions`, from one pass over `/proc`.
pub(crate) fn members_of(sessions: &[Session<'_>]) -> Result<Vec<ProcessId>> {
    let table = ProcessTable::scan()?;
    Ok(sessions.iter().flat_map(|s| s.members(&table)).collect())
}

/// Whether this very process still runs (not a zombie).
pub(crate) fn is_running(p: &ProcessId) -> bool {
    p.open().is_some_and(|(_, stat)| !is_dead(stat.state))
}

/// Stops every process of `sessions`: SIGTERM, up to `grace` for them to exit, then SIGKILL
/// and up to [`KILL_WAIT`] more; a zero grace sends SIGKILL at once. A process forked in the
/// meantime gets the signal of the phase it is found in. Returns whether none is left.
pub(crate) fn stop(sessions: &[Session<'_>], grace: Duration) -> Result<bool> {
    let mut phases = Vec::with_capacity(2);
    if !grace.is_zero() {
        phases.push((Signal::TERM, grace));
    }
    phases.push((Signal::KILL, KILL_WAIT));
    for (signal, wait) in phases {
        let until = Instant::now() + wait;
        let mut signalled = HashSet::new();
        loop {
            let left = members_of(sessions)?;
            if left.is_empty() {
                return Ok(true);
            }
            if Instant::now() >= until {
                break;
            }
            // Each process once per phase: a second SIGTERM means "hurry" to some programs.
            for p in left.iter().filter(|p| signalled.insert(**p)) {
                p.signal(signal);
            }
            // Looking at the processes known is one read each; listing them all, a pass over
            // every process of the machine.
            let rescan = (Instant::now() + RESCAN).min(until);
            while Instant::now() < rescan && left.iter().any(is_running) {
                std::thread::sleep(POLL);
            }
        }
    }
    Ok(false)
}
