//! [`LocalImageStore`]: images as immutable artifact directories in a store root.

mod import;
mod manifest;

pub use import::ImportRequest;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use immutable_core::{
    Cost, Error, Image, ImageId, ImageRef, ImageStore, Labels, Operation, ResourceKind, Result,
    ServiceName,
};

pub(crate) use manifest::{Manifest, check_command};

use crate::fsutil::{
    blocking, create_private_dir_all, io_error, is_safe_component, lock_file, read_json,
    write_json_atomic,
};

/// One local image as its manifest records it: see [`LocalImageStore::details`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageDetails {
    /// The image as the catalog gives it.
    pub image: Image,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Variables every instance starts with.
    pub env: std::collections::BTreeMap<String, String>,
    /// The health check path recorded at import.
    pub health_path: Option<String>,
    /// The second variable holding the port.
    pub port_var: Option<String>,
    /// The SHA-256 of the content, in hex (the id is its first 32 digits).
    pub digest: String,
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
    /// Everything is checked before anything is written: the request's fields, and every
    /// entry of the directory (regular files, directories, and symlinks that stay inside it;
    /// a FIFO, a socket, a device or a symlink out of the directory is refused, naming it).
    ///
    /// # Errors
    /// - [`Error::InvalidInput`] naming `service`, `name`, `dir`, `command`, `env`,
    ///   `health_path` or `port_var` when the service name is bad, the name is empty, the
    ///   directory is missing or holds what cannot be an image's file, the command's program
    ///   does not exist or is not executable, or a variable is malformed. Nothing is written
    ///   then.
    /// - [`Error::Conflict`] when the content was imported under another name, or the name
    ///   already names other content of the service.
    pub async fn import(&self, request: ImportRequest) -> Result<Image> {
        let service = request.check()?;
        let root = Arc::clone(&self.root);
        blocking(move || import::import_blocking(&root, service, request)).await
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

    /// What the store records of one of `service`'s images besides what [`Image`] holds: its
    /// start command, variables, health path and digest.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown id, [`Error::NotOwned`] for another service's image.
    pub async fn details(&self, service: &ServiceName, id: &ImageId) -> Result<ImageDetails> {
        let m = self.owned(service, id).await?;
        Ok(ImageDetails {
            image: m.to_image(),
            command: m.command,
            env: m.env,
            health_path: m.health_path,
            port_var: m.port_var,
            digest: m.digest,
        })
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
    use immutable_core::tags;

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
