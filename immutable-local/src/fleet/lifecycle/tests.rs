//! A launch cut short between starting its processes and recording them (the crash window
//! of the two-write launch): whatever it started is taken over or stopped, never leaked.

use std::process::Child;
use std::time::Duration;

use immutable_core::{DeploymentId, ImageId, ServiceName};

use super::*;
use crate::fleet::fleet_id;
use crate::fleet::session::{ProcessTable, is_running};
use crate::image::{ImportRequest, LocalImageStore, check_command};

struct Lab {
    dir: tempfile::TempDir,
    images: LocalImageStore,
    deployment: DeploymentId,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let images = LocalImageStore::open(dir.path().join("root")).unwrap();
        Lab {
            dir,
            images,
            deployment: DeploymentId::generate(),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    async fn image(&self, command: &[&str]) -> ImageId {
        let src = self.dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        let request = ImportRequest::new("web", "v1", &src, command.iter().copied());
        self.images.import(request).await.unwrap().id
    }

    /// The job a launch of `capacity` instances of `image` runs (the same fleet every time).
    async fn job(&self, image: &ImageId, capacity: u32) -> LaunchJob {
        let (manifest, files) = self.images.launch_info(image).await.unwrap();
        let program = check_command(&files, &manifest.command).unwrap();
        let web = ServiceName::new("web").unwrap();
        let spec = FleetSpec::new(web, self.deployment.clone(), image.clone(), capacity);
        LaunchJob {
            root: self.root(),
            settings: Arc::new(FleetSettings {
                ports: 20000..=29999,
                grace: Duration::ZERO,
                startup_check: Duration::from_millis(50),
            }),
            id: fleet_id(&spec.service, spec.key.as_str()),
            spec,
            manifest,
            files,
            program,
        }
    }
}

/// What a launch that crashed after its first write leaves: the slots written, the
/// processes of the first `started` of them running, none recorded.
fn crash_after_starting(job: &LaunchJob, started: usize) -> (FleetState, Vec<Child>) {
    let dir = fleets_dir(&job.root).join(job.id.as_str());
    let mut state = new_state(job);
    create_private_dir_all(&dir).unwrap();
    plan_slots(job, &dir, &mut state).unwrap();
    write_json_atomic(&dir.join("fleet.json"), &state).unwrap();
    let children = state.starting[..started]
        .iter()
        .map(|slot| spawn_instance(job, slot).unwrap())
        .collect();
    (state, children)
}

fn stored(job: &LaunchJob) -> FleetState {
    read_state(&state_path(&job.root, &job.id))
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_launch_repeated_after_a_crash_takes_over_the_processes_it_started() {
    let lab = Lab::new();
    let image = lab.image(&["/bin/sleep", "30"]).await;
    let job = lab.job(&image, 3).await;
    let (_, mut crashed) = crash_after_starting(&job, 2);
    let pids: Vec<u32> = crashed.iter().map(Child::id).collect();

    let state = launch_blocking(lab.job(&image, 3).await).unwrap();
    assert!(state.starting.is_empty());
    assert_eq!(state.instances.len(), 3);
    let recorded: Vec<u32> = state.instances.iter().map(|i| i.process.pid).collect();
    assert_eq!(recorded[..2], pids[..], "taken over, not started again");
    assert!(state.instances.iter().all(InstanceRecord::is_alive));
    assert_eq!(stored(&job), state);

    terminate_blocking(&lab.root(), &job.id, Duration::ZERO).unwrap();
    for child in &mut crashed {
        child.wait().unwrap();
    }
    assert!(state.instances.iter().all(|i| !i.is_alive()));
}

#[tokio::test]
async fn terminate_after_a_crash_stops_the_processes_never_recorded() {
    let lab = Lab::new();
    let image = lab.image(&["/bin/sleep", "30"]).await;
    let job = lab.job(&image, 3).await;
    let (_, mut crashed) = crash_after_starting(&job, 2);

    terminate_blocking(&lab.root(), &job.id, Duration::ZERO).unwrap();
    let state = stored(&job);
    assert!(state.terminated && state.starting.is_empty());
    assert_eq!(state.instances.len(), 2, "the two started are recorded");
    for child in &mut crashed {
        assert!(child.wait().unwrap().code().is_none(), "killed by a signal");
    }
}

#[tokio::test]
async fn a_process_left_by_an_unrecorded_instance_whose_own_process_died_is_killed() {
    let lab = Lab::new();
    let image = lab.image(&["/bin/sh", "-c", "sleep 30 & wait"]).await;
    let job = lab.job(&image, 1).await;
    let (_, mut crashed) = crash_after_starting(&job, 1);
    let leader = crashed[0].id();
    let stray = until_found(|| {
        ProcessTable::scan()
            .unwrap()
            .entries()
            .iter()
            .find(|(p, session)| *session == leader && p.pid != leader)
            .map(|(p, _)| *p)
    });
    crashed[0].kill().unwrap();
    crashed[0].wait().unwrap();

    let state = launch_blocking(lab.job(&image, 1).await).unwrap();
    assert!(
        !is_running(&stray),
        "the leftover of the crashed launch is killed"
    );
    assert_eq!(state.instances.len(), 1);
    assert_ne!(state.instances[0].process.pid, leader);
    assert!(
        state.instances[0].is_alive(),
        "the instance is started anew"
    );
    terminate_blocking(&lab.root(), &job.id, Duration::ZERO).unwrap();
}

/// Polls `find` for up to 5 s.
fn until_found<T>(mut find: impl FnMut() -> Option<T>) -> T {
    for _ in 0..250 {
        if let Some(found) = find() {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("not found within 5 s");
}
