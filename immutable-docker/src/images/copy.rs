//! An image between hosts: read it on one, and copy it to another through the Engine API
//! (`GET /images/{id}/get` streamed into `POST /images/load`), since no registry is needed.

use bollard::models::ImageInspect;
use bollard::query_parameters::ImportImageOptions;
use futures::StreamExt;
use immutable_core::{Error, ImageId, ResourceKind, Result};

use crate::error::status;
use crate::host::DockerHost;

/// The image as `host` has it; `None` when it has not.
pub(crate) async fn inspect(host: &DockerHost, id: &ImageId) -> Result<Option<ImageInspect>> {
    match host.client().inspect_image(id.as_str()).await {
        Ok(found) if found.id.as_deref() == Some(id.as_str()) => Ok(Some(found)),
        // A reference that is not the id (a short id, a tag) found something else.
        Ok(_) => Ok(None),
        Err(e) if status(&e) == Some(404) => Ok(None),
        Err(e) => Err(host.error("inspect image", ResourceKind::Image, id.as_str(), e)),
    }
}

/// Whether `host` has the image.
pub(crate) async fn has_image(host: &DockerHost, id: &ImageId) -> Result<bool> {
    Ok(inspect(host, id).await?.is_some())
}

/// Copies the image from `from` to `to`, and checks that `to` has it afterwards.
pub(crate) async fn copy_image(from: &DockerHost, to: &DockerHost, id: &ImageId) -> Result<()> {
    let what = format!(
        "copy image {id} from host {} to host {}",
        from.name(),
        to.name()
    );
    let saved = from.client().export_image(id.as_str());
    let options = ImportImageOptions {
        quiet: true,
        ..Default::default()
    };
    let mut loading = to.client().import_image_stream(options, saved, None);
    while let Some(progress) = loading.next().await {
        let progress =
            progress.map_err(|e| to.error(&what, ResourceKind::Image, id.as_str(), e))?;
        if let Some(detail) = progress.error_detail.and_then(|d| d.message) {
            return Err(Error::provider(format!("{what}: {detail}")));
        }
    }
    if has_image(to, id).await? {
        Ok(())
    } else {
        Err(Error::provider(format!(
            "{what}: host {} loaded the archive but has no image {id} afterwards",
            to.name()
        )))
    }
}
