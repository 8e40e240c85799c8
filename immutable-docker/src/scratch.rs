//! Images built `FROM scratch` around one executable, without a registry: [`ScratchImage`].

mod context;
mod input;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures::StreamExt;
use immutable_core::{BoxError, Error, Result, RetryPolicy};

/// An image holding one executable and the shared libraries it links, built `FROM scratch` by
/// the daemon: no base image, so no registry is needed.
///
/// ```no_run
/// # async fn example(docker: &bollard::Docker) -> immutable_core::Result<()> {
/// use immutable_docker::ScratchImage;
///
/// let id = ScratchImage::new("target/release/my-app")
///     .arg("--listen")
///     .arg("127.0.0.1:8080")
///     .env("RUST_LOG", "info")
///     .label("com.example.version", "1.4.2")
///     .tag("my-app:1.4.2")
///     .build(docker)
///     .await?;
/// assert!(id.starts_with("sha256:"));
/// # Ok(()) }
/// ```
///
/// # What the image holds
/// - The executable at `/app/<its file name>`, mode 0755: the entrypoint, followed by the
///   [`arg`](Self::arg)s.
/// - Every shared library `ldd` lists for it, the dynamic loader among them, at the path
///   `ldd` gives (`/lib/x86_64-linux-gnu/libc.so.6`, `/lib64/ld-linux-x86-64.so.2`), read
///   through symbolic links so the image holds the files themselves.
/// - The [`env`](Self::env) variables in its configuration, the [`label`](Self::label)s on it.
///
/// Nothing else: no shell, no `/etc`, no certificates.
///
/// # Guarantees
/// - Bad input (a missing, non-executable or non-ELF binary, a library `ldd` does not find,
///   an environment variable the Dockerfile cannot hold, a malformed tag) is
///   [`Error::InvalidInput`] before any call to Docker.
/// - The same executable, arguments, environment and labels give the same build context,
///   byte for byte, so the daemon's cache answers a rebuild with the same image id.
/// - The build is bounded by [`timeout`](Self::timeout) (two minutes unless set), retries
///   included (by [`retry`](Self::retry): three attempts unless set).
///
/// # Assumptions
/// The daemon runs on this machine's architecture and accepts the classic builder's
/// `POST /build` (Docker 20.10 answers it without BuildKit). `ldd` is glibc's.
///
/// # Caveats
/// - Libraries a program opens at run time with `dlopen` (NSS modules behind user or host
///   lookups, say) are not listed by `ldd`, so not copied; nor are files it reads.
/// - `ldd` may run the binary's dynamic loader: build only executables you trust.
///
/// # Errors
/// See [`ScratchImage::build`].
#[derive(Debug, Clone)]
pub struct ScratchImage {
    binary: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    tag: Option<String>,
    timeout: Duration,
    retry: RetryPolicy,
}

impl ScratchImage {
    /// The image of `binary`, without arguments, environment, labels or tag; two minutes to
    /// build, in at most three attempts.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        ScratchImage {
            binary: binary.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            tag: None,
            timeout: Duration::from_secs(120),
            retry: RetryPolicy::default()
                .with_max_attempts(3)
                .with_backoff(Duration::from_millis(100), Duration::from_secs(1)),
        }
    }

    /// Appends an argument to the entrypoint.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments to the entrypoint.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable of the image (a later call for the same name wins). The
    /// value is taken literally: `$NAME` is not expanded.
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Sets a label on the image (a later call for the same key wins).
    #[must_use]
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Tags the image `repository[:tag]` as well (`my-app:1.4.2`,
    /// `registry.example:5000/team/my-app`); without it, the image is known by its id only.
    /// [`build`](Self::build) checks it as the daemon reads it.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// How long [`build`](Self::build) may take in all (reading the files included).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How a build that fails as transient is tried again (within the
    /// [`timeout`](Self::timeout)).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The executable the image runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Builds the image on `docker` and returns its id, `sha256:<64 hex digits>`.
    ///
    /// A build that fails as transient (the daemon out of reach, or a cached layer removed by
    /// an image removal running at the same time) is tried again as the
    /// [`retry`](Self::retry) policy says, all within the [`timeout`](Self::timeout).
    ///
    /// # Errors
    /// - [`Error::InvalidInput`], before any call to Docker: on `binary` when it is missing,
    ///   not an executable ELF file, or needs a library `ldd` does not find; on `env` for a
    ///   name other than letters, digits and `_`, or a value of several lines; on `tag` for
    ///   one the daemon would not take.
    /// - [`Error::Provider`] when the build fails: the message is the daemon's, and the
    ///   client's error is the source.
    /// - [`Error::Transient`] when it failed as transient on every attempt.
    /// - [`Error::Timeout`] when it takes longer than [`timeout`](Self::timeout).
    pub async fn build(&self, docker: &Docker) -> Result<String> {
        let name = input::check_binary(&self.binary)?;
        for (key, value) in &self.env {
            input::check_env(key, value)?;
        }
        if let Some(tag) = &self.tag {
            input::check_tag(tag)?;
        }
        tokio::time::timeout(self.timeout, self.build_checked(docker, name))
            .await
            .map_err(|_| Error::Timeout {
                what: format!("the image of {} to build", self.binary.display()),
                after: self.timeout,
            })?
    }

    async fn build_checked(&self, docker: &Docker, name: String) -> Result<String> {
        let image = self.clone();
        let archive = tokio::task::spawn_blocking(move || image.context(&name))
            .await
            .map_err(|e| Error::Provider {
                message: format!(
                    "the build context of {} was not made: {e}",
                    self.binary.display()
                ),
                source: Some(Box::new(e) as BoxError),
            })??;
        self.retry
            .run(
                || self.send(docker, archive.clone()),
                |attempt, error, backoff| {
                    tracing::warn!(
                        binary = %self.binary.display(),
                        attempt,
                        backoff_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                        "{error}; building again"
                    );
                },
            )
            .await
    }

    /// One `POST /build` of `archive`; the id of the image built.
    async fn send(&self, docker: &Docker, archive: Vec<u8>) -> Result<String> {
        let labels: HashMap<&str, &str> = self
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .rm(true)
            .forcerm(true)
            .labels(&labels);
        if let Some(tag) = &self.tag {
            options = options.t(tag);
        }
        let mut progress = docker.build_image(
            options.build(),
            None,
            Some(bollard::body_full(archive.into())),
        );
        let mut id = None;
        while let Some(step) = progress.next().await {
            let step = step.map_err(|e| self.build_failed(e))?;
            if let Some(built) = step.aux.and_then(|aux| aux.id) {
                id = Some(built);
            }
        }
        match id {
            Some(id) if is_image_id(&id) => Ok(id),
            other => Err(Error::provider(format!(
                "the build of {} ended without an image id (the daemon's last id: {})",
                self.binary.display(),
                other.as_deref().unwrap_or("none")
            ))),
        }
    }

    /// The build context: the Dockerfile and the files, as a tar archive.
    fn context(&self, name: &str) -> Result<Vec<u8>> {
        let entries = context::entries(&self.binary, name)?;
        let mut entrypoint = vec![format!("{}/{name}", context::APP_DIR)];
        entrypoint.extend(self.args.iter().cloned());
        context::archive(&context::dockerfile(&entrypoint, &self.env), &entries)
    }

    fn build_failed(&self, e: DockerError) -> Error {
        let binary = self.binary.display();
        let (message, transient) = match &e {
            // The classic builder reuses the images of earlier builds' steps; removing an
            // image removes its untagged parents, and a build that had found one in its cache
            // then loses it.
            DockerError::DockerStreamError { error }
                if error.contains("unable to find image") || error.contains("No such image") =>
            {
                let message = format!(
                    "the build of {binary} lost a cached step to an image removal running at                      the same time: {error}"
                );
                (message, true)
            }
            DockerError::DockerStreamError { error } => {
                (format!("the build of {binary} failed: {error}"), false)
            }
            DockerError::DockerResponseServerError { message, .. } => (
                format!("the daemon refused the build of {binary}: {message}"),
                false,
            ),
            DockerError::IOError { .. }
            | DockerError::HyperResponseError { .. }
            | DockerError::HyperLegacyError { .. }
            | DockerError::RequestTimeoutError
            | DockerError::SocketNotFoundError(_) => (
                format!("the build of {binary} did not reach the daemon: {e}"),
                true,
            ),
            _ => (format!("the build of {binary} failed: {e}"), false),
        };
        let source = Some(Box::new(e) as BoxError);
        if transient {
            Error::Transient { message, source }
        } else {
            Error::Provider { message, source }
        }
    }
}

/// Whether `id` reads `sha256:` and 64 lowercase hex digits.
fn is_image_id(id: &str) -> bool {
    id.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests;
