//! Instances whose start was not recorded. A launch writes the slots of all its new instances
//! (id, port, directory) in one write before it starts any process, starts them all, and
//! records their pids in one more write. A crash in between leaves slots whose processes may
//! run; [`take_over`] finds them by the `INSTANCE_ID` they were started with, so that the
//! next launch, terminate or [`kill_all`](super::ProcessFleet::kill_all) reaches them.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use immutable_core::{Error, Result};
use rustix::process::Signal;

use super::process::ProcessId;
use super::session::{KILL_WAIT, ProcessTable, is_running};
use super::state::{FleetState, InstanceSlot};

/// Settles the fleet's `starting` slots: a slot whose process runs (the session leader that
/// was started as the slot's instance) becomes an instance with that process, as if
/// its launch had finished; any other process started as a slot's instance (a child whose
/// leader is gone) is killed; slots with no process are dropped, to be started anew by a
/// launch. Returns whether the state changed (the caller writes it).
///
/// # Errors
/// [`Error::Provider`] when `/proc` cannot be listed; [`Error::Timeout`] when a stray process
/// outlives SIGKILL.
pub(super) fn take_over(state: &mut FleetState) -> Result<bool> {
    if state.starting.is_empty() {
        return Ok(false);
    }
    let slots = std::mem::take(&mut state.starting);
    let mut found = processes_of(&slots)?;
    // A process that has just started may not have opened its session yet (`setsid` runs
    // it in place once it did): a leaderless slot is looked at again before its processes
    // are taken for leftovers.
    for _ in 0..LOOKS {
        if !found.iter().any(|f| !f.is_empty() && leader(f).is_none()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        found = processes_of(&slots)?;
    }
    let mut strays = Vec::new();
    for (slot, processes) in slots.iter().zip(found) {
        match leader(&processes) {
            Some(leader) => state.instances.push(slot.started(leader)),
            None => strays.extend(processes.into_iter().map(|(p, _)| p)),
        }
    }
    kill(&strays)?;
    Ok(true)
}

/// How many more times (every 50 ms) a slot whose processes have no session leader is
/// looked at: `setsid` may take a while to open the session on a loaded machine, and a
/// process taken for a leftover too early would be killed instead of recorded.
const LOOKS: usize = 40;

/// For each slot, the live processes started as its instance, with their sessions.
fn processes_of(slots: &[InstanceSlot]) -> Result<Vec<Vec<(ProcessId, u32)>>> {
    let mut found = vec![Vec::new(); slots.len()];
    for &(process, session) in ProcessTable::scan()?.entries() {
        if let Some(slot) = slot_of(process, slots) {
            found[slot].push((process, session));
        }
    }
    Ok(found)
}

/// The process that opened its own session: the instance's own, as `setsid` started it.
fn leader(processes: &[(ProcessId, u32)]) -> Option<ProcessId> {
    processes
        .iter()
        .find(|(p, session)| p.pid == *session)
        .map(|(p, _)| *p)
}

/// The slot a process was started for, by the `INSTANCE_ID` in the environment it was
/// started with, and its `IMAGE_DIR` under this slot's root (`<root>/fleets/<fleet>/<id>`):
/// another root may hold a fleet of the same service and key, whose instances have the same
/// ids. (Not by its working directory, as [`ProcessId::runs_as`] also does for a recorded
/// process: a shell someone opened in the instance's directory would pass.)
fn slot_of(process: ProcessId, slots: &[InstanceSlot]) -> Option<usize> {
    let (handle, _) = process.open()?;
    let env = handle.environ().ok()?;
    let id = env.get(OsStr::new("INSTANCE_ID"))?;
    let image_dir = Path::new(env.get(OsStr::new("IMAGE_DIR"))?);
    slots.iter().position(|s| {
        id.as_os_str() == OsStr::new(s.id.as_str())
            && s.dir
                .ancestors()
                .nth(3)
                .is_some_and(|root| image_dir.starts_with(root))
    })
}

/// SIGKILLs each process and waits (up to [`KILL_WAIT`]) until none is left.
fn kill(processes: &[ProcessId]) -> Result<()> {
    if processes.is_empty() {
        return Ok(());
    }
    for p in processes {
        p.signal(Signal::KILL);
    }
    let until = Instant::now() + KILL_WAIT;
    while processes.iter().any(is_running) {
        if Instant::now() >= until {
            return Err(Error::Timeout {
                what: format!(
                    "{} processes of instances whose start was not recorded to exit after \
                     SIGKILL",
                    processes.len()
                ),
                after: KILL_WAIT,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
