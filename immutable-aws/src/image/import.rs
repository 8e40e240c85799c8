//! Bringing an AMI built outside the SDK (by Packer, say) into a service's catalog.

use immutable_core::{
    Error, Image, ImageId, Labels, ResourceKind, Result, ServiceName, check_labels, tags,
};

use super::AwsImageStore;
use crate::ec2::ami_id;
use crate::error::{Call, MapAws};
use crate::ownership::image_tags;

impl AwsImageStore {
    /// Brings the AMI `ami` into `service`'s catalog: tags it with the service's ownership tags
    /// ([`tags::SERVICE`](immutable_core::tags::SERVICE) = the service,
    /// [`tags::MANAGED_BY`](immutable_core::tags::MANAGED_BY) =
    /// [`MANAGED_BY_VALUE`](immutable_core::tags::MANAGED_BY_VALUE)) and with `labels`, and
    /// returns the image as [`resolve`](immutable_core::ImageStore::resolve) by id would
    /// after it. From then on the AMI is one of the service's: it resolves by name and by
    /// [`ImageRef::Newest`](immutable_core::ImageRef::Newest), is listed, labelled by a
    /// deployment and retired by retention like an AMI the service baked.
    ///
    /// For a Packer build, [`crate::packer`] reads the manifest and gives the AMI of a region
    /// ([`PackerBuild::ami_for`](crate::packer::PackerBuild::ami_for)) and its labels
    /// ([`PackerBuild::labels`](crate::packer::PackerBuild::labels)).
    ///
    /// # Expected flow
    /// 1. The id's shape and the labels are checked ([`check_labels`]): no call yet.
    /// 2. One `DescribeImages` of the id: any AMI the account can launch (its own, shared with
    ///    it, public), in the clients' region.
    /// 3. One `CreateTags` with the ownership tags and every label: all are written, or none.
    ///
    /// # Guarantees
    /// - Nothing is written unless every check passes: an unknown AMI, another service's AMI,
    ///   a malformed id or a refused label leaves every tag as it was.
    /// - Idempotent: importing an AMI the service already owns writes its tags again and adds
    ///   (or overwrites) the labels; labels not named are kept.
    /// - The store's memory of the AMI's owner (which spares
    ///   [`label`](immutable_core::ImageStore::label) its `DescribeImages`) is the service
    ///   once the tags are written.
    ///
    /// # Assumptions
    /// The AMI is in the region of the store's clients; `ami-...` ids are regional.
    ///
    /// # Caveats
    /// - EC2 cannot write tags on a condition: two services importing one untagged AMI at the
    ///   same moment both pass the check, and the later `CreateTags` names the owner.
    /// - An AMI of another account is tagged in this account only, and names and
    ///   [`ImageRef::Newest`](immutable_core::ImageRef::Newest) find it only when its owner
    ///   is among [`with_owners`](Self::with_owners) (by default the account's own AMIs);
    ///   retiring it fails, since only its owner may deregister it.
    /// - Not an [`ImageStore`](immutable_core::ImageStore) operation, so
    ///   [`cost`](immutable_core::ImageStore::cost) does not count it: it makes one
    ///   `DescribeImages` and one `CreateTags` (none when refused before the calls).
    ///
    /// # Errors
    /// - [`Error::InvalidInput`] naming `ami` when the id is not `ami-` and hex digits, or
    ///   `labels` when a label is one of the SDK's own tags ([`check_labels`]); before any call.
    /// - [`Error::NotFound`] ([`ResourceKind::Image`]) when no AMI of that id exists (or the
    ///   account may not launch it); nothing is tagged.
    /// - [`Error::NotOwned`] when the AMI's [`tags::SERVICE`] names another service (or is
    ///   not a service name at all); nothing is tagged.
    /// - Whatever the calls fail with, mapped as every call of this crate is
    ///   ([`Error::Throttled`] and [`Error::Transient`] may be retried: the import is
    ///   idempotent).
    pub async fn import(
        &self,
        service: &ServiceName,
        ami: &ImageId,
        labels: &Labels,
    ) -> Result<Image> {
        let ami = ami_id("ami", ami.as_str())?;
        check_labels(labels)?;
        let mut image = self
            .describe(vec![ami.to_string()], Vec::new(), ami.as_str())
            .await?
            .into_iter()
            .find(|image| image.id == ami)
            .ok_or_else(|| Error::not_found(ResourceKind::Image, ami.as_str()))?;
        // The tag as written, not as parsed: a value that is no service name is still a claim.
        if image
            .labels
            .get(tags::SERVICE)
            .is_some_and(|owner| owner != service.as_str())
        {
            return Err(Error::NotOwned {
                kind: ResourceKind::Image,
                id: ami.to_string(),
                service: service.to_string(),
            });
        }
        let tags = image_tags(service, labels);
        self.ec2
            .create_tags()
            .resources(ami.as_str())
            .set_tags(Some(tags.clone()))
            .send()
            .await
            .aws(Call::new("CreateTags", ResourceKind::Image, ami.as_str()))?;
        self.services.keep(ami, service.clone());
        image.labels.extend(
            tags.iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned()))),
        );
        image.service = Some(service.clone());
        Ok(image)
    }
}
