//! The ownership read before a fleet is terminated (I6), from the tag index: one
//! `DescribeTags` page per 1,000 tags, where `DescribeInstances` would describe every
//! instance in full.

use std::collections::BTreeSet;

use immutable_core::{Error, FleetId, ResourceKind, Result, ServiceName, tags};

use crate::ec2::filter;
use crate::error::{Call, MapAws};
use crate::paginate::all_pages;

/// The ids of the instances tagged with `fleet`, every one of them also tagged with `service`
/// ([`Error::NotOwned`] otherwise); [`Error::NotFound`] when none is.
///
/// One filter reads both tags: the fleet's tag on its members and the service's tag on each
/// of the service's instances (terminated ones included while EC2 still lists them).
pub(super) async fn members_by_tags(
    ec2: &aws_sdk_ec2::Client,
    service: &ServiceName,
    fleet: &FleetId,
) -> Result<Vec<String>> {
    let filters = [
        filter("resource-type", &["instance"]),
        filter("key", &[tags::FLEET, tags::SERVICE]),
        filter("value", &[fleet.as_str(), service.as_str()]),
    ];
    let rows = all_pages(|token| {
        let filters = filters.to_vec();
        async move {
            let page = ec2
                .describe_tags()
                .set_filters(Some(filters))
                .max_results(1000)
                .set_next_token(token)
                .send()
                .await
                .aws(Call::new(
                    "DescribeTags",
                    ResourceKind::Fleet,
                    fleet.as_str(),
                ))?;
            let rows: Vec<(String, String, String)> = page
                .tags()
                .iter()
                .filter_map(|t| {
                    let id = t.resource_id()?.to_owned();
                    Some((id, t.key()?.to_owned(), t.value()?.to_owned()))
                })
                .collect();
            Ok((rows, page.next_token().map(str::to_owned)))
        }
    })
    .await?;
    owned_members(service, fleet, &rows)
}

/// The fleet's members from `(resource, key, value)` rows, checked against the service's.
fn owned_members(
    service: &ServiceName,
    fleet: &FleetId,
    rows: &[(String, String, String)],
) -> Result<Vec<String>> {
    let tagged = |key: &str, value: &str| -> BTreeSet<&str> {
        rows.iter()
            .filter(|(_, k, v)| k == key && v == value)
            .map(|(id, _, _)| id.as_str())
            .collect()
    };
    let members = tagged(tags::FLEET, fleet.as_str());
    if members.is_empty() {
        return Err(Error::not_found(ResourceKind::Fleet, fleet.as_str()));
    }
    if !members.is_subset(&tagged(tags::SERVICE, service.as_str())) {
        return Err(Error::NotOwned {
            kind: ResourceKind::Fleet,
            id: fleet.to_string(),
            service: service.to_string(),
        });
    }
    Ok(members.into_iter().map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, key: &str, value: &str) -> (String, String, String) {
        (id.into(), key.into(), value.into())
    }

    #[test]
    fn members_carry_both_tags_or_the_fleet_is_not_owned() {
        let web = ServiceName::new("web").unwrap();
        let fleet = FleetId::new("fleet-a");
        let rows = vec![
            row("i-1", tags::FLEET, "fleet-a"),
            row("i-1", tags::SERVICE, "web"),
            row("i-2", tags::SERVICE, "web"),
        ];
        assert_eq!(owned_members(&web, &fleet, &rows).unwrap(), vec!["i-1"]);
        let foreign = vec![row("i-3", tags::FLEET, "fleet-a")];
        assert!(matches!(
            owned_members(&web, &fleet, &foreign),
            Err(Error::NotOwned { .. })
        ));
        assert!(matches!(
            owned_members(&web, &FleetId::new("fleet-b"), &rows),
            Err(Error::NotFound { .. })
        ));
    }
}
