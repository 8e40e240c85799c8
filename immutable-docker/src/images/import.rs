//! [`DockerImageStore::import`]: an image `docker build` or `docker load` made, or a
//! `docker save` archive, into the catalog and onto every host.

use std::path::PathBuf;
use std::time::SystemTime;

use bollard::models::ImageInspect;
use bollard::query_parameters::{ImportImageOptions, TagImageOptions};
use futures::StreamExt;
use immutable_core::{
    Error, Image, ImageId, Labels, ResourceKind, Result, ServiceName, check_labels,
};
use immutable_local::state_files::blocking;

use super::catalog::{Entry, pin_tag};
use super::{DockerImageStore, copy, parse_created};
use crate::host::DockerHost;

/// Where an imported image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageSource {
    /// An image a host has already, by id (`sha256:...`, as `docker build -q` prints) or by
    /// reference (`web:v2`): the first host in order that has it.
    Docker(String),
    /// A `docker save` archive holding one image, loaded into the first host.
    Archive(PathBuf),
}

/// What [`DockerImageStore::import`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportRequest {
    /// The service that will own the image.
    pub service: String,
    /// Its name, unique in the service: 1 to 128 letters, digits, `-`, `_` or `.`,
    /// starting with a letter or digit.
    pub name: String,
    /// Where it comes from.
    pub source: ImageSource,
    /// Labels, added to the image's own Docker labels (these win).
    pub labels: Labels,
}

impl ImportRequest {
    /// An import of `source` as `service`'s image `name`.
    pub fn new(service: impl Into<String>, name: impl Into<String>, source: ImageSource) -> Self {
        ImportRequest {
            service: service.into(),
            name: name.into(),
            source,
            labels: Labels::new(),
        }
    }

    /// Adds a label.
    #[must_use]
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Checks every field, before anything is read or written.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `service`, `name`, `labels` or `source`.
    pub fn validate(&self) -> Result<ServiceName> {
        let service = ServiceName::new(self.service.as_str())?;
        let n = &self.name;
        let ok = !n.is_empty()
            && n.len() <= 128
            && n.starts_with(|c: char| c.is_ascii_alphanumeric())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(Error::invalid(
                "name",
                format!(
                    "`{n}` must be 1 to 128 letters, digits, `-`, `_` or `.`, starting with a \
                     letter or digit"
                ),
            ));
        }
        check_labels(&self.labels)?;
        match &self.source {
            ImageSource::Docker(r) if r.trim().is_empty() || r.chars().any(char::is_whitespace) => {
                Err(Error::invalid(
                    "source",
                    format!("`{r}` is not an image id or reference"),
                ))
            }
            ImageSource::Archive(path) if !path.is_file() => Err(Error::invalid(
                "source",
                format!("{} is not a file (a `docker save` archive)", path.display()),
            )),
            _ => Ok(service),
        }
    }
}

impl DockerImageStore {
    /// Imports an image: see [`DockerImageStore`]. Importing the same image under the same
    /// name again returns it, with the new labels added.
    ///
    /// # Errors
    /// - [`Error::InvalidInput`] as [`ImportRequest::validate`], before anything is done.
    /// - [`Error::NotFound`] when no host has the image named.
    /// - [`Error::NotOwned`] when another service imported the image.
    /// - [`Error::AlreadyExists`] when the service has another image of that name, or this
    ///   image under another name.
    pub async fn import(&self, request: ImportRequest) -> Result<Image> {
        let service = request.validate()?;
        let (host, found) = match &request.source {
            ImageSource::Docker(reference) => self.find(reference).await?,
            ImageSource::Archive(path) => {
                let host = self.hosts().iter().next().expect("hosts are never empty");
                (host.clone(), load_archive(host, path).await?)
            }
        };
        let id = ImageId::new(found.id.clone().unwrap_or_default());
        super::digest_of(id.as_str(), "source")?;
        let mut labels = docker_labels(&found);
        labels.extend(request.labels.clone());
        let entry = Entry {
            id: id.clone(),
            service: service.clone(),
            name: request.name.clone(),
            labels,
            created_at: created_at(&found),
        };
        let entry = self.record(entry).await?;
        for target in self.hosts().iter() {
            if target.name() != host.name() && !copy::has_image(target, &id).await? {
                copy::copy_image(&host, target, &id).await?;
            }
            pin(target, &service, &id).await?;
        }
        Ok(entry.image())
    }

    /// The first host that has `reference`, and the image.
    async fn find(&self, reference: &str) -> Result<(DockerHost, ImageInspect)> {
        for host in self.hosts().iter() {
            match host.client().inspect_image(reference).await {
                Ok(found) => return Ok((host.clone(), found)),
                Err(e) if crate::error::status(&e) == Some(404) => {}
                Err(e) => {
                    return Err(host.error("inspect image", ResourceKind::Image, reference, e));
                }
            }
        }
        Err(Error::not_found(ResourceKind::Image, reference))
    }

    /// Writes the catalog entry, or returns the one there.
    async fn record(&self, entry: Entry) -> Result<Entry> {
        let catalog = self.catalog().clone();
        blocking(move || {
            let _lock = catalog.lock(&entry.service)?;
            if let Some(other) = catalog.owner(&entry.id, &entry.service)? {
                return Err(Error::NotOwned {
                    kind: ResourceKind::Image,
                    id: format!("{} (imported by service {})", entry.id, other.service),
                    service: entry.service.to_string(),
                });
            }
            let theirs = catalog.list(&entry.service)?;
            if let Some(named) = theirs
                .iter()
                .find(|e| e.name == entry.name && e.id != entry.id)
            {
                return Err(Error::AlreadyExists {
                    kind: ResourceKind::Image,
                    id: format!("{} (name {} is image {})", entry.name, named.name, named.id),
                    source: None,
                });
            }
            match catalog.get(&entry.service, &entry.id)? {
                Some(mut known) if known.name == entry.name => {
                    known.labels.extend(entry.labels);
                    catalog.put(&known)?;
                    Ok(known)
                }
                Some(known) => Err(Error::AlreadyExists {
                    kind: ResourceKind::Image,
                    id: format!("{} (imported as {})", entry.id, known.name),
                    source: None,
                }),
                None => {
                    catalog.put(&entry)?;
                    Ok(entry)
                }
            }
        })
        .await
    }
}

/// Tags the image on `host` so that pruning leaves it.
async fn pin(host: &DockerHost, service: &ServiceName, id: &ImageId) -> Result<()> {
    let (repo, tag) = pin_tag(service, id)?;
    let options = TagImageOptions {
        repo: Some(repo),
        tag: Some(tag),
    };
    host.client()
        .tag_image(id.as_str(), Some(options))
        .await
        .map_err(|e| host.error("tag image", ResourceKind::Image, id.as_str(), e))
}

/// Loads a `docker save` archive into `host`; it must hold one image.
async fn load_archive(host: &DockerHost, path: &std::path::Path) -> Result<ImageInspect> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| Error::invalid("source", format!("cannot read {}: {e}", path.display())))?;
    let options = ImportImageOptions {
        quiet: true,
        ..Default::default()
    };
    let body = bollard::body_full(bytes.into());
    let mut loading = host.client().import_image(options, body, None);
    let mut loaded = Vec::new();
    while let Some(progress) = loading.next().await {
        let what = format!("load {}", path.display());
        let progress = progress.map_err(|e| match e {
            // The daemon read the archive and refused it.
            bollard::errors::Error::DockerStreamError { error } => Error::invalid(
                "source",
                format!("{what}: Docker refused it ({error}); make it with `docker save IMAGE`"),
            ),
            e => host.error(&what, ResourceKind::Image, "archive", e),
        })?;
        if let Some(detail) = progress.error_detail.and_then(|d| d.message) {
            return Err(Error::invalid("source", format!("{what}: {detail}")));
        }
        let said = progress.stream.or(progress.status).unwrap_or_default();
        for line in said.lines() {
            if let Some(id) = line.trim().strip_prefix("Loaded image ID: ") {
                loaded.push(id.to_owned());
            } else if let Some(reference) = line.trim().strip_prefix("Loaded image: ") {
                loaded.push(reference.to_owned());
            }
        }
    }
    match loaded.as_slice() {
        [one] => host
            .client()
            .inspect_image(one)
            .await
            .map_err(|e| host.error("inspect image", ResourceKind::Image, one, e)),
        [] => Err(Error::invalid(
            "source",
            format!(
                "{} holds no image: make it with `docker save`",
                path.display()
            ),
        )),
        many => Err(Error::invalid(
            "source",
            format!(
                "{} holds {} images; import one at a time (`docker save IMAGE`)",
                path.display(),
                many.len()
            ),
        )),
    }
}

/// The image's Docker labels, without any in the SDK's namespace.
pub(crate) fn docker_labels(image: &ImageInspect) -> Labels {
    image
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !k.starts_with(immutable_core::tags::PREFIX))
        .collect()
}

/// When the image was built.
pub(crate) fn created_at(image: &ImageInspect) -> SystemTime {
    parse_created(image.created.as_deref())
}
