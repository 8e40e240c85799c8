//! The store directory: where each file lives, atomic writes, private directories, the lock
//! file, and counts of what was done.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{DeploymentId, DeploymentRecord, Error, Result, ServiceName};

/// What a [`FileStore`](super::FileStore) did to its directory since it was opened (shared by
/// its clones): the cost of each operation, made visible to tests and monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileStoreStats {
    /// Files opened and read: records, indexes, leases. A probe for a file that does not
    /// exist is not counted.
    pub files_read: u64,
    /// Files written (each through a temporary file, fsync and rename).
    pub files_written: u64,
    /// Directories listed.
    pub dirs_listed: u64,
    /// Record files deleted by retention.
    pub files_removed: u64,
    /// Service indexes rebuilt from the record files (missing, corrupted or stale).
    pub index_rebuilds: u64,
    /// Reads of a deployment's commands directory: a runner makes one per poll interval, so
    /// this follows a deployment's duration, not the history behind it. (The command files
    /// found are counted in `files_read`.)
    pub command_polls: u64,
}

#[derive(Debug, Default)]
struct Counters {
    files_read: AtomicU64,
    files_written: AtomicU64,
    dirs_listed: AtomicU64,
    files_removed: AtomicU64,
    index_rebuilds: AtomicU64,
    command_polls: AtomicU64,
}

/// A store directory and its counters.
#[derive(Debug)]
pub(super) struct Dir {
    pub(super) root: PathBuf,
    counters: Counters,
}

pub(super) fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::store(format!("{what} {}", path.display()), Some(Box::new(e) as _))
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Refuses ids that are not plain file names.
pub(super) fn file_stem(id: &DeploymentId) -> Result<&str> {
    let s = id.as_str();
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::invalid(
            "deployment",
            format!("`{s}` is not a deployment id (letters, digits, '-' and '_')"),
        ));
    }
    Ok(s)
}

/// Whether a directory entry is a record file (`<id>.json`, not a temporary `.…` file).
fn record_name(name: &str) -> Option<&str> {
    name.strip_suffix(".json")
        .filter(|_| !name.starts_with('.'))
}

impl Dir {
    pub(super) fn new(root: PathBuf) -> Self {
        Dir {
            root,
            counters: Counters::default(),
        }
    }

    pub(super) fn stats(&self) -> FileStoreStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FileStoreStats {
            files_read: get(&c.files_read),
            files_written: get(&c.files_written),
            dirs_listed: get(&c.dirs_listed),
            files_removed: get(&c.files_removed),
            index_rebuilds: get(&c.index_rebuilds),
            command_polls: get(&c.command_polls),
        }
    }

    pub(super) fn counted_rebuild(&self) {
        bump(&self.counters.index_rebuilds);
    }

    pub(super) fn counted_command_poll(&self) {
        bump(&self.counters.command_polls);
    }

    pub(super) fn deployments(&self) -> PathBuf {
        self.root.join("deployments")
    }

    pub(super) fn service_dir(&self, service: &ServiceName) -> PathBuf {
        self.deployments().join(service.as_str())
    }

    pub(super) fn record_path(&self, service: &ServiceName, id: &DeploymentId) -> Result<PathBuf> {
        Ok(self
            .service_dir(service)
            .join(format!("{}.json", file_stem(id)?)))
    }

    pub(super) fn index_path(&self, service: &ServiceName) -> PathBuf {
        self.root.join("index").join(format!("{service}.json"))
    }

    pub(super) fn lease_path(&self, service: &ServiceName) -> PathBuf {
        self.root.join("leases").join(format!("{service}.json"))
    }

    /// A file's bytes; `None` if it does not exist.
    pub(super) fn read_bytes(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        match fs::read(path) {
            Ok(b) => {
                bump(&self.counters.files_read);
                Ok(Some(b))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("cannot read", path, e)),
        }
    }

    /// A JSON file, which must parse: a file that does not is reported and left untouched.
    pub(super) fn read_json<T: DeserializeOwned>(
        &self,
        path: &Path,
        what: &str,
    ) -> Result<Option<T>> {
        let Some(bytes) = self.read_bytes(path)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::store(
                format!(
                    "{what} {} is corrupted or truncated ({e}); it was left untouched: \
                     restore it from a backup or move it aside",
                    path.display()
                ),
                Some(Box::new(e) as _),
            )
        })
    }

    /// The record at `deployments/<service>/<id>.json`, which must be that deployment of that
    /// service: a file that says otherwise (copied, or tampered with) is refused, naming it.
    pub(super) fn read_record(
        &self,
        service: &ServiceName,
        id: &DeploymentId,
    ) -> Result<Option<DeploymentRecord>> {
        let path = self.record_path(service, id)?;
        let record: Option<DeploymentRecord> = self.read_json(&path, "deployment record")?;
        match record {
            Some(r) if &r.id != id || r.service() != service => Err(Error::store(
                format!(
                    "deployment record {} holds deployment {} of service {}, not what its path \
                     says; it was left untouched: restore it from a backup or move it aside",
                    path.display(),
                    r.id,
                    r.service()
                ),
                None,
            )),
            other => Ok(other),
        }
    }

    /// Writes `value` to a temporary file beside `path`, fsyncs it, renames it over `path` and
    /// fsyncs the directory, creating the directory if needed. The temporary file is created
    /// exclusively under a random name starting with a dot (which listings skip), so a file or
    /// link planted beside `path` is never written through.
    pub(super) fn write_json<T: Serialize>(&self, path: &Path, value: &T) -> Result<()> {
        let dir = path.parent().expect("store paths have a parent");
        if !dir.exists() {
            create_private_dir_all(dir)?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| {
            Error::store(
                format!("cannot encode {}", path.display()),
                Some(Box::new(e) as _),
            )
        })?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("record");
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
        bump(&self.counters.files_written);
        sync_dir(dir)
    }

    pub(super) fn remove(&self, path: &Path) -> Result<()> {
        match fs::remove_file(path) {
            Ok(()) => {
                bump(&self.counters.files_removed);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("cannot remove", path, e)),
        }
    }

    /// The names in a directory (none if it does not exist), sorted.
    pub(super) fn names(&self, dir: &Path) -> Result<Vec<String>> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("cannot list", dir, e)),
        };
        bump(&self.counters.dirs_listed);
        let mut names: Vec<String> = entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The ids of the service's records, oldest first: one directory listing, no file read.
    pub(super) fn record_ids(&self, service: &ServiceName) -> Result<Vec<DeploymentId>> {
        Ok(self
            .names(&self.service_dir(service))?
            .iter()
            .filter_map(|n| record_name(n))
            .map(DeploymentId::from)
            .collect())
    }

    /// The services with a record directory.
    /// `service` alone, or every service when it is `None`.
    pub(super) fn services_or_all(&self, service: Option<ServiceName>) -> Result<Vec<ServiceName>> {
        match service {
            Some(s) => Ok(vec![s]),
            None => self.services(),
        }
    }

    pub(super) fn services(&self) -> Result<Vec<ServiceName>> {
        let dir = self.deployments();
        Ok(self
            .names(&dir)?
            .into_iter()
            .filter(|n| dir.join(n).is_dir())
            .filter_map(|n| ServiceName::new(n).ok())
            .collect())
    }

    /// Runs `f` holding the exclusive lock on `<root>/.lock`.
    pub(super) fn locked<T>(&self, f: impl FnOnce(&Dir) -> Result<T>) -> Result<T> {
        let lock_path = self.root.join(".lock");
        let lock = open_lock(&lock_path)?;
        lock.lock()
            .map_err(|e| io_error("cannot lock", &lock_path, e))?;
        f(self)
    }
}

/// Opens (creating, mode 0600) the lock file; a symbolic link there is refused, never followed.
fn open_lock(path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return Error::store(
                format!(
                    "lock file {} is a symbolic link; the store never writes through one: \
                     remove it",
                    path.display()
                ),
                Some(Box::new(e) as _),
            );
        }
        io_error("cannot open lock file", path, e)
    })
}

/// Creates `dir` and its missing parents, each private to the user (mode 0700 on Unix);
/// directories that exist already are left as they are.
pub(super) fn create_private_dir_all(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| io_error("cannot create directory", dir, e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("cannot sync directory", dir, e))
}
