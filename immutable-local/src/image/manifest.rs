//! An image's manifest, its content digest, and the checks on its start command.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use immutable_core::{Error, Image, ImageId, Labels, Result, ServiceName};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil::{io_error, is_executable};

/// What the store records about one image, beside its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) id: ImageId,
    pub(crate) service: ServiceName,
    pub(crate) name: String,
    pub(crate) labels: Labels,
    pub(crate) created: SystemTime,
    /// The program and its arguments; a relative program with a `/` lives inside the image.
    pub(crate) command: Vec<String>,
    /// The full SHA-256 of the content, in hex.
    pub(crate) digest: String,
    /// Variables every instance starts with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) env: BTreeMap<String, String>,
    /// The app's health check path, as recorded at import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) health_path: Option<String>,
    /// A second variable holding the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) port_var: Option<String>,
}

impl Manifest {
    /// The variables an instance starts with: the image's, then the fleet's (`PORT` and the
    /// ids, which the image's cannot name), then the port again under `port_var`.
    pub(crate) fn instance_env(
        &self,
        port: u16,
        fleet: impl IntoIterator<Item = (&'static str, String)>,
    ) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.push(("PORT".to_owned(), port.to_string()));
        env.extend(fleet.into_iter().map(|(k, v)| (k.to_owned(), v)));
        if let Some(var) = &self.port_var {
            env.push((var.clone(), port.to_string()));
        }
        env
    }

    pub(crate) fn to_image(&self) -> Image {
        Image {
            id: self.id.clone(),
            name: self.name.clone(),
            service: Some(self.service.clone()),
            labels: self.labels.clone(),
            created_at: self.created,
        }
    }
}

/// The executable a command names: inside `files` for a relative path with a `/`, on `PATH`
/// for a bare name, as given for an absolute path.
pub(crate) fn program_path(files: &Path, program: &str) -> Option<PathBuf> {
    let path = Path::new(program);
    if path.is_absolute() {
        return Some(path.to_path_buf());
    }
    if program.contains('/') {
        return Some(files.join(path));
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

/// Checks that the command's program exists and is executable, naming it if not.
pub(crate) fn check_command(files: &Path, command: &[String]) -> Result<PathBuf> {
    let Some(program) = command.first().filter(|p| !p.is_empty()) else {
        return Err(Error::invalid(
            "command",
            "is empty: name the program that starts one instance",
        ));
    };
    let path = program_path(files, program).ok_or_else(|| {
        Error::invalid(
            "command",
            format!("program `{program}` is not found on PATH"),
        )
    })?;
    match fs::metadata(&path) {
        Err(_) => Err(Error::invalid(
            "command",
            format!("program `{program}` does not exist ({})", path.display()),
        )),
        Ok(m) if !m.is_file() => Err(Error::invalid(
            "command",
            format!("program `{program}` is not a file ({})", path.display()),
        )),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Err(Error::invalid(
            "command",
            format!(
                "program `{program}` is not executable ({}): chmod +x it",
                path.display()
            ),
        )),
        Ok(_) => Ok(path),
    }
}

/// The content digest: service, command, variables, port variable, health path, and every
/// file's relative path, executable bit and bytes (symlinks by target), in path order. (An
/// image without the optional ones hashes as it did before images had them.)
pub(crate) fn digest(
    dir: &Path,
    service: &ServiceName,
    command: &[String],
    env: &BTreeMap<String, String>,
    port_var: Option<&str>,
    health_path: Option<&str>,
) -> Result<String> {
    let mut hash = Sha256::new();
    hash.update(format!("service {service}\n"));
    for arg in command {
        hash.update(format!("arg {}:{arg}\n", arg.len()));
    }
    for (k, v) in env {
        hash.update(format!("env {}:{k}={}:{v}\n", k.len(), v.len()));
    }
    if let Some(var) = port_var {
        hash.update(format!("port_var {var}\n"));
    }
    if let Some(path) = health_path {
        hash.update(format!("health_path {}:{path}\n", path.len()));
    }
    let mut entries = Vec::new();
    walk(dir, Path::new(""), &mut entries)?;
    entries.sort();
    for rel in entries {
        let path = dir.join(&rel);
        let meta = fs::symlink_metadata(&path).map_err(|e| io_error("cannot stat", &path, e))?;
        let name = rel.to_string_lossy();
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).map_err(|e| io_error("cannot read", &path, e))?;
            hash.update(format!("link {name} -> {}\n", target.display()));
        } else if meta.is_dir() {
            hash.update(format!("dir {name}\n"));
        } else {
            let exec = meta.permissions().mode() & 0o111 != 0;
            hash.update(format!("file {name} {exec} {}\n", meta.len()));
            let mut file = fs::File::open(&path).map_err(|e| io_error("cannot open", &path, e))?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = file
                    .read(&mut buf)
                    .map_err(|e| io_error("cannot read", &path, e))?;
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
            }
        }
    }
    Ok(hex(&hash.finalize()))
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let dir = root.join(rel);
    let read = fs::read_dir(&dir).map_err(|e| io_error("cannot list", &dir, e))?;
    for entry in read {
        let entry = entry.map_err(|e| io_error("cannot list", &dir, e))?;
        let rel = rel.join(entry.file_name());
        out.push(rel.clone());
        let ty = entry
            .file_type()
            .map_err(|e| io_error("cannot stat", &entry.path(), e))?;
        if ty.is_dir() {
            walk(root, &rel, out)?;
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Copies `from` into `to` (which must not exist), then makes the copy read-only.
pub(crate) fn copy_read_only(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).map_err(|e| io_error("cannot create", to, e))?;
    let read = fs::read_dir(from).map_err(|e| io_error("cannot list", from, e))?;
    for entry in read {
        let entry = entry.map_err(|e| io_error("cannot list", from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ty = entry
            .file_type()
            .map_err(|e| io_error("cannot stat", &src, e))?;
        if ty.is_symlink() {
            let target = fs::read_link(&src).map_err(|e| io_error("cannot read", &src, e))?;
            std::os::unix::fs::symlink(target, &dst)
                .map_err(|e| io_error("cannot link", &dst, e))?;
        } else if ty.is_dir() {
            copy_read_only(&src, &dst)?;
        } else if !ty.is_file() {
            // Checked before the copy; refused again if one appeared since.
            return Err(Error::invalid(
                "dir",
                format!(
                    "{} is not a file (a FIFO, a socket or a device)",
                    src.display()
                ),
            ));
        } else {
            fs::copy(&src, &dst).map_err(|e| io_error("cannot copy to", &dst, e))?;
            set_writable(&dst, false)?;
        }
    }
    set_writable(to, false)
}

/// Adds or removes the write bits of one file or directory.
pub(crate) fn set_writable(path: &Path, writable: bool) -> Result<()> {
    let meta = fs::symlink_metadata(path).map_err(|e| io_error("cannot stat", path, e))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mut perms = meta.permissions();
    let mode = perms.mode();
    perms.set_mode(if writable {
        mode | 0o200
    } else {
        mode & !0o222
    });
    fs::set_permissions(path, perms).map_err(|e| io_error("cannot chmod", path, e))
}

/// Removes a read-only tree: restores write bits on its directories first.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    fn unlock(path: &Path) -> Result<()> {
        let meta = fs::symlink_metadata(path).map_err(|e| io_error("cannot stat", path, e))?;
        if meta.is_dir() {
            set_writable(path, true)?;
            let read = fs::read_dir(path).map_err(|e| io_error("cannot list", path, e))?;
            for entry in read.flatten() {
                unlock(&entry.path())?;
            }
        }
        Ok(())
    }
    if !path.exists() {
        return Ok(());
    }
    unlock(path)?;
    fs::remove_dir_all(path).map_err(|e| io_error("cannot remove", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc() -> ServiceName {
        ServiceName::new("web").unwrap()
    }

    #[test]
    fn digest_follows_content_not_location() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for d in [a.path(), b.path()] {
            fs::write(d.join("VERSION"), "1").unwrap();
            fs::create_dir(d.join("sub")).unwrap();
            fs::write(d.join("sub/x"), "x").unwrap();
        }
        let cmd = vec!["/bin/true".to_owned()];
        let none = BTreeMap::new();
        let da = digest(a.path(), &svc(), &cmd, &none, None, None).unwrap();
        assert_eq!(
            da,
            digest(b.path(), &svc(), &cmd, &none, None, None).unwrap()
        );
        let env = BTreeMap::from([("MODE".to_owned(), "x".to_owned())]);
        assert_ne!(
            da,
            digest(a.path(), &svc(), &cmd, &env, None, None).unwrap()
        );
        let port = digest(a.path(), &svc(), &cmd, &none, Some("HTTP_PORT"), None).unwrap();
        assert_ne!(da, port);
        let health = digest(a.path(), &svc(), &cmd, &none, None, Some("/h")).unwrap();
        assert_ne!(da, health);
        fs::write(b.path().join("VERSION"), "2").unwrap();
        assert_ne!(
            da,
            digest(b.path(), &svc(), &cmd, &none, None, None).unwrap()
        );
        let other = vec!["/bin/false".to_owned()];
        assert_ne!(
            da,
            digest(a.path(), &svc(), &other, &none, None, None).unwrap()
        );
    }

    #[test]
    fn commands_are_checked() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("run.sh"), "#!/bin/sh\n").unwrap();
        let err = check_command(d.path(), &["./run.sh".into()]).unwrap_err();
        assert!(err.to_string().contains("not executable"), "{err}");
        let err = check_command(d.path(), &["./missing".into()]).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(check_command(d.path(), &[]).is_err());
        assert!(check_command(d.path(), &["sh".into()]).is_ok());
    }
}
