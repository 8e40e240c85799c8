//! [`DockerImageStore`]: a service's images are Docker images, by id, on every host.

mod catalog;
mod copy;
mod import;

pub use import::{ImageSource, ImportRequest};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bollard::query_parameters::{ListContainersOptions, RemoveImageOptions};
use immutable_core::{
    Cost, Error, Image, ImageId, ImageRef, ImageStore, Labels, Operation, ResourceKind, Result,
    ServiceName, check_labels,
};
use immutable_local::state_files::blocking;

pub(crate) use catalog::digest_of;
use catalog::{Catalog, Entry, pin_tag};

use crate::host::{DockerHost, DockerHosts};

/// The catalog of a service's Docker images, over one Docker host or several.
///
/// # Expected flow
/// [`import`](Self::import) takes an image `docker build` or `docker load` made (by id or
/// reference on any host) or a `docker save` archive, copies it to every host that lacks it
/// (no registry needed: the Engine API exports it from one host and loads it into the
/// next), pins it there with a tag of its own (`immutable-sdk:<service>.<digest prefix>`, so
/// `docker image prune` leaves it) and records it under `<root>/images/<service>/` with a
/// name unique in the service and labels. A deployment names it by id, name or labels.
///
/// # Guarantees
/// - Ids are Docker's content ids (`sha256:` and 64 hex digits): the same content imported
///   twice is one image. With no registry there is no repo digest to use instead.
/// - Names and [`ImageRef::Newest`] resolve within the service; an id resolves for any
///   service, and an id no service imported but a host has resolves as an image of no
///   service (a shared base image), which is never labelled or retired.
/// - Labels live in the catalog, since Docker's own image labels are fixed at build time;
///   the image's Docker labels are copied there at import. Keys beginning with
///   `immutable:` are refused, as by [`check_labels`].
/// - [`retire`](ImageStore::retire) refuses with [`Error::ImageInUse`] while a running
///   container on any host uses the image; otherwise it removes the pin tag on every host,
///   which deletes the image where no container uses it and no other tag names it (a tag of
///   the user's own keeps it), and forgets it.
#[derive(Debug, Clone)]
pub struct DockerImageStore {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    root: PathBuf,
    hosts: DockerHosts,
    catalog: Catalog,
}

impl DockerImageStore {
    /// The catalog under `root` (created if needed), over `hosts`.
    ///
    /// # Errors
    /// [`Error::Provider`] naming the directory if it cannot be created.
    pub fn open(root: impl Into<PathBuf>, hosts: DockerHosts) -> Result<Self> {
        let root = root.into();
        let catalog = Catalog::open(&root)?;
        Ok(DockerImageStore {
            inner: Arc::new(StoreInner {
                root,
                hosts,
                catalog,
            }),
        })
    }

    /// The store root, shared with [`DockerFleet`](crate::DockerFleet).
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The Docker hosts.
    pub fn hosts(&self) -> &DockerHosts {
        &self.inner.hosts
    }

    pub(crate) fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// Makes sure `host` has the image, copying it from a host that has it.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no host has it; a failed copy as the hosts answered.
    pub(crate) async fn ensure_on(&self, host: &DockerHost, id: &ImageId) -> Result<()> {
        if copy::has_image(host, id).await? {
            return Ok(());
        }
        for source in self.hosts().iter().filter(|h| h.name() != host.name()) {
            if copy::has_image(source, id).await? {
                return copy::copy_image(source, host, id).await;
            }
        }
        Err(Error::not_found(ResourceKind::Image, id.as_str()))
    }

    async fn entry(&self, service: &ServiceName, id: &ImageId) -> Result<Option<Entry>> {
        let (catalog, service, id) = (self.catalog().clone(), service.clone(), id.clone());
        blocking(move || catalog.get(&service, &id)).await
    }

    async fn entries(&self, service: &ServiceName) -> Result<Vec<Entry>> {
        let (catalog, service) = (self.catalog().clone(), service.clone());
        blocking(move || catalog.list(&service)).await
    }

    /// The service's own entry for `id`: another service's image is [`Error::NotOwned`], an
    /// image nobody imported [`Error::NotFound`].
    async fn owned(&self, service: &ServiceName, id: &ImageId) -> Result<Entry> {
        digest_of(id.as_str(), "image")?;
        if let Some(entry) = self.entry(service, id).await? {
            return Ok(entry);
        }
        let (catalog, s, i) = (self.catalog().clone(), service.clone(), id.clone());
        match blocking(move || catalog.owner(&i, &s)).await? {
            Some(_) => Err(Error::NotOwned {
                kind: ResourceKind::Image,
                id: id.to_string(),
                service: service.to_string(),
            }),
            None => Err(Error::not_found(ResourceKind::Image, id.as_str())),
        }
    }

    /// An image no service imported, read from the first host that has it.
    async fn unowned(&self, id: &ImageId) -> Result<Image> {
        for host in self.hosts().iter() {
            if let Some(inspect) = copy::inspect(host, id).await? {
                let name = inspect
                    .repo_tags
                    .as_ref()
                    .and_then(|t| t.first().cloned())
                    .unwrap_or_else(|| id.to_string());
                return Ok(Image {
                    id: id.clone(),
                    name,
                    service: None,
                    labels: import::docker_labels(&inspect),
                    created_at: import::created_at(&inspect),
                });
            }
        }
        Err(Error::not_found(ResourceKind::Image, id.as_str()))
    }

    async fn running_users(&self, id: &ImageId) -> Result<usize> {
        let mut users = 0;
        for host in self.hosts().iter() {
            let options = ListContainersOptions {
                all: false,
                filters: Some([("ancestor".to_owned(), vec![id.to_string()])].into()),
                ..Default::default()
            };
            let running = host
                .client()
                .list_containers(Some(options))
                .await
                .map_err(|e| host.error("list containers", ResourceKind::Image, id.as_str(), e))?;
            users += running.len();
        }
        Ok(users)
    }
}

#[async_trait]
impl ImageStore for DockerImageStore {
    async fn resolve(&self, service: &ServiceName, reference: &ImageRef) -> Result<Image> {
        let found = match reference {
            ImageRef::Id(id) => {
                digest_of(id.as_str(), "image")?;
                if let Some(entry) = self.entry(service, id).await? {
                    return Ok(entry.image());
                }
                let (catalog, s, i) = (self.catalog().clone(), service.clone(), id.clone());
                if let Some(entry) = blocking(move || catalog.owner(&i, &s)).await? {
                    return Ok(entry.image());
                }
                return self.unowned(id).await;
            }
            ImageRef::Name(name) => self
                .entries(service)
                .await?
                .into_iter()
                .find(|e| &e.name == name),
            ImageRef::Newest(labels) => self
                .entries(service)
                .await?
                .into_iter()
                .filter(|e| labels.iter().all(|(k, v)| e.labels.get(k) == Some(v)))
                .max_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id))),
            _ => None,
        };
        found
            .map(|e| e.image())
            .ok_or_else(|| Error::not_found(ResourceKind::Image, reference.to_string()))
    }

    async fn list(&self, service: &ServiceName) -> Result<Vec<Image>> {
        Ok(self
            .entries(service)
            .await?
            .iter()
            .map(Entry::image)
            .collect())
    }

    async fn label(&self, service: &ServiceName, image: &ImageId, labels: &Labels) -> Result<()> {
        check_labels(labels)?;
        self.owned(service, image).await?;
        let (catalog, s, id, labels) = (
            self.catalog().clone(),
            service.clone(),
            image.clone(),
            labels.clone(),
        );
        blocking(move || {
            let _lock = catalog.lock(&s)?;
            let mut entry = catalog
                .get(&s, &id)?
                .ok_or_else(|| Error::not_found(ResourceKind::Image, id.as_str()))?;
            entry.labels.extend(labels);
            catalog.put(&entry)
        })
        .await
    }

    async fn retire(&self, service: &ServiceName, image: &ImageId) -> Result<()> {
        self.owned(service, image).await?;
        let users = self.running_users(image).await?;
        if users > 0 {
            return Err(Error::ImageInUse {
                image: image.to_string(),
                users,
            });
        }
        let (repo, tag) = pin_tag(service, image)?;
        let reference = format!("{repo}:{tag}");
        for host in self.hosts().iter() {
            let options = RemoveImageOptions {
                force: false,
                noprune: false,
                ..Default::default()
            };
            match host
                .client()
                .remove_image(&reference, Some(options), None)
                .await
            {
                Ok(_) => {}
                Err(e) if crate::error::status(&e) == Some(404) => {}
                Err(e) => return Err(host.error("untag", ResourceKind::Image, &reference, e)),
            }
        }
        let (catalog, s, id) = (self.catalog().clone(), service.clone(), image.clone());
        blocking(move || {
            let _lock = catalog.lock(&s)?;
            catalog.remove(&s, &id)
        })
        .await
    }

    fn cost(&self, _service: &ServiceName, operation: Operation) -> Option<Cost> {
        let hosts = self.hosts().len() as u32;
        Some(match operation {
            Operation::RetireImage => Cost::calls(2 * hosts),
            _ => Cost::calls(0),
        })
    }
}

/// When an image was made, from Docker's RFC 3339 time; the epoch when it cannot be read.
pub(crate) fn parse_created(created: Option<&str>) -> SystemTime {
    created
        .and_then(|c| humantime::parse_rfc3339_weak(c.trim_end_matches('Z')).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}
