//! Images built `FROM scratch` around one executable, without a registry: [`ScratchImage`].

mod context;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures::StreamExt;
use immutable_core::{BoxError, Error, Result};

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
///   an environment variable the Dockerfile cannot hold) is [`Error::InvalidInput`] before
///   any call to Docker.
/// - The same executable, arguments, environment and labels give the same build context,
///   byte for byte, so the daemon's cache answers a rebuild with the same image id.
/// - The build is bounded by [`timeout`](Self::timeout) (two minutes unless set).
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
}

impl ScratchImage {
    /// The image of `binary`, without arguments, environment, labels or tag; two minutes to
    /// build.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        ScratchImage {
            binary: binary.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            tag: None,
            timeout: Duration::from_secs(120),
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

    /// Tags the image `repository:tag` as well; without it, the image is known by its id only.
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

    /// The executable the image runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Builds the image on `docker` and returns its id, `sha256:<64 hex digits>`.
    ///
    /// # Errors
    /// - [`Error::InvalidInput`] on `binary` when it is missing, not an executable ELF file,
    ///   or needs a library `ldd` does not find; on `env` for a name other than letters,
    ///   digits and `_`, or a value of several lines; on `tag` when the daemon refuses it. The
    ///   first two come before any call to Docker.
    /// - [`Error::Provider`] when the build fails: the message is the daemon's, and the
    ///   client's error is the source.
    /// - [`Error::Transient`] when the daemon cannot be reached.
    /// - [`Error::Timeout`] when it takes longer than [`timeout`](Self::timeout).
    pub async fn build(&self, docker: &Docker) -> Result<String> {
        let name = context::check_binary(&self.binary)?;
        for (key, value) in &self.env {
            context::check_env(key, value)?;
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
        match &e {
            DockerError::DockerStreamError { error } => Error::Provider {
                message: format!("the build of {binary} failed: {error}"),
                source: Some(Box::new(e) as BoxError),
            },
            DockerError::DockerResponseServerError {
                status_code: 400,
                message,
            } if self.tag.is_some() => Error::InvalidInput {
                field: "tag".into(),
                reason: format!("the daemon refused the build of {binary}: {message}"),
                source: Some(Box::new(e) as BoxError),
            },
            DockerError::DockerResponseServerError { message, .. } => Error::Provider {
                message: format!("the daemon refused the build of {binary}: {message}"),
                source: Some(Box::new(e) as BoxError),
            },
            DockerError::IOError { .. }
            | DockerError::HyperResponseError { .. }
            | DockerError::HyperLegacyError { .. }
            | DockerError::RequestTimeoutError
            | DockerError::SocketNotFoundError(_) => Error::Transient {
                message: format!("the build of {binary} did not reach the daemon: {e}"),
                source: Some(Box::new(e) as BoxError),
            },
            _ => Error::Provider {
                message: format!("the build of {binary} failed: {e}"),
                source: Some(Box::new(e) as BoxError),
            },
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
