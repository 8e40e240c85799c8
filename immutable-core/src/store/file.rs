use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Lease, LeaseGrant, StateStore, grant_lease, renewed_lease, version_conflict};
use crate::{
    CommandRecord, DeploymentId, DeploymentRecord, Error, ResourceKind, Result, ServiceName,
};

/// A [`StateStore`] in a directory: the embedded default for a deploy tool on one machine.
///
/// Records live in `deployments/<id>.json` and leases in `leases/<service>.json`. Every write
/// goes to a temporary file that is fsynced and then renamed over the old one, so a crash
/// leaves either the old or the new version, never a torn one. Every operation holds an
/// exclusive lock on `<dir>/.lock`, so several processes on one machine may share the directory.
/// Lease expiry follows the caller's clock (the engine's), so processes sharing a directory
/// should keep their clocks in step, as any lease over a file system assumes.
///
/// A record that cannot be parsed is reported as [`Error::Store`] naming the file; it is never
/// overwritten or silently replaced.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: Arc<PathBuf>,
}

impl FileStore {
    /// Opens (creating if needed) a store in `dir`.
    ///
    /// # Errors
    /// [`Error::Store`] naming the directory if it cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let root = dir.into();
        for sub in ["deployments", "leases"] {
            let path = root.join(sub);
            fs::create_dir_all(&path).map_err(|e| {
                Error::store(
                    format!("cannot create directory {}", path.display()),
                    Some(Box::new(e) as _),
                )
            })?;
        }
        Ok(FileStore {
            root: Arc::new(root),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    async fn locked<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> Result<T> + Send + 'static,
    {
        let root = Arc::clone(&self.root);
        tokio::task::spawn_blocking(move || {
            let lock_path = root.join(".lock");
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| io_error("cannot open lock file", &lock_path, e))?;
            lock.lock()
                .map_err(|e| io_error("cannot lock", &lock_path, e))?;
            f(&root)
        })
        .await
        .map_err(|e| Error::store("file store task failed", Some(Box::new(e) as _)))?
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::store(format!("{what} {}", path.display()), Some(Box::new(e) as _))
}

fn record_path(root: &Path, id: &DeploymentId) -> Result<PathBuf> {
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
    Ok(root.join("deployments").join(format!("{s}.json")))
}

/// `commands/<deployment>/<command id>.json`; ids that are not plain names are refused.
fn command_path(root: &Path, deployment: &DeploymentId, id: &str) -> Result<PathBuf> {
    record_path(root, deployment)?;
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Error::invalid(
            "command",
            format!("`{id}` is not a command id"),
        ));
    }
    Ok(root
        .join("commands")
        .join(deployment.as_str())
        .join(format!("{id}.json")))
}

fn lease_path(root: &Path, service: &ServiceName) -> PathBuf {
    root.join("leases").join(format!("{service}.json"))
}

fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("cannot read", path, e)),
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

/// Writes `value` to a temporary file beside `path`, fsyncs it, renames it over `path` and
/// fsyncs the directory.
fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let dir = path.parent().expect("store paths have a parent");
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("record"),
        std::process::id()
    ));
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| {
        Error::store(
            format!("cannot encode {}", path.display()),
            Some(Box::new(e) as _),
        )
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

#[async_trait]
impl StateStore for FileStore {
    async fn save(&self, record: &mut DeploymentRecord) -> Result<()> {
        let mut next = record.clone();
        let saved = self
            .locked(move |root| {
                let path = record_path(root, &next.id)?;
                let stored: Option<DeploymentRecord> = read_json(&path, "deployment record")?;
                match stored.map(|r| r.version) {
                    None if next.version != 0 => {
                        return Err(Error::not_found(
                            ResourceKind::Deployment,
                            next.id.to_string(),
                        ));
                    }
                    Some(_) if next.version == 0 => {
                        return Err(Error::AlreadyExists {
                            kind: ResourceKind::Deployment,
                            id: next.id.to_string(),
                        });
                    }
                    Some(v) if v != next.version => return Err(version_conflict(&next, v)),
                    _ => {}
                }
                next.version += 1;
                write_json_atomic(&path, &next)?;
                Ok(next.version)
            })
            .await?;
        record.version = saved;
        Ok(())
    }

    async fn load(&self, id: &DeploymentId) -> Result<DeploymentRecord> {
        let id = id.clone();
        self.locked(move |root| {
            read_json(&record_path(root, &id)?, "deployment record")?
                .ok_or_else(|| Error::not_found(ResourceKind::Deployment, id.to_string()))
        })
        .await
    }

    async fn list(&self, service: Option<&ServiceName>) -> Result<Vec<DeploymentRecord>> {
        let service = service.cloned();
        self.locked(move |root| {
            let dir = root.join("deployments");
            let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
                .map_err(|e| io_error("cannot list", &dir, e))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "json")
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            paths.sort();
            let mut records = Vec::new();
            for path in paths {
                if let Some(r) = read_json::<DeploymentRecord>(&path, "deployment record")?
                    && service.as_ref().is_none_or(|s| r.service() == s)
                {
                    records.push(r);
                }
            }
            Ok(records)
        })
        .await
    }

    async fn acquire_lease(
        &self,
        service: &ServiceName,
        deployment: &DeploymentId,
        holder: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<LeaseGrant> {
        let (service, deployment, holder) =
            (service.clone(), deployment.clone(), holder.to_owned());
        self.locked(move |root| {
            let path = lease_path(root, &service);
            let existing: Option<Lease> = read_json(&path, "lease")?;
            let grant = grant_lease(existing.as_ref(), &service, &deployment, &holder, ttl, now)?;
            write_json_atomic(&path, &grant.lease)?;
            Ok(grant)
        })
        .await
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration, now: SystemTime) -> Result<Lease> {
        let lease = lease.clone();
        self.locked(move |root| {
            let path = lease_path(root, &lease.service);
            let existing: Option<Lease> = read_json(&path, "lease")?;
            let renewed = renewed_lease(existing.as_ref(), &lease, ttl, now)?;
            write_json_atomic(&path, &renewed)?;
            Ok(renewed)
        })
        .await
    }

    async fn add_command(&self, command: &CommandRecord) -> Result<()> {
        let command = command.clone();
        self.locked(move |root| {
            let path = command_path(root, &command.deployment, &command.id)?;
            if path.exists() {
                return Err(Error::AlreadyExists {
                    kind: ResourceKind::Command,
                    id: command.id,
                });
            }
            fs::create_dir_all(path.parent().expect("command paths have a parent"))
                .map_err(|e| io_error("cannot create directory for", &path, e))?;
            write_json_atomic(&path, &command)
        })
        .await
    }

    async fn commands(&self, deployment: &DeploymentId) -> Result<Vec<CommandRecord>> {
        let deployment = deployment.clone();
        self.locked(move |root| {
            let dir = command_path(root, &deployment, "x")?
                .parent()
                .expect("command paths have a parent")
                .to_path_buf();
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io_error("cannot read", &dir, e)),
            };
            let mut names: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            names.sort();
            let mut commands = Vec::with_capacity(names.len());
            for path in names {
                commands.extend(read_json::<CommandRecord>(&path, "command")?);
            }
            Ok(commands)
        })
        .await
    }

    async fn lease(&self, service: &ServiceName) -> Result<Option<Lease>> {
        let service = service.clone();
        self.locked(move |root| read_json(&lease_path(root, &service), "lease"))
            .await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        let lease = lease.clone();
        self.locked(move |root| {
            let path = lease_path(root, &lease.service);
            let existing: Option<Lease> = read_json(&path, "lease")?;
            if existing.is_some_and(|l| l.holder == lease.holder) {
                fs::remove_file(&path).map_err(|e| io_error("cannot remove", &path, e))?;
            }
            Ok(())
        })
        .await
    }
}
