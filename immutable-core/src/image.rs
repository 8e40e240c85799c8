//! Images: the immutable artifacts fleets are launched from, and the [`ImageStore`] trait.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::service::string_id;
use crate::{Cost, Operation, Result, ServiceName};

/// Key-value labels (tags on AWS).
pub type Labels = BTreeMap<String, String>;

string_id!(
    /// A provider's image id (an AMI id on AWS).
    ImageId
);

/// How a deployment names the image it wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ImageRef {
    /// An exact image id.
    Id(ImageId),
    /// An image name; it must match exactly one image.
    Name(String),
    /// The newest of the service's images that carry all these labels: the greatest
    /// `created_at`, and among images created at the same instant the greatest id.
    Newest(Labels),
}

impl ImageRef {
    /// An exact image id.
    pub fn id(id: impl Into<ImageId>) -> Self {
        ImageRef::Id(id.into())
    }

    /// An image name.
    pub fn name(name: impl Into<String>) -> Self {
        ImageRef::Name(name.into())
    }

    /// The newest of the service's images carrying all `labels`.
    pub fn newest<K: Into<String>, V: Into<String>>(
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        ImageRef::Newest(
            labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageRef::Id(id) => write!(f, "id {id}"),
            ImageRef::Name(name) => write!(f, "name {name}"),
            ImageRef::Newest(labels) => write!(f, "newest with labels {labels:?}"),
        }
    }
}

/// An image in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The provider's id.
    pub id: ImageId,
    /// The image's name.
    pub name: String,
    /// The owning service, read from the image's ownership tag; `None` for an image the SDK
    /// may launch from but never labels or retires (a shared base image, say).
    pub service: Option<ServiceName>,
    /// Labels, ownership tags included.
    pub labels: Labels,
    /// When the image was created; retention keeps the newest.
    pub created_at: SystemTime,
}

/// The catalog of immutable images.
///
/// # Guarantees expected of an implementation
/// - [`retire`](ImageStore::retire) refuses, with [`Error::ImageInUse`](crate::Error::ImageInUse),
///   to retire an image that a live instance of the service still uses, and refuses, with
///   [`Error::NotOwned`](crate::Error::NotOwned), an image without the service's ownership tag.
/// - Unknown ids give [`Error::NotFound`](crate::Error::NotFound).
#[async_trait]
pub trait ImageStore: Debug + Send + Sync + 'static {
    /// Resolves a reference to one image. Ids may name any image the account can launch.
    /// Names and [`ImageRef::Newest`] are scoped to the service: a name resolves to the
    /// service's own image of that name, or, when the service has none, to an image without
    /// any service's ownership tag (a shared base image); never to another service's image.
    async fn resolve(&self, service: &ServiceName, reference: &ImageRef) -> Result<Image>;

    /// The service's images (those carrying its ownership tag), in no particular order.
    async fn list(&self, service: &ServiceName) -> Result<Vec<Image>>;

    /// Adds or overwrites labels on one of the service's images.
    async fn label(&self, service: &ServiceName, image: &ImageId, labels: &Labels) -> Result<()>;

    /// Retires (deregisters) one of the service's images and its storage.
    async fn retire(&self, service: &ServiceName, image: &ImageId) -> Result<()>;

    /// What one of this trait's operations costs in provider calls; `None` (the default)
    /// when the backend does not say. [`Engine::plan`](crate::Engine::plan) adds these up.
    fn cost(&self, service: &ServiceName, operation: Operation) -> Option<Cost> {
        let _ = (service, operation);
        None
    }
}
