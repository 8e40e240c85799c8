//! EC2 helpers shared by the image store and the fleet: filters, tags read and written,
//! instance states, and the paginated `DescribeInstances`.

use aws_sdk_ec2::types::{Filter, InstanceStateName, Tag};
use immutable_core::{Error, ImageId, InstanceId, InstanceState, Labels, ResourceKind, Result};

use crate::error::{Call, MapAws};
use crate::paginate::all_pages;

/// A filter on `name` matching any of `values`.
pub(crate) fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| (*v).to_owned()).collect()))
        .build()
}

/// A filter on the tag `key` equal to `value`.
pub(crate) fn tag_filter(key: &str, value: &str) -> Filter {
    filter(&format!("tag:{key}"), &[value])
}

/// The filter on live (pending or running) instances.
pub(crate) fn live_instances() -> Filter {
    filter("instance-state-name", &["pending", "running"])
}

/// An AMI id as EC2 writes it, `ami-` and lowercase hex digits; refused as
/// [`Error::InvalidInput`] naming `field` otherwise, before any call is made.
pub(crate) fn ami_id(field: &str, value: &str) -> Result<ImageId> {
    let hex = value.strip_prefix("ami-").unwrap_or_default();
    let is_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if hex.is_empty() || !hex.bytes().all(is_hex) {
        return Err(Error::invalid(
            field,
            format!(
                "`{value}` is not an AMI id: expected `ami-` followed by lowercase hex digits, \
                 such as `ami-0abcdef1234567890`"
            ),
        ));
    }
    Ok(ImageId::new(value))
}

/// EC2 tags as labels.
pub(crate) fn labels_of(tags: &[Tag]) -> Labels {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// Key-value pairs as EC2 tags.
pub(crate) fn to_tags<K, V>(tags: impl IntoIterator<Item = (K, V)>) -> Vec<Tag>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    tags.into_iter()
        .map(|(k, v)| Tag::builder().key(k.as_ref()).value(v.as_ref()).build())
        .collect()
}

/// An EC2 instance state as the core sees it.
pub(crate) fn instance_state(s: Option<&InstanceStateName>) -> InstanceState {
    match s {
        Some(InstanceStateName::Pending) => InstanceState::Pending,
        Some(InstanceStateName::Running) => InstanceState::Running,
        Some(InstanceStateName::Stopped) => InstanceState::Stopped,
        Some(InstanceStateName::Stopping | InstanceStateName::ShuttingDown) => {
            InstanceState::Stopping
        }
        _ => InstanceState::Terminated,
    }
}

/// One described instance with its tags.
#[derive(Debug, Clone)]
pub(crate) struct Described {
    pub(crate) id: InstanceId,
    pub(crate) state: InstanceState,
    pub(crate) image: ImageId,
    pub(crate) subnet: Option<String>,
    pub(crate) tags: Labels,
}

impl Described {
    /// An instance as `DescribeInstances` reports it; `None` without an id or an image.
    fn read(i: &aws_sdk_ec2::types::Instance) -> Option<Self> {
        Some(Described {
            id: InstanceId::new(i.instance_id()?),
            state: instance_state(i.state().and_then(|s| s.name())),
            image: ImageId::new(i.image_id()?),
            subnet: i.subnet_id().map(str::to_owned),
            tags: labels_of(i.tags()),
        })
    }
}

/// Every instance matching `filters`, all pages of `page_size`; `what` names them in errors.
pub(crate) async fn describe_instances(
    ec2: &aws_sdk_ec2::Client,
    filters: &[Filter],
    page_size: i32,
    what: &str,
) -> Result<Vec<Described>> {
    all_pages(|token| async move {
        let page = ec2
            .describe_instances()
            .set_filters(Some(filters.to_vec()))
            .max_results(page_size)
            .set_next_token(token)
            .send()
            .await
            .aws(Call::new("DescribeInstances", ResourceKind::Fleet, what))?;
        let found = page
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(Described::read)
            .collect();
        Ok((found, page.next_token().map(str::to_owned)))
    })
    .await
}

/// Instances by id, 1,000 ids per call (EC2 pages no request that names ids); `what` names
/// them in errors. An id EC2 does not know fails the call with [`immutable_core::Error::NotFound`].
pub(crate) async fn describe_instances_by_id(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
    what: &str,
) -> Result<Vec<Described>> {
    let mut found = Vec::with_capacity(ids.len());
    for batch in ids.chunks(1000) {
        let out = ec2
            .describe_instances()
            .set_instance_ids(Some(batch.to_vec()))
            .send()
            .await
            .aws(Call::new("DescribeInstances", ResourceKind::Fleet, what))?;
        found.extend(
            out.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter_map(Described::read),
        );
    }
    Ok(found)
}
