//! Images: the immutable artifacts fleets are launched from, and the [`ImageStore`] trait.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::service::string_id;
use crate::{Cost, Error, Operation, Result, ServiceName, tags};

/// Key-value labels (tags on AWS).
pub type Labels = BTreeMap<String, String>;

/// Checks labels a caller asks [`ImageStore::label`] to write: every implementation calls it
/// before any provider call, so that no label rewrites the tags this SDK owns.
///
/// Keys beginning with [`tags::PREFIX`] (`immutable:`) are the SDK's: a label of
/// [`tags::SERVICE`] would move the image to another service or strip its ownership
/// (invariant I6). The one exception is [`tags::PROMOTED`], which the engine writes through
/// `label` once a deployment of the image succeeded.
///
/// # Errors
/// [`Error::InvalidInput`] naming the field `labels` and the first reserved key.
pub fn check_labels(labels: &Labels) -> Result<()> {
    match labels
        .keys()
        .find(|k| k.starts_with(tags::PREFIX) && k.as_str() != tags::PROMOTED)
    {
        Some(key) => Err(Error::invalid(
            "labels",
            format!(
                "key `{key}` is reserved: keys beginning with `{}` are the SDK's own tags \
                 (only `{}` may be labelled); choose a key without that prefix",
                tags::PREFIX,
                tags::PROMOTED
            ),
        )),
        None => Ok(()),
    }
}

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
            ImageRef::Newest(labels) => {
                let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "newest with labels {}", shown.join(","))
            }
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
/// - [`label`](ImageStore::label) refuses, with
///   [`Error::InvalidInput`](crate::Error::InvalidInput), labels that [`check_labels`] refuses
///   (the SDK's own `immutable:` tags), before any provider call.
#[async_trait]
pub trait ImageStore: Debug + Send + Sync + 'static {
    /// Resolves a reference to one image. Ids may name any image the account can launch.
    /// Names and [`ImageRef::Newest`] are scoped to the service: a name resolves to the
    /// service's own image of that name, or, when the service has none, to an image without
    /// any service's ownership tag (a shared base image); never to another service's image.
    async fn resolve(&self, service: &ServiceName, reference: &ImageRef) -> Result<Image>;

    /// The service's images (those carrying its ownership tag), in no particular order.
    async fn list(&self, service: &ServiceName) -> Result<Vec<Image>>;

    /// Adds or overwrites labels on one of the service's images. Labels never rewrite the
    /// SDK's own tags: implementations call [`check_labels`] first.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_reads_as_words() {
        assert_eq!(ImageRef::name("v1").to_string(), "name v1");
        let newest = ImageRef::newest([("channel", "beta"), ("team", "web")]);
        assert_eq!(
            newest.to_string(),
            "newest with labels channel=beta,team=web"
        );
    }

    fn labels(key: &str) -> Labels {
        Labels::from([
            ("channel".to_owned(), "stable".to_owned()),
            (key.to_owned(), "billing".to_owned()),
        ])
    }

    #[test]
    fn labels_may_not_rewrite_the_sdks_tags() {
        for key in [
            tags::SERVICE,
            tags::MANAGED_BY,
            tags::FLEET,
            "immutable:anything",
        ] {
            match check_labels(&labels(key)) {
                Err(Error::InvalidInput { field, reason, .. }) => {
                    assert_eq!(field, "labels");
                    assert!(reason.contains(key), "{reason}");
                }
                other => panic!("{key}: expected InvalidInput, got {other:?}"),
            }
        }
    }

    #[test]
    fn promoted_and_other_keys_are_labels() {
        for key in [
            tags::PROMOTED,
            "team",
            "Immutable:service",
            "immutable-conformance",
        ] {
            check_labels(&labels(key)).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
        check_labels(&Labels::new()).unwrap();
    }
}
