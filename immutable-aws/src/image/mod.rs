//! [`ImageStore`] on EC2 AMIs, and AMIs built elsewhere brought into a service's catalog
//! (`import.rs`).

mod import;

use std::time::SystemTime;

use async_trait::async_trait;
use aws_sdk_ec2::types::Filter;
use aws_smithy_types::date_time::Format;
use immutable_core::{
    Cost, Error, Image, ImageId, ImageRef, ImageStore, Labels, Operation, ResourceKind, Result,
    ServiceName, check_labels, tags,
};

use crate::AwsClients;
use crate::ec2::{filter, labels_of, live_instances, tag_filter, to_tags};
use crate::error::{Call, MapAws, NotFoundIsNone};
use crate::memory::Memory;
use crate::paginate::all_pages;

/// The service's AMIs: those tagged `immutable:service=<service>`.
///
/// - `resolve` by id looks at any AMI the account can launch; by name, at the owners given
///   (default `self`); `Newest` at the service's AMIs carrying every label as a tag.
/// - `retire` deregisters the AMI and deletes its EBS snapshots, refusing an AMI without the
///   service's tag ([`Error::NotOwned`]) or one a pending or running instance still uses
///   ([`Error::Conflict`]).
/// - `label` refuses, before any call, a label that would rewrite the SDK's `immutable:` tags
///   ([`check_labels`]), and an AMI without the service's tag; the tag is read once per AMI
///   and kept (the AMI a deployment resolved is labelled without reading it again).
/// - [`import`](AwsImageStore::import) (not a trait operation) makes an AMI built elsewhere,
///   by Packer say, one of the service's: it writes the ownership tags on an AMI of no
///   service, and refuses another service's.
#[derive(Debug, Clone)]
pub struct AwsImageStore {
    ec2: aws_sdk_ec2::Client,
    owners: Vec<String>,
    /// AMI id -> the service its tag names, as read (ownership tags are set once).
    services: Memory<ImageId, ServiceName>,
}

fn to_image(img: &aws_sdk_ec2::types::Image) -> Option<Image> {
    let labels = labels_of(img.tags());
    let created_at = img
        .creation_date()
        .and_then(|d| aws_smithy_types::DateTime::from_str(d, Format::DateTime).ok())
        .and_then(|d| SystemTime::try_from(d).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    Some(Image {
        id: ImageId::new(img.image_id()?),
        name: img.name().unwrap_or_default().to_owned(),
        service: labels
            .get(tags::SERVICE)
            .and_then(|s| ServiceName::new(s.clone()).ok()),
        labels,
        created_at,
    })
}

impl AwsImageStore {
    /// An image store over the given clients, looking up names among the account's own AMIs.
    pub fn new(clients: &AwsClients) -> Self {
        Self::from_client(clients.ec2.clone())
    }

    /// An image store over one EC2 client.
    pub fn from_client(ec2: aws_sdk_ec2::Client) -> Self {
        AwsImageStore {
            ec2,
            owners: vec!["self".to_owned()],
            services: Memory::default(),
        }
    }

    /// The AMI owners searched by name and by labels: `self`, account ids, or aliases such as
    /// `amazon`.
    pub fn with_owners<S: Into<String>>(mut self, owners: impl IntoIterator<Item = S>) -> Self {
        self.owners = owners.into_iter().map(Into::into).collect();
        self
    }

    async fn describe(
        &self,
        ids: Vec<String>,
        filters: Vec<Filter>,
        what: &str,
    ) -> Result<Vec<Image>> {
        let (ids, filters) = (&ids, &filters);
        all_pages(|token| async move {
            let req = self
                .ec2
                .describe_images()
                .set_filters(Some(filters.clone()))
                .set_next_token(token);
            let req = if ids.is_empty() {
                req.set_owners(Some(self.owners.clone())).max_results(1000)
            } else {
                req.set_image_ids(Some(ids.clone()))
            };
            let page =
                req.send()
                    .await
                    .aws(Call::new("DescribeImages", ResourceKind::Image, what))?;
            let found: Vec<Image> = page.images().iter().filter_map(to_image).collect();
            self.remember(&found);
            Ok((found, page.next_token().map(str::to_owned)))
        })
        .await
    }

    /// Keeps the service each image's tag names.
    fn remember(&self, images: &[Image]) {
        for image in images {
            if let Some(service) = &image.service {
                self.services.keep(image.id.clone(), service.clone());
            }
        }
    }

    /// One of the service's images, with its EBS snapshots.
    async fn owned(&self, service: &ServiceName, image: &ImageId) -> Result<(Image, Vec<String>)> {
        let described = self
            .ec2
            .describe_images()
            .image_ids(image.as_str())
            .send()
            .await
            .aws(Call::new(
                "DescribeImages",
                ResourceKind::Image,
                image.as_str(),
            ))?;
        let raw = described
            .images()
            .first()
            .ok_or_else(|| Error::not_found(ResourceKind::Image, image.as_str()))?;
        let snapshots = raw
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs()?.snapshot_id().map(str::to_owned))
            .collect();
        let img =
            to_image(raw).ok_or_else(|| Error::not_found(ResourceKind::Image, image.as_str()))?;
        self.remember(std::slice::from_ref(&img));
        if img.service.as_ref() != Some(service) {
            return Err(Error::NotOwned {
                kind: ResourceKind::Image,
                id: image.to_string(),
                service: service.to_string(),
            });
        }
        Ok((img, snapshots))
    }
}

#[async_trait]
impl ImageStore for AwsImageStore {
    fn cost(&self, _: &ServiceName, operation: Operation) -> Option<Cost> {
        crate::cost::image(operation)
    }

    async fn resolve(&self, service: &ServiceName, reference: &ImageRef) -> Result<Image> {
        match reference {
            ImageRef::Id(id) => self
                .describe(vec![id.to_string()], Vec::new(), id.as_str())
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| Error::not_found(ResourceKind::Image, id.as_str())),
            ImageRef::Name(name) => {
                let named = self
                    .describe(Vec::new(), vec![filter("name", &[name])], name)
                    .await?;
                // The service's own AMIs first; an AMI of no service (a shared base)
                // otherwise; never another service's.
                let (own, rest): (Vec<_>, Vec<_>) = named
                    .into_iter()
                    .partition(|i| i.service.as_ref() == Some(service));
                let found = if own.is_empty() {
                    rest.into_iter().filter(|i| i.service.is_none()).collect()
                } else {
                    own
                };
                match found.len() {
                    0 => Err(Error::not_found(ResourceKind::Image, name.as_str())),
                    1 => Ok(found.into_iter().next().expect("one")),
                    n => Err(Error::invalid(
                        "image",
                        format!("name `{name}` matches {n} AMIs; use an id"),
                    )),
                }
            }
            ImageRef::Newest(labels) => {
                let mut filters = vec![tag_filter(tags::SERVICE, service.as_str())];
                filters.extend(labels.iter().map(|(k, v)| tag_filter(k, v)));
                let what = reference.to_string();
                self.describe(Vec::new(), filters, &what)
                    .await?
                    .into_iter()
                    .max_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)))
                    .ok_or_else(|| Error::not_found(ResourceKind::Image, what))
            }
            other => Err(Error::invalid(
                "image",
                format!("unsupported image reference {other}"),
            )),
        }
    }

    async fn list(&self, service: &ServiceName) -> Result<Vec<Image>> {
        self.describe(
            Vec::new(),
            vec![tag_filter(tags::SERVICE, service.as_str())],
            service.as_str(),
        )
        .await
    }

    async fn label(&self, service: &ServiceName, image: &ImageId, labels: &Labels) -> Result<()> {
        check_labels(labels)?;
        if self.services.get(image).as_ref() != Some(service) {
            self.owned(service, image).await?;
        }
        if labels.is_empty() {
            return Ok(());
        }
        self.ec2
            .create_tags()
            .resources(image.as_str())
            .set_tags(Some(to_tags(labels)))
            .send()
            .await
            .aws(Call::new("CreateTags", ResourceKind::Image, image.as_str()))?;
        Ok(())
    }

    async fn retire(&self, service: &ServiceName, image: &ImageId) -> Result<()> {
        // Read the snapshots now: once deregistered, the AMI no longer names them.
        let (_, snapshots) = self.owned(service, image).await?;
        let call = Call::new("DescribeInstances", ResourceKind::Image, image.as_str());
        let users = self
            .ec2
            .describe_instances()
            .filters(filter("image-id", &[image.as_str()]))
            .filters(live_instances())
            .max_results(5)
            .send()
            .await
            .aws(call)?;
        let in_use: Vec<_> = users
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| i.instance_id())
            .collect();
        if !in_use.is_empty() {
            return Err(Error::ImageInUse {
                image: image.to_string(),
                users: in_use.len(),
            });
        }
        self.ec2
            .deregister_image()
            .image_id(image.as_str())
            .send()
            .await
            .aws(Call::new(
                "DeregisterImage",
                ResourceKind::Image,
                image.as_str(),
            ))?;
        self.services.forget(image);
        for snapshot in snapshots {
            self.ec2
                .delete_snapshot()
                .snapshot_id(&snapshot)
                .send()
                .await
                .aws(Call::new("DeleteSnapshot", ResourceKind::Image, &snapshot))
                .none_if_not_found()?;
        }
        Ok(())
    }
}
