//! [`ImportRequest`] and the import itself: every input checked before anything is written,
//! then the artifact copied beside its final place and renamed in.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use immutable_core::{Error, Image, ImageId, Labels, Result, ServiceName, tags};

use super::manifest::{self, Manifest};
use super::{all_manifests, check_command};
use crate::fsutil::{io_error, lock_file, write_json_atomic};

/// The variables the fleet sets for every instance; an image's own variables may not use
/// these names.
pub(crate) const RESERVED_VARS: [&str; 6] = [
    "PORT",
    "INSTANCE_ID",
    "IMAGE_ID",
    "IMAGE_DIR",
    "SERVICE",
    "FLEET_ID",
];

/// What to import: an artifact directory of a service, with a name and the command that
/// starts one instance.
///
/// A command's program is looked up inside the image when it is a relative path with a `/`
/// (`./bin/server`), on `PATH` when it is a bare name, and as given when absolute. It is run
/// as given (an argument vector, never through a shell), in the instance's own directory, with
/// the image's variables ([`env`](Self::env)) and the fleet's: `PORT` (where to listen, on
/// 127.0.0.1), `INSTANCE_ID`, `IMAGE_ID`, `IMAGE_DIR` (the image's files), `SERVICE` and
/// `FLEET_ID`; and the port again under [`port_var`](Self::port_var) for an app that reads
/// another name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportRequest {
    /// The owning service.
    pub service: String,
    /// The image's name, unique within the service.
    pub name: String,
    /// The artifact directory to copy.
    pub dir: PathBuf,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Labels to start with.
    pub labels: Labels,
    /// Variables every instance starts with (part of the image's content).
    pub env: BTreeMap<String, String>,
    /// The path the app answers health checks on, recorded in the manifest for people and
    /// tools (HAProxy's checks use the path its configuration names).
    pub health_path: Option<String>,
    /// A second variable holding the port, for an app that does not read `PORT`.
    pub port_var: Option<String>,
}

impl ImportRequest {
    /// An import of `dir` as image `name` of `service`, started by `command`.
    pub fn new<S: Into<String>>(
        service: impl Into<String>,
        name: impl Into<String>,
        dir: impl Into<PathBuf>,
        command: impl IntoIterator<Item = S>,
    ) -> Self {
        ImportRequest {
            service: service.into(),
            name: name.into(),
            dir: dir.into(),
            command: command.into_iter().map(Into::into).collect(),
            labels: Labels::new(),
            env: BTreeMap::new(),
            health_path: None,
            port_var: None,
        }
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds a variable every instance starts with.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Records the app's health check path (`/health`, say).
    pub fn health_path(mut self, path: impl Into<String>) -> Self {
        self.health_path = Some(path.into());
        self
    }

    /// Also passes the port in the variable `name` (`HTTP_PORT`, say).
    pub fn port_var(mut self, name: impl Into<String>) -> Self {
        self.port_var = Some(name.into());
        self
    }

    /// Checks what [`LocalImageStore::import`](crate::LocalImageStore::import) checks before
    /// it writes anything: every field, the directory's entries and the command, so a caller
    /// can refuse bad input before it opens (and creates) a store.
    ///
    /// # Errors
    /// As [`import`](crate::LocalImageStore::import)'s [`Error::InvalidInput`].
    pub fn validate(&self) -> Result<()> {
        self.check().map(drop)
    }

    /// Checks every field and the directory's entries; the service name when all is well.
    pub(super) fn check(&self) -> Result<ServiceName> {
        let service = ServiceName::new(self.service.clone())?;
        if self.name.is_empty() || self.name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "name",
                "must be a non-empty name without control characters",
            ));
        }
        if self.name.starts_with("img-") || self.name.starts_with("ami-") {
            return Err(Error::invalid(
                "name",
                format!(
                    "`{}` looks like an image id (img-..., ami-...), and would be read as one: \
                     pick a name without that prefix",
                    self.name
                ),
            ));
        }
        immutable_core::check_labels(&self.labels)?;
        for (name, value) in &self.env {
            check_var("env", name)?;
            if value.contains('\0') {
                return Err(Error::invalid(
                    "env",
                    format!("the value of {name} holds a NUL byte"),
                ));
            }
        }
        if let Some(name) = &self.port_var {
            check_var("port_var", name)?;
            if self.env.contains_key(name) {
                return Err(Error::invalid(
                    "port_var",
                    format!("{name} is also given a value with env: name another variable"),
                ));
            }
        }
        if let Some(path) = &self.health_path
            && !crate::fsutil::is_health_path(path)
        {
            return Err(Error::invalid(
                "health_path",
                format!("`{path}` must start with `/` and hold no spaces or control characters"),
            ));
        }
        check_tree(&self.dir)?;
        check_command(&self.dir, &self.command)?;
        Ok(service)
    }
}

/// A variable name: a letter or `_`, then letters, digits and `_`; none the fleet sets.
fn check_var(field: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let well_formed = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed {
        return Err(Error::invalid(
            field,
            format!("`{name}` is not a variable name (a letter or `_`, then letters, digits, `_`)"),
        ));
    }
    if RESERVED_VARS.contains(&name) {
        return Err(Error::invalid(
            field,
            format!(
                "{name} is set by the fleet for every instance; pick another name (the fleet \
                 sets {})",
                RESERVED_VARS.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Refuses a directory that is missing, or that holds anything an image cannot: a FIFO, a
/// socket, a device, or a symlink that leads outside the directory or nowhere.
fn check_tree(dir: &Path) -> Result<()> {
    let meta = fs::metadata(dir).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "does not exist".to_owned()
        } else {
            format!("cannot be read: {e}")
        };
        Error::invalid("dir", format!("image directory {} {why}", dir.display()))
    })?;
    if !meta.is_dir() {
        return Err(Error::invalid(
            "dir",
            format!("{} is not a directory", dir.display()),
        ));
    }
    let root = fs::canonicalize(dir).map_err(|e| io_error("cannot resolve", dir, e))?;
    walk_checked(dir, Path::new(""), &root)
}

fn walk_checked(root: &Path, rel: &Path, canonical_root: &Path) -> Result<()> {
    let dir = root.join(rel);
    let read = fs::read_dir(&dir).map_err(|e| io_error("cannot list", &dir, e))?;
    for entry in read {
        let entry = entry.map_err(|e| io_error("cannot list", &dir, e))?;
        let path = entry.path();
        let rel = rel.join(entry.file_name());
        let ty = entry
            .file_type()
            .map_err(|e| io_error("cannot stat", &path, e))?;
        if ty.is_dir() {
            walk_checked(root, &rel, canonical_root)?;
        } else if ty.is_symlink() {
            let target = fs::read_link(&path).map_err(|e| io_error("cannot read", &path, e))?;
            let parent = rel.parent().unwrap_or(Path::new(""));
            // By its words (no absolute target, no `..` above the root) and by where it leads
            // once every link on the way is followed (`a/up -> ..` then `x -> a/up/..`).
            let leads_inside = fs::canonicalize(&path).is_ok_and(|t| t.starts_with(canonical_root));
            if !stays_inside(parent, &target) || !leads_inside {
                return Err(Error::invalid(
                    "dir",
                    format!(
                        "{} is a symlink to {}, which leads outside the image directory or \
                         nowhere: an image holds its own files (copy the target in, or make \
                         the link relative and inside)",
                        path.display(),
                        target.display()
                    ),
                ));
            }
        } else if !ty.is_file() {
            return Err(Error::invalid(
                "dir",
                format!(
                    "{} is neither a file, a directory nor a symlink (a FIFO, a socket or a \
                     device): an image holds only files",
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Whether a symlink in `parent` (relative to the image root) pointing at `target` resolves
/// inside the image, by its words alone (`..` never climbs above the root).
fn stays_inside(parent: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth = parent.components().count();
    for c in target.components() {
        match c {
            Component::ParentDir => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
            }
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

pub(super) fn import_blocking(
    root: &Path,
    service: ServiceName,
    request: ImportRequest,
) -> Result<Image> {
    let digest = manifest::digest(
        &request.dir,
        &service,
        &request.command,
        &request.env,
        request.port_var.as_deref(),
        request.health_path.as_deref(),
    )?;
    let id = ImageId::new(format!("img-{}", &digest[..32]));
    let images = root.join("images");
    let _lock = lock_file(&images.join(".lock"))?;
    let existing = all_manifests(&images)?;
    if let Some(m) = existing.iter().find(|m| m.id == id) {
        if m.name == request.name {
            return Ok(m.to_image());
        }
        return Err(Error::conflict(format!(
            "this content of service `{service}` was imported already as image {id} named \
             `{}`; resolve it by that name or id",
            m.name
        )));
    }
    if let Some(m) = existing
        .iter()
        .find(|m| m.service == service && m.name == request.name)
    {
        return Err(Error::conflict(format!(
            "name `{}` already names image {} of service `{service}`; image names are unique \
             per service: pick a new name",
            request.name, m.id
        )));
    }
    let mut labels = request.labels;
    labels.insert(tags::SERVICE.to_owned(), service.to_string());
    labels.insert(
        tags::MANAGED_BY.to_owned(),
        tags::MANAGED_BY_VALUE.to_owned(),
    );
    let m = Manifest {
        id: id.clone(),
        service,
        name: request.name,
        labels,
        created: SystemTime::now(),
        command: request.command,
        digest,
        env: request.env,
        health_path: request.health_path,
        port_var: request.port_var,
    };
    // Built beside its final place, then renamed in: a crash leaves only a temporary directory,
    // created exclusively under a random name (mode 0700) so nothing planted there is used.
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".tmp-{id}-"))
        .tempdir_in(&images)
        .map_err(|e| io_error("cannot create a temporary directory in", &images, e))?
        .keep();
    let built = manifest::copy_read_only(&request.dir, &tmp.join("files"))
        .and_then(|()| write_json_atomic(&tmp.join("manifest.json"), &m))
        .and_then(|()| {
            let dest = images.join(id.as_str());
            fs::rename(&tmp, &dest).map_err(|e| io_error("cannot rename into place", &dest, e))
        });
    if let Err(e) = built {
        let _ = manifest::remove_tree(&tmp);
        return Err(e);
    }
    Ok(m.to_image())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_are_judged_by_where_they_lead() {
        assert!(stays_inside(Path::new(""), Path::new("bin/app")));
        assert!(stays_inside(Path::new("a/b"), Path::new("../c")));
        assert!(stays_inside(Path::new("a"), Path::new("./../x")));
        assert!(!stays_inside(Path::new(""), Path::new("../x")));
        assert!(!stays_inside(Path::new("a"), Path::new("../../x")));
        assert!(!stays_inside(Path::new("a"), Path::new("/etc/passwd")));
        assert!(!stays_inside(Path::new("a"), Path::new("b/../../../x")));
    }

    #[test]
    fn variables_are_names_the_fleet_does_not_set() {
        assert!(check_var("env", "APP_MODE").is_ok());
        assert!(check_var("env", "_x1").is_ok());
        for bad in ["", "1A", "A-B", "A B", "PORT", "INSTANCE_ID"] {
            let e = check_var("env", bad).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidInput { field, .. } if field == "env"),
                "{e}"
            );
        }
    }
}
