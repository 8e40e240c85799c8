//! The launch template versions the fleet makes: each is marked in its description
//! ([`marker`]), found again by it when a launch resumes, and deleted with its fleet only when
//! the marker names that fleet.
//!
//! A launch template version carries no tags, so its `VersionDescription` is the SDK's proof
//! of making it: `immutable:<service>:<group name>`. The group's `immutable:template-version`
//! tag says which version to delete at terminate, but a tag can be edited, or copied onto a
//! group by hand; the version is read first and kept, with a warning, when its marker is not
//! this service's and this fleet's.

use aws_sdk_ec2::types::LaunchTemplateVersion;
use immutable_core::{Error, FleetId, ResourceKind, Result, ServiceName, tags};

use super::AsgFleet;
use crate::LaunchTemplate;
use crate::error::{Call, MapAws, NotFoundIsNone};
use crate::paginate::all_pages;

/// Launch template versions per `DescribeLaunchTemplateVersions` page.
const VERSIONS_PAGE: i32 = 200;

/// A launch template version of one fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Version {
    pub(super) template_id: String,
    pub(super) number: i64,
}

/// The description of the version made for `fleet` of `service`: what marks it as the SDK's.
pub(super) fn marker(service: &ServiceName, fleet: &FleetId) -> String {
    format!("{}{service}:{fleet}", tags::PREFIX)
}

/// Why terminate leaves a version in place.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kept {
    /// The tag does not name a numbered version (`$Latest`, `$Default` or garbage).
    NotANumber,
    /// The version's description is not the fleet's marker: someone else made it.
    NotMarked(Option<String>),
}

impl std::fmt::Display for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kept::NotANumber => f.write_str("the group's tag names no version number"),
            Kept::NotMarked(Some(d)) => write!(f, "its description `{d}` is not this fleet's"),
            Kept::NotMarked(None) => f.write_str("it has no description: the SDK did not make it"),
        }
    }
}

impl AsgFleet {
    /// The version made for `id` by an earlier attempt, found by its marker.
    pub(super) async fn version_described(
        &self,
        service: &ServiceName,
        id: &FleetId,
    ) -> Result<Option<Version>> {
        let versions = all_pages(|token| {
            let request = self
                .ec2
                .describe_launch_template_versions()
                .max_results(VERSIONS_PAGE)
                .set_next_token(token);
            let request = match &self.template {
                LaunchTemplate::Id(v) => request.launch_template_id(v),
                LaunchTemplate::Name(v) => request.launch_template_name(v),
            };
            async move {
                let out = request.send().await.aws(Call::new(
                    "DescribeLaunchTemplateVersions",
                    ResourceKind::Fleet,
                    id.as_str(),
                ))?;
                Ok((
                    out.launch_template_versions().to_vec(),
                    out.next_token().map(str::to_owned),
                ))
            }
        })
        .await?;
        let marker = marker(service, id);
        Ok(versions
            .iter()
            .find(|v| v.version_description() == Some(marker.as_str()))
            .and_then(|v| {
                Some(Version {
                    template_id: v.launch_template_id()?.to_owned(),
                    number: v.version_number()?,
                })
            }))
    }

    /// Deletes the version the group's tag names if the fleet's marker is on it; leaves it,
    /// with a warning, otherwise. A version already gone counts as deleted.
    pub(super) async fn delete_own_version(
        &self,
        service: &ServiceName,
        fleet: &FleetId,
        template: &str,
        version: &str,
    ) -> Result<()> {
        let kept = match version.parse::<i64>() {
            Err(_) => Some(Kept::NotANumber),
            Ok(number) => match self.read_version(fleet, template, version).await? {
                None => return Ok(()),
                Some(v) if is_marked(&v, service, fleet, template, number) => None,
                Some(v) => Some(Kept::NotMarked(v.version_description().map(str::to_owned))),
            },
        };
        if let Some(why) = kept {
            tracing::warn!(
                %service, %fleet, template, version, reason = %why,
                "left launch template version in place: the SDK did not make it for this fleet"
            );
            return Ok(());
        }
        self.delete_version(fleet, template, version).await
    }

    /// The one version, or `None` when it or its template is gone.
    async fn read_version(
        &self,
        fleet: &FleetId,
        template: &str,
        version: &str,
    ) -> Result<Option<LaunchTemplateVersion>> {
        let out = self
            .ec2
            .describe_launch_template_versions()
            .launch_template_id(template)
            .versions(version)
            .send()
            .await
            .aws(Call::new(
                "DescribeLaunchTemplateVersions",
                ResourceKind::Fleet,
                fleet.as_str(),
            ))
            .none_if_not_found()?;
        Ok(out.and_then(|o| o.launch_template_versions().first().cloned()))
    }

    /// Deletes one version; one already gone counts as deleted.
    async fn delete_version(&self, fleet: &FleetId, template: &str, version: &str) -> Result<()> {
        let out = self
            .ec2
            .delete_launch_template_versions()
            .launch_template_id(template)
            .versions(version)
            .send()
            .await
            .aws(Call::new(
                "DeleteLaunchTemplateVersions",
                ResourceKind::Fleet,
                fleet.as_str(),
            ))?;
        if let Some(failed) = out
            .unsuccessfully_deleted_launch_template_versions()
            .first()
        {
            let code = failed
                .response_error()
                .and_then(|e| e.code())
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default();
            // launchTemplateVersionDoesNotExist, launchTemplateIdDoesNotExist: already gone.
            if !code.ends_with("DoesNotExist") {
                return Err(Error::provider(format!(
                    "DeleteLaunchTemplateVersions kept version {version} of {template} for \
                     fleet {fleet}: {code}"
                )));
            }
        }
        Ok(())
    }
}

/// Whether `v` is the version the tag named and carries the fleet's marker.
fn is_marked(
    v: &LaunchTemplateVersion,
    service: &ServiceName,
    fleet: &FleetId,
    template: &str,
    number: i64,
) -> bool {
    v.launch_template_id() == Some(template)
        && v.version_number() == Some(number)
        && v.version_description() == Some(marker(service, fleet).as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(description: &str) -> LaunchTemplateVersion {
        LaunchTemplateVersion::builder()
            .launch_template_id("lt-1")
            .version_number(7)
            .version_description(description)
            .build()
    }

    #[test]
    fn only_the_fleets_own_marker_marks_a_version() {
        let web = ServiceName::new("web").unwrap();
        let fleet = FleetId::new("imm-web-d1");
        let own = marker(&web, &fleet);
        assert_eq!(own, "immutable:web:imm-web-d1");
        assert!(is_marked(&version(&own), &web, &fleet, "lt-1", 7));
        assert!(!is_marked(&version(&own), &web, &fleet, "lt-2", 7));
        assert!(!is_marked(&version(&own), &web, &fleet, "lt-1", 8));
        let other = ServiceName::new("billing").unwrap();
        assert!(!is_marked(&version(&own), &other, &fleet, "lt-1", 7));
        assert!(!is_marked(&version("imm-web-d1"), &web, &fleet, "lt-1", 7));
        assert!(!is_marked(
            &version(&marker(&web, &FleetId::new("imm-web-d2"))),
            &web,
            &fleet,
            "lt-1",
            7
        ));
    }
}
