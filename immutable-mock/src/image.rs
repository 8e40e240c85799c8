//! The mock's [`ImageStore`](immutable_core::ImageStore): images per service, resolved by id,
//! name or newest by labels.

use immutable_core::{
    Error, Image, ImageId, ImageRef, Labels, ResourceKind, Result, ServiceName, check_labels,
};
use tokio::time::Instant;

use crate::cloud::{MockCloud, check_owner};
use crate::fault::Op;

impl MockCloud {
    pub(crate) async fn do_resolve(
        &self,
        service: &ServiceName,
        reference: &ImageRef,
    ) -> Result<Image> {
        let s = self.enter(Op::ResolveImage, Some(service))?;
        let live = |owner| s.images_of(owner).filter(|i| !i.retired).map(|i| &i.image);
        match reference {
            ImageRef::Id(id) => s
                .images
                .get(id)
                .filter(|i| !i.retired)
                .map(|i| i.image.clone())
                .ok_or_else(|| Error::not_found(ResourceKind::Image, id.as_str())),
            ImageRef::Name(name) => {
                // The service's own images first; an image of no service (a shared base)
                // otherwise; never another service's.
                let named = |owner| live(owner).filter(|i| &i.name == name).collect::<Vec<_>>();
                let own = named(Some(service));
                let matches = if own.is_empty() { named(None) } else { own };
                match matches.as_slice() {
                    [] => Err(Error::not_found(ResourceKind::Image, name.as_str())),
                    [one] => Ok((*one).clone()),
                    many => Err(Error::invalid(
                        "image",
                        format!("name `{name}` matches {} images; use an id", many.len()),
                    )),
                }
            }
            ImageRef::Newest(labels) => live(Some(service))
                .filter(|i| labels.iter().all(|(k, v)| i.labels.get(k) == Some(v)))
                .max_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)))
                .cloned()
                .ok_or_else(|| Error::not_found(ResourceKind::Image, reference.to_string())),
            _ => Err(Error::invalid("image", "unsupported image reference")),
        }
    }

    pub(crate) async fn do_list_images(&self, service: &ServiceName) -> Result<Vec<Image>> {
        let s = self.enter(Op::ListImages, Some(service))?;
        Ok(s.images_of(Some(service))
            .filter(|i| !i.retired)
            .map(|i| i.image.clone())
            .collect())
    }

    pub(crate) async fn do_label(
        &self,
        service: &ServiceName,
        image: &ImageId,
        labels: &Labels,
    ) -> Result<()> {
        // Refused before the call, as a provider backend refuses before calling its provider.
        check_labels(labels)?;
        let mut s = self.enter_on(Op::LabelImage, Some(service), Some(image.as_str()))?;
        let i = s
            .images
            .get_mut(image)
            .filter(|i| !i.retired)
            .ok_or_else(|| Error::not_found(ResourceKind::Image, image.as_str()))?;
        check_owner(
            &i.image.labels,
            service,
            ResourceKind::Image,
            image.as_str(),
        )?;
        i.image
            .labels
            .extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(())
    }

    pub(crate) async fn do_retire(&self, service: &ServiceName, image: &ImageId) -> Result<()> {
        let mut s = self.enter_on(Op::RetireImage, Some(service), Some(image.as_str()))?;
        let i = s
            .images
            .get(image)
            .filter(|i| !i.retired)
            .ok_or_else(|| Error::not_found(ResourceKind::Image, image.as_str()))?;
        check_owner(
            &i.image.labels,
            service,
            ResourceKind::Image,
            image.as_str(),
        )?;
        let now = Instant::now();
        let users = s
            .instances_of(image)
            .filter(|id| s.instance_state(id, now).is_live())
            .count();
        if users > 0 {
            return Err(Error::ImageInUse {
                image: image.to_string(),
                users,
            });
        }
        s.images.get_mut(image).expect("checked above").retired = true;
        Ok(())
    }
}
