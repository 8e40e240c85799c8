//! Removing what a test made on a daemon, even when the test panics: [`Sweep`].

use std::sync::Mutex;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{RemoveContainerOptions, RemoveImageOptions};

/// How long the removals of one sweep may take in all.
const SWEEP: Duration = Duration::from_secs(60);

/// The containers and images a test made on one daemon, removed by [`Sweep::now`] or, at the
/// latest, when the sweep is dropped: at the test's end, or during its panic.
///
/// Containers go first (forced, with their anonymous volumes), then images (not forced: an
/// image another test's container uses stays). One that is gone already counts as removed.
///
/// ```no_run
/// # async fn example(docker: bollard::Docker, image: String) {
/// use immutable_testkit::docker::Sweep;
///
/// let sweep = Sweep::new(&docker);
/// sweep.image(&image);
/// // ... create a container, then at once:
/// # let id = String::new();
/// sweep.container(&id);
/// // ... assertions; the container and the image are removed when `sweep` drops.
/// # }
/// ```
#[derive(Debug)]
pub struct Sweep {
    docker: Docker,
    containers: Mutex<Vec<String>>,
    images: Mutex<Vec<String>>,
}

impl Sweep {
    /// A sweep of what the test makes through `docker`.
    pub fn new(docker: &Docker) -> Sweep {
        Sweep {
            docker: docker.clone(),
            containers: Mutex::default(),
            images: Mutex::default(),
        }
    }

    /// Registers a container (id or name) to remove.
    pub fn container(&self, id: impl AsRef<str>) {
        lock(&self.containers).push(id.as_ref().to_owned());
    }

    /// Registers an image (id or tag) to remove.
    pub fn image(&self, id: impl AsRef<str>) {
        lock(&self.images).push(id.as_ref().to_owned());
    }

    /// Removes what is registered now, and forgets it.
    ///
    /// # Panics
    /// When the daemon refuses a removal (other than of something already gone), or the
    /// removals take more than a minute.
    pub async fn now(&self) {
        let failures = self.remove_all().await;
        assert!(
            failures.is_empty(),
            "the sweep failed: {}",
            failures.join("; ")
        );
    }

    /// Removes everything registered; what could not be removed, as messages.
    async fn remove_all(&self) -> Vec<String> {
        let containers = std::mem::take(&mut *lock(&self.containers));
        let images = std::mem::take(&mut *lock(&self.images));
        let removals = async {
            let mut failures = Vec::new();
            for id in containers {
                let options = RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                };
                if let Err(e) = self.docker.remove_container(&id, Some(options)).await {
                    failures.extend(failure("container", &id, e));
                }
            }
            for id in images {
                let options = RemoveImageOptions::default();
                if let Err(e) = self.docker.remove_image(&id, Some(options), None).await {
                    failures.extend(failure("image", &id, e));
                }
            }
            failures
        };
        tokio::time::timeout(SWEEP, removals)
            .await
            .unwrap_or_else(|_| vec![format!("not done within {} s", SWEEP.as_secs())])
    }
}

/// The message of a removal that failed; none for what is gone already.
fn failure(kind: &str, id: &str, e: DockerError) -> Option<String> {
    match e {
        DockerError::DockerResponseServerError {
            status_code: 404, ..
        } => None,
        e => Some(format!("{kind} {id}: {e}")),
    }
}

fn lock(list: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    list.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for Sweep {
    fn drop(&mut self) {
        if lock(&self.containers).is_empty() && lock(&self.images).is_empty() {
            return;
        }
        // Drop cannot await, and may run inside the test's runtime: the removals run on a
        // thread of their own, with a runtime of their own.
        let sweep = Sweep {
            docker: self.docker.clone(),
            containers: Mutex::new(std::mem::take(&mut *lock(&self.containers))),
            images: Mutex::new(std::mem::take(&mut *lock(&self.images))),
        };
        let swept = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the sweep");
            runtime.block_on(sweep.remove_all())
        });
        let failures = swept.join().unwrap_or_default();
        if !failures.is_empty() && !std::thread::panicking() {
            panic!("the sweep failed: {}", failures.join("; "));
        }
    }
}
