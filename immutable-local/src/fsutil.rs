//! Files the backend keeps: JSON written atomically (temporary file, fsync, rename, directory
//! fsync), read back with errors that name the file, exclusive file locks, and private
//! directories.
//!
//! Nothing here follows a symbolic link planted where the backend writes: temporary files are
//! created exclusively under random names, and lock and log files are opened with
//! `O_NOFOLLOW`.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use immutable_core::{BoxError, Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An I/O failure on `path`, kept as the source.
pub(crate) fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Provider {
        message: format!("{what} {}: {e}", path.display()),
        source: Some(Box::new(e) as BoxError),
    }
}

/// Reads a JSON file; `None` when it does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("cannot read", path, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Provider {
            message: format!(
                "{what} {} is corrupted ({e}); it was left untouched: move it aside",
                path.display()
            ),
            source: Some(Box::new(e) as BoxError),
        })
}

/// Writes `value` to a temporary file beside `path`, fsyncs it, renames it over `path` and
/// fsyncs the directory, so a crash leaves the old or the new version, never a torn one.
///
/// The temporary file is created exclusively (`O_EXCL`) under a random name starting with a
/// dot (which directory listings of the backend skip), readable by the user only; it is
/// removed if anything fails before the rename.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let dir = path.parent().expect("state paths have a parent");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::Provider {
        message: format!("cannot encode {}: {e}", path.display()),
        source: Some(Box::new(e) as BoxError),
    })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io_error("cannot create a temporary file in", dir, e))?;
    tmp.write_all(&bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| io_error("cannot write", tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| io_error("cannot rename into place", path, e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("cannot sync directory", dir, e))
}

/// Opens `path` for writing, created if needed (mode 0600) and truncated; a symbolic link
/// there is refused.
pub(crate) fn create_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(NOFOLLOW)
        .open(path)
        .map_err(|e| open_error(path, e))
}

/// Opens `path` for appending (created if needed, mode 0600). A symbolic link at `path` is
/// refused, never followed.
pub(crate) fn append_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(NOFOLLOW)
        .open(path)
        .map_err(|e| open_error(path, e))
}

/// Holds an exclusive lock on `path` (created if needed, mode 0600) until dropped. A symbolic
/// link at `path` is refused, never followed.
pub fn lock_file(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(NOFOLLOW)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    file.lock().map_err(|e| io_error("cannot lock", path, e))?;
    Ok(file)
}

const NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;

/// An error opening `path`, saying what to do when it is a symbolic link.
fn open_error(path: &Path, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
        let message = format!(
            "{} is a symbolic link; immutable never writes through one: remove it",
            path.display()
        );
        return Error::Provider {
            message,
            source: Some(Box::new(e) as BoxError),
        };
    }
    io_error("cannot open", path, e)
}

/// Creates `dir` and its missing parents, each private to the user (mode 0700); directories
/// that exist already are left as they are.
pub fn create_private_dir_all(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_error("cannot create", dir, e))
}

/// Runs blocking file work off the async threads.
pub async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Provider {
            message: format!("a blocking file task failed: {e}"),
            source: Some(Box::new(e) as BoxError),
        })?
}

/// Whether `s` is safe as one path component: ASCII letters, digits, `-`, `_` and `.`, not
/// starting with a dot.
pub(crate) fn is_safe_component(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Whether `path` is an executable file.
pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether `path` can be an HTTP health check's path in an HAProxy configuration: it starts
/// with `/` and holds no whitespace or control characters.
pub(crate) fn is_health_path(path: &str) -> bool {
    path.starts_with('/') && !path.chars().any(|c| c.is_whitespace() || c.is_control())
}
