//! Starting and stopping a fleet's processes, on a blocking thread under the fleet's lock.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use immutable_core::{Error, FleetId, FleetSpec, InstanceId, ResourceKind, Result};

use super::process::{self, ProcessId, Spawn};
use super::session::{self, Session};
use super::state::{FleetState, InstanceRecord, InstanceSlot, fleets_dir, read_state, state_path};
use super::{FleetSettings, listener, starting};
use crate::fsutil::{create_private_dir_all, lock_file, write_json_atomic};
use crate::image::Manifest;

/// How many threads start a launch's processes: starting one is mostly the kernel's work
/// (fork, exec, files), which a few threads share across cores.
const SPAWNING_THREADS: usize = 4;

/// What one launch needs, moved to a blocking thread.
pub(super) struct LaunchJob {
    pub(super) root: PathBuf,
    pub(super) settings: Arc<FleetSettings>,
    pub(super) spec: FleetSpec,
    pub(super) id: FleetId,
    pub(super) manifest: Manifest,
    pub(super) files: PathBuf,
    pub(super) program: PathBuf,
}

pub(super) fn launch_blocking(job: LaunchJob) -> Result<FleetState> {
    let dir = fleets_dir(&job.root).join(job.id.as_str());
    let _lock = lock_file(&fleets_dir(&job.root).join(format!(".{}.lock", job.id)))?;
    let path = dir.join("fleet.json");
    let mut state = match read_state(&path)? {
        Some(s) if s.terminated => return Ok(s),
        Some(s) => s,
        None => new_state(&job),
    };
    // A launch cut short between starting processes and recording them: they are taken over.
    if starting::take_over(&mut state)? {
        write_json_atomic(&path, &state)?;
    }
    if state.instances.len() >= state.capacity as usize {
        return Ok(state);
    }
    let fresh = state.instances.is_empty();
    create_private_dir_all(&dir)?;
    let mut children = Vec::new();
    let started = start_missing(&job, &dir, &mut state, &mut children).and_then(|()| {
        let new = &state.instances[state.instances.len() - children.len()..];
        watch_startup(&job, &dir, new, &mut children)
    });
    if let Err(e) = started {
        undo_launch(&dir, fresh, &mut state, children)?;
        return Err(e);
    }
    for (_, mut child) in children {
        // Reaps the process when it exits, so it never lingers as a zombie.
        std::thread::spawn(move || child.wait());
    }
    Ok(state)
}

/// The state of a fleet with no instance yet.
fn new_state(job: &LaunchJob) -> FleetState {
    FleetState {
        id: job.id.clone(),
        service: job.spec.service.clone(),
        key: job.spec.key.clone(),
        deployment: job.spec.deployment.clone(),
        image: job.spec.image.clone(),
        capacity: job.spec.capacity,
        created: SystemTime::now(),
        terminated: false,
        instances: Vec::new(),
        starting: Vec::new(),
    }
}

/// Kills every process of the sessions this launch started (children of the instances too)
/// and forgets them: the fleet's directory goes if the launch created it.
fn undo_launch(
    dir: &Path,
    fresh: bool,
    state: &mut FleetState,
    mut children: Vec<(InstanceId, Child)>,
) -> Result<()> {
    let keep = state.instances.len() - children.len();
    // Before the leaders are reaped: while a leader's pid is held, its session is certain.
    let sessions: Vec<Session<'_>> = state.instances[keep..].iter().map(Session::of).collect();
    let stopped = session::stop(&sessions, Duration::ZERO);
    for (_, child) in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    stopped?;
    state.starting.clear();
    if fresh {
        let _ = fs::remove_dir_all(dir);
    } else {
        state.instances.truncate(keep);
        write_json_atomic(&dir.join("fleet.json"), state)?;
    }
    Ok(())
}

/// Starts the instances the fleet lacks, with two writes of the state whatever their number:
/// their slots (id, port, directory) before any process starts, their pids once all have.
/// A crash in between leaves slots that name every process that may have started, and the
/// next launch or terminate takes them over (see `starting.rs`).
fn start_missing(
    job: &LaunchJob,
    dir: &Path,
    state: &mut FleetState,
    children: &mut Vec<(InstanceId, Child)>,
) -> Result<()> {
    let path = dir.join("fleet.json");
    plan_slots(job, dir, state)?;
    write_json_atomic(&path, state)?;
    start_slots(job, state, children)?;
    write_json_atomic(&path, state)
}

/// A slot for each missing instance, with a free port, under an id no instance has.
fn plan_slots(job: &LaunchJob, dir: &Path, state: &mut FleetState) -> Result<()> {
    let missing = (job.spec.capacity as usize).saturating_sub(state.instances.len());
    let taken: HashSet<&InstanceId> = state.instances.iter().map(|i| &i.id).collect();
    let ids: Vec<InstanceId> = (0..)
        .map(|n| InstanceId::new(format!("{}-{n}", job.id)))
        .filter(|id| !taken.contains(id))
        .take(missing)
        .collect();
    for id in ids {
        let port = process::free_port(&job.settings.ports)?;
        let dir = dir.join(id.as_str());
        state.starting.push(InstanceSlot { id, port, dir });
    }
    Ok(())
}

/// Starts the process of every slot, on a few threads at once; each started one becomes an
/// instance with its process's identity. After a failure no further process is started, and
/// the error is returned with every process already started recorded (for the caller to
/// undo).
fn start_slots(
    job: &LaunchJob,
    state: &mut FleetState,
    children: &mut Vec<(InstanceId, Child)>,
) -> Result<()> {
    let slots = std::mem::take(&mut state.starting);
    if slots.is_empty() {
        return Ok(());
    }
    let failed = AtomicBool::new(false);
    let per_thread = slots.len().div_ceil(SPAWNING_THREADS);
    let started: Vec<_> = std::thread::scope(|scope| {
        let threads: Vec<_> = slots
            .chunks(per_thread)
            .map(|part| scope.spawn(|| start_part(job, part, &failed)))
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut first_error = None;
    for (slot, spawned) in started {
        match spawned {
            Ok((child, process)) => {
                children.push((slot.id.clone(), child));
                state.instances.push(slot.started(process));
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Starts the processes of `part` in turn, until one (here or on another thread) failed.
fn start_part<'a>(
    job: &LaunchJob,
    part: &'a [InstanceSlot],
    failed: &AtomicBool,
) -> Vec<(&'a InstanceSlot, Result<(Child, ProcessId)>)> {
    let mut out = Vec::with_capacity(part.len());
    for slot in part {
        if failed.load(Ordering::Relaxed) {
            break;
        }
        let spawned = spawn_instance(job, slot).map(|child| {
            let process = ProcessId::of(child.id()).unwrap_or(ProcessId {
                pid: child.id(),
                start_ticks: 0,
            });
            (child, process)
        });
        failed.fetch_or(spawned.is_err(), Ordering::Relaxed);
        out.push((slot, spawned));
    }
    out
}

/// Starts one instance's process, with the environment every instance gets.
fn spawn_instance(job: &LaunchJob, slot: &InstanceSlot) -> Result<Child> {
    let (id, port, idir) = (&slot.id, slot.port, &slot.dir);
    process::spawn(Spawn {
        program: &job.program,
        args: &job.manifest.command[1..],
        dir: idir,
        env: job.manifest.instance_env(
            port,
            [
                ("INSTANCE_ID", id.to_string()),
                ("IMAGE_ID", job.spec.image.to_string()),
                ("IMAGE_DIR", job.files.display().to_string()),
                ("SERVICE", job.spec.service.to_string()),
                ("FLEET_ID", job.id.to_string()),
            ],
        ),
    })
}

/// Fails if any new process exits within the startup window. The window ends early once
/// every new instance listens on its port: it started.
fn watch_startup(
    job: &LaunchJob,
    dir: &Path,
    started: &[InstanceRecord],
    children: &mut [(InstanceId, Child)],
) -> Result<()> {
    let until = Instant::now() + job.settings.startup_check;
    // Instances not seen listening yet: one seen once has started, whatever comes next (an
    // exit is still caught, through its process's status).
    let mut waiting = started.to_vec();
    loop {
        for (id, child) in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                let stderr = process::log_tail(&dir.join(id.as_str()).join("stderr.log"), 5);
                return Err(Error::invalid(
                    "command",
                    format!(
                        "instance {id} of image {} exited at once ({status}) running `{}`; \
                         stderr: {}",
                        job.spec.image,
                        job.manifest.command.join(" "),
                        if stderr.is_empty() {
                            "(empty)"
                        } else {
                            &stderr
                        }
                    ),
                ));
            }
        }
        if Instant::now() >= until {
            return Ok(());
        }
        let mut ready = listener::ready(&waiting).into_iter();
        waiting.retain(|_| !ready.next().unwrap_or(false));
        if waiting.is_empty() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(super) fn terminate_blocking(root: &Path, id: &FleetId, grace: Duration) -> Result<()> {
    let _lock = lock_file(&fleets_dir(root).join(format!(".{id}.lock")))?;
    let path = state_path(root, id);
    let mut state: FleetState =
        read_state(&path)?.ok_or_else(|| Error::not_found(ResourceKind::Fleet, id.as_str()))?;
    // Processes of a launch cut short before it recorded them are stopped with the rest.
    let took_over = starting::take_over(&mut state)?;
    if !state.terminated || took_over {
        state.terminated = true;
        write_json_atomic(&path, &state)?;
    }
    let sessions: Vec<Session<'_>> = state.instances.iter().map(Session::of).collect();
    if session::stop(&sessions, grace)? {
        return Ok(());
    }
    Err(Error::Timeout {
        what: format!("the processes of fleet {id} to exit after SIGKILL"),
        after: grace + session::KILL_WAIT,
    })
}

#[cfg(test)]
mod tests;
