//! [`LocalImageStore`]: images as immutable artifact directories in a store root.

mod manifest;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use immutable_core::{
    Cost, Error, Image, ImageId, ImageRef, ImageStore, Labels, Operation, ResourceKind, Result,
    ServiceName, tags,
};

pub(crate) use manifest::{Manifest, check_command};

use crate::fsutil::{
    blocking, create_private_dir_all, io_error, is_safe_component, lock_file, read_json,
    write_json_atomic,
};

/// What to import: an artifact directory of a service, with a name and the command that
/// starts one instance.
///
/// A command's program is looked up inside the image when it is a relative path with a `/`
/// (`./bin/server`), on `PATH` when it is a bare name, and as given when absolute.
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
        }
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
}

/// The catalog of images on this machine: `<root>/images/<id>/` holds a read-only copy of the
/// artifact (`files/`) and its `manifest.json` (service, name, labels, created time, command).
///
/// Ids are content digests (`img-` and 32 hex digits of a SHA-256 over the service, the
/// command and the files), so importing the same content twice gives the same image. Names are
/// unique per service and resolve only within it; ids resolve for any service. Retiring an
/// image that a live fleet in the same root uses is refused with [`Error::Conflict`]. Open a
/// [`ProcessFleet`](crate::ProcessFleet) on the same root to launch from these images.
///
/// Labelling refuses keys in the SDK's namespace (starting with `immutable:`) other than
/// `immutable:promoted`, with [`Error::InvalidInput`] on `labels`. Directories the store
/// creates are private to the user (mode 0700).
#[derive(Debug, Clone)]
pub struct LocalImageStore {
    root: Arc<PathBuf>,
}

impl LocalImageStore {
    /// Opens (creating if needed) the image store under `root`.
    ///
    /// # Errors
    /// [`Error::Provider`] naming the directory if it cannot be created.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        create_private_dir_all(&root.join("images"))?;
        Ok(LocalImageStore {
            root: Arc::new(root),
        })
    }

    /// The store root shared with [`ProcessFleet`](crate::ProcessFleet).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Imports an artifact directory, or returns the image already imported with the same
    /// content and name.
    ///
    /// # Errors
    /// - [`Error::InvalidInput`] naming `service`, `name`, `dir` or `command` when the service
    ///   name is bad, the name is empty, the directory is missing, or the command's program
    ///   does not exist or is not executable. Nothing is written then.
    /// - [`Error::Conflict`] when the content was imported under another name, or the name
    ///   already names other content of the service.
    pub async fn import(&self, request: ImportRequest) -> Result<Image> {
        let service = ServiceName::new(request.service.clone())?;
        if request.name.is_empty() || request.name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "name",
                "must be a non-empty name without control characters",
            ));
        }
        if !request.dir.is_dir() {
            return Err(Error::invalid(
                "dir",
                format!(
                    "image directory {} does not exist or is not a directory",
                    request.dir.display()
                ),
            ));
        }
        check_command(&request.dir, &request.command)?;
        let root = Arc::clone(&self.root);
        blocking(move || import_blocking(&root, service, request)).await
    }

    fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Every manifest in the store.
    async fn manifests(&self) -> Result<Vec<Manifest>> {
        let dir = self.images_dir();
        blocking(move || all_manifests(&dir)).await
    }

    async fn manifest(&self, id: &ImageId) -> Result<Manifest> {
        if !is_image_id(id.as_str()) {
            return Err(Error::not_found(ResourceKind::Image, id.as_str()));
        }
        let path = self.images_dir().join(id.as_str()).join("manifest.json");
        blocking(move || read_json::<Manifest>(&path, "image manifest"))
            .await?
            .ok_or_else(|| Error::not_found(ResourceKind::Image, id.as_str()))
    }

    /// The manifest of one of `service`'s images: `NotFound` or `NotOwned` otherwise.
    async fn owned(&self, service: &ServiceName, id: &ImageId) -> Result<Manifest> {
        let m = self.manifest(id).await?;
        if &m.service != service {
            return Err(Error::NotOwned {
                kind: ResourceKind::Image,
                id: id.to_string(),
                service: service.to_string(),
            });
        }
        Ok(m)
    }

    /// The start command and image directory of an image, for launching.
    pub(crate) async fn launch_info(&self, id: &ImageId) -> Result<(Manifest, PathBuf)> {
        let m = self.manifest(id).await?;
        let files = self.images_dir().join(id.as_str()).join("files");
        Ok((m, files))
    }
}

fn is_image_id(s: &str) -> bool {
    s.strip_prefix("img-")
        .is_some_and(|h| h.len() == 32 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

fn all_manifests(dir: &Path) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    let read = fs::read_dir(dir).map_err(|e| io_error("cannot list", dir, e))?;
    for entry in read.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_image_id(&name) {
            continue;
        }
        if let Some(m) = read_json::<Manifest>(&entry.path().join("manifest.json"), "manifest")? {
            out.push(m);
        }
    }
    Ok(out)
}

fn import_blocking(root: &Path, service: ServiceName, request: ImportRequest) -> Result<Image> {
    let digest = manifest::digest(&request.dir, &service, &request.command)?;
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

#[async_trait]
impl ImageStore for LocalImageStore {
    /// Directories and files: no provider call.
    fn cost(&self, _: &ServiceName, _: Operation) -> Option<Cost> {
        Some(Cost::calls(0))
    }

    async fn resolve(&self, service: &ServiceName, reference: &ImageRef) -> Result<Image> {
        let not_found = || Error::not_found(ResourceKind::Image, reference.to_string());
        match reference {
            ImageRef::Id(id) => Ok(self.manifest(id).await?.to_image()),
            ImageRef::Name(name) => self
                .manifests()
                .await?
                .into_iter()
                .find(|m| &m.service == service && &m.name == name)
                .map(|m| m.to_image())
                .ok_or_else(not_found),
            ImageRef::Newest(labels) => self
                .manifests()
                .await?
                .into_iter()
                .filter(|m| &m.service == service)
                .filter(|m| labels.iter().all(|(k, v)| m.labels.get(k) == Some(v)))
                .max_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)))
                .map(|m| m.to_image())
                .ok_or_else(not_found),
            _ => Err(not_found()),
        }
    }

    async fn list(&self, service: &ServiceName) -> Result<Vec<Image>> {
        Ok(self
            .manifests()
            .await?
            .into_iter()
            .filter(|m| &m.service == service)
            .map(|m| m.to_image())
            .collect())
    }

    async fn label(&self, service: &ServiceName, image: &ImageId, labels: &Labels) -> Result<()> {
        immutable_core::check_labels(labels)?;
        self.owned(service, image).await?;
        let (dir, labels) = (self.images_dir(), labels.clone());
        let id = image.clone();
        blocking(move || {
            let _lock = lock_file(&dir.join(".lock"))?;
            let path = dir.join(id.as_str()).join("manifest.json");
            let mut m: Manifest = read_json(&path, "image manifest")?
                .ok_or_else(|| Error::not_found(ResourceKind::Image, id.as_str()))?;
            m.labels.extend(labels);
            manifest::set_writable(&path, true)?;
            write_json_atomic(&path, &m)
        })
        .await
    }

    async fn retire(&self, service: &ServiceName, image: &ImageId) -> Result<()> {
        self.owned(service, image).await?;
        let root = Arc::clone(&self.root);
        let id = image.clone();
        blocking(move || {
            let images = root.join("images");
            let _lock = lock_file(&images.join(".lock"))?;
            let users = crate::fleet::processes_using(&root, &id)?;
            if users > 0 {
                return Err(Error::ImageInUse {
                    image: id.to_string(),
                    users,
                });
            }
            let dir = images.join(id.as_str());
            if !is_safe_component(id.as_str()) || !dir.exists() {
                return Err(Error::not_found(ResourceKind::Image, id.as_str()));
            }
            let gone = images.join(format!(".retired-{id}-{}", std::process::id()));
            fs::rename(&dir, &gone).map_err(|e| io_error("cannot retire", &dir, e))?;
            manifest::remove_tree(&gone)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn labels_in_the_sdk_namespace_are_refused_but_the_promotion_mark() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalImageStore::open(dir.path().join("root")).unwrap();
        let src = dir.path().join("build");
        fs::create_dir_all(&src).unwrap();
        let image = store
            .import(ImportRequest::new("web", "v1", &src, ["/bin/true"]))
            .await
            .unwrap();
        let web = ServiceName::new("web").unwrap();
        for key in [tags::SERVICE, tags::MANAGED_BY, "immutable:anything"] {
            let labels = Labels::from([(key.to_owned(), "x".to_owned())]);
            match store.label(&web, &image.id, &labels).await {
                Err(Error::InvalidInput { field, reason, .. }) => {
                    assert_eq!(field, "labels");
                    assert!(reason.contains(key), "{reason}");
                }
                other => panic!("{key}: expected InvalidInput on labels, got {other:?}"),
            }
        }
        let allowed = Labels::from([
            (tags::PROMOTED.to_owned(), "dep-1".to_owned()),
            ("team".to_owned(), "payments".to_owned()),
        ]);
        store.label(&web, &image.id, &allowed).await.unwrap();
        let labels = store
            .resolve(&web, &ImageRef::Id(image.id))
            .await
            .unwrap()
            .labels;
        assert_eq!(
            labels.get(tags::PROMOTED).map(String::as_str),
            Some("dep-1")
        );
        assert_eq!(labels.get(tags::SERVICE).map(String::as_str), Some("web"));
    }
}
