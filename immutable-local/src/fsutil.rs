//! Files the backend keeps: JSON written atomically (temporary file, fsync, rename, directory
//! fsync), read back with errors that name the file, and exclusive file locks.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
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
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<Option<T>> {
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
pub(crate) fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let dir = path.parent().expect("state paths have a parent");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::Provider {
        message: format!("cannot encode {}: {e}", path.display()),
        source: Some(Box::new(e) as BoxError),
    })?;
    let mut file = File::create(&tmp).map_err(|e| io_error("cannot create", &tmp, e))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error("cannot write", &tmp, e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| io_error("cannot rename into place", path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("cannot sync directory", dir, e))
}

/// Holds an exclusive lock on `path` (created if needed) until dropped.
pub(crate) fn lock_file(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| io_error("cannot open lock file", path, e))?;
    file.lock().map_err(|e| io_error("cannot lock", path, e))?;
    Ok(file)
}

/// Runs blocking file work off the async threads.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Provider {
            message: format!("a blocking task of the local backend failed: {e}"),
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
