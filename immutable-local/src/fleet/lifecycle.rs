//! Starting and stopping a fleet's processes, on a blocking thread under the fleet's lock.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use immutable_core::{Error, FleetId, FleetSpec, InstanceId, ResourceKind, Result};

use super::FleetSettings;
use super::process::{self, ProcessId, Spawn};
use super::session::{self, Session};
use super::state::{FleetState, InstanceRecord, fleets_dir, read_state, state_path};
use crate::fsutil::{create_private_dir_all, lock_file, write_json_atomic};
use crate::image::Manifest;

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
        Some(s) if s.terminated || s.instances.len() >= s.capacity as usize => return Ok(s),
        Some(s) => s,
        None => FleetState {
            id: job.id.clone(),
            service: job.spec.service.clone(),
            key: job.spec.key.clone(),
            deployment: job.spec.deployment.clone(),
            image: job.spec.image.clone(),
            capacity: job.spec.capacity,
            created: SystemTime::now(),
            terminated: false,
            instances: Vec::new(),
        },
    };
    let fresh = state.instances.is_empty();
    create_private_dir_all(&dir)?;
    let mut children = Vec::new();
    let started = start_missing(&job, &dir, &mut state, &mut children)
        .and_then(|()| watch_startup(&job, &dir, &mut children));
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
    if fresh {
        let _ = fs::remove_dir_all(dir);
    } else {
        state.instances.truncate(keep);
        write_json_atomic(&dir.join("fleet.json"), state)?;
    }
    Ok(())
}

fn start_missing(
    job: &LaunchJob,
    dir: &Path,
    state: &mut FleetState,
    children: &mut Vec<(InstanceId, Child)>,
) -> Result<()> {
    let path = dir.join("fleet.json");
    write_json_atomic(&path, state)?;
    for n in state.instances.len()..job.spec.capacity as usize {
        let id = InstanceId::new(format!("{}-{n}", job.id));
        let port = process::free_port(&job.settings.ports)?;
        let idir = dir.join(id.as_str());
        let child = process::spawn(Spawn {
            program: &job.program,
            args: &job.manifest.command[1..],
            dir: &idir,
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
        })?;
        let process = ProcessId::of(child.id()).unwrap_or(ProcessId {
            pid: child.id(),
            start_ticks: 0,
        });
        children.push((id.clone(), child));
        state.instances.push(InstanceRecord {
            id,
            process,
            port,
            dir: idir,
        });
        write_json_atomic(&path, state)?;
    }
    Ok(())
}

/// Fails if any new process exits within the startup window.
fn watch_startup(job: &LaunchJob, dir: &Path, children: &mut [(InstanceId, Child)]) -> Result<()> {
    let until = Instant::now() + job.settings.startup_check;
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
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(super) fn terminate_blocking(root: &Path, id: &FleetId, grace: Duration) -> Result<()> {
    let _lock = lock_file(&fleets_dir(root).join(format!(".{id}.lock")))?;
    let path = state_path(root, id);
    let mut state: FleetState =
        read_state(&path)?.ok_or_else(|| Error::not_found(ResourceKind::Fleet, id.as_str()))?;
    if !state.terminated {
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
