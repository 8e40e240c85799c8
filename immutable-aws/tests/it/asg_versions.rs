//! An Auto Scaling fleet deletes its own launch template version when it is terminated, and
//! only its own: the version the group's tag names is read first and deleted only when its
//! description is the fleet's marker (`immutable:<service>:<group>`).
//!
//! moto has no `DeleteLaunchTemplateVersions`, so the deletes are scripted with
//! aws-smithy-mocks: the group's version is deleted, a version already gone counts as
//! deleted, any other failure is reported with the group kept, and a version the SDK did not
//! make (an adopted group's, or one a tag was pointed at) is never deleted. On moto's server,
//! a version made by hand, or for another fleet, that a group's tag names is read, left in
//! place (no delete is even asked for) and the group deleted.

use crate::common::{SERVICE, World};
use aws_sdk_autoscaling::operation::delete_auto_scaling_group::DeleteAutoScalingGroupOutput;
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::types::{
    AutoScalingGroup, LaunchTemplateSpecification, Tag as AsgTag, TagDescription,
};
use aws_sdk_ec2::operation::delete_launch_template_versions::DeleteLaunchTemplateVersionsOutput;
use aws_sdk_ec2::operation::describe_launch_template_versions::DescribeLaunchTemplateVersionsOutput;
use aws_sdk_ec2::types::{
    DeleteLaunchTemplateVersionsResponseErrorItem, LaunchTemplateErrorCode, LaunchTemplateVersion,
    ResponseError,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use immutable_aws::{AsgFleet, LaunchTemplate};
use immutable_core::{
    DeploymentId, Fleet, FleetId, FleetSpec, ImageId, Operation, ServiceName, tags,
};

const GROUP: &str = "imm-web-d1";

fn the_group(made_here: bool) -> DescribeAutoScalingGroupsOutput {
    let version = made_here.then(|| {
        TagDescription::builder()
            .key("immutable:template-version")
            .value("lt-1:7")
            .build()
    });
    DescribeAutoScalingGroupsOutput::builder()
        .auto_scaling_groups(
            AutoScalingGroup::builder()
                .auto_scaling_group_name(GROUP)
                .launch_template(
                    LaunchTemplateSpecification::builder()
                        .launch_template_id("lt-1")
                        .version("7")
                        .build(),
                )
                .tags(
                    TagDescription::builder()
                        .key("immutable:service")
                        .value("web")
                        .build(),
                )
                .set_tags(Some(version.into_iter().collect()))
                .tags(
                    TagDescription::builder()
                        .key("immutable:service")
                        .value("web")
                        .build(),
                )
                .build(),
        )
        .build()
}

/// The fleet's own marker, as the SDK writes it on the version it makes.
const OWN: &str = "immutable:web:imm-web-d1";

fn described(description: &str) -> DescribeLaunchTemplateVersionsOutput {
    DescribeLaunchTemplateVersionsOutput::builder()
        .launch_template_versions(
            LaunchTemplateVersion::builder()
                .launch_template_id("lt-1")
                .version_number(7)
                .version_description(description)
                .build(),
        )
        .build()
}

fn deleted(failed: Option<&str>) -> DeleteLaunchTemplateVersionsOutput {
    let mut out = DeleteLaunchTemplateVersionsOutput::builder();
    if let Some(code) = failed {
        out = out.unsuccessfully_deleted_launch_template_versions(
            DeleteLaunchTemplateVersionsResponseErrorItem::builder()
                .launch_template_id("lt-1")
                .version_number(7)
                .response_error(
                    ResponseError::builder()
                        .code(LaunchTemplateErrorCode::from(code))
                        .build(),
                )
                .build(),
        );
    }
    out.build()
}

/// What a scripted terminate did: its result and the calls to read the version, delete it
/// and delete the group.
struct Terminated {
    result: immutable_core::Result<()>,
    /// The calls the fleet declares `terminate` costs.
    declared: u64,
    /// The group read (ownership).
    describe: Rule,
    read: Rule,
    delete_version: Rule,
    delete_group: Rule,
}

impl Terminated {
    fn calls(&self) -> (usize, usize, usize) {
        (
            self.read.num_calls(),
            self.delete_version.num_calls(),
            self.delete_group.num_calls(),
        )
    }
}

/// Terminates the group made here, its version described with the fleet's marker, with EC2
/// answering `DeleteLaunchTemplateVersions` with `failed`.
async fn terminate(failed: Option<&'static str>) -> Terminated {
    terminate_group(true, OWN, failed).await
}

/// The same for a group tagged with its version (`made_here`) or not, the version described
/// `description`.
async fn terminate_group(
    made_here: bool,
    description: &'static str,
    failed: Option<&'static str>,
) -> Terminated {
    let describe = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
        .then_output(move || the_group(made_here));
    let delete_group = mock!(aws_sdk_autoscaling::Client::delete_auto_scaling_group)
        .match_requests(|r| {
            r.auto_scaling_group_name() == Some(GROUP) && r.force_delete() == Some(true)
        })
        .then_output(|| DeleteAutoScalingGroupOutput::builder().build());
    let read = mock!(aws_sdk_ec2::Client::describe_launch_template_versions)
        .match_requests(|r| r.launch_template_id() == Some("lt-1") && r.versions() == ["7"])
        .then_output(move || described(description));
    let delete_version = mock!(aws_sdk_ec2::Client::delete_launch_template_versions)
        .match_requests(|r| r.launch_template_id() == Some("lt-1") && r.versions() == ["7"])
        .then_output(move || deleted(failed));
    let asg = mock_client!(
        aws_sdk_autoscaling,
        RuleMode::MatchAny,
        [&describe, &delete_group]
    );
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&read, &delete_version]);
    let fleet = AsgFleet::builder_from_clients(asg, ec2)
        .launch_template(LaunchTemplate::Id("lt-1".into()))
        .build()
        .unwrap();
    let web = ServiceName::new("web").unwrap();
    let result = fleet.terminate(&web, &FleetId::new(GROUP)).await;
    let declared = fleet
        .cost(&web, Operation::Terminate)
        .expect("a declared cost")
        .least(1);
    Terminated {
        result,
        declared,
        describe,
        read,
        delete_version,
        delete_group,
    }
}

#[tokio::test]
async fn terminate_deletes_the_fleets_launch_template_version_then_the_group() {
    let t = terminate(None).await;
    t.result.as_ref().unwrap();
    // The version's marker is read, version 7 of lt-1 deleted, the group force-deleted.
    assert_eq!(t.calls(), (1, 1, 1));
    // The most terminate makes is what the plan counts: the group read, then those three.
    assert_eq!(t.declared, 1 + 3, "the declared cost of terminate");
    assert_eq!(t.describe.num_calls(), 1);
}

#[tokio::test]
async fn a_version_already_gone_counts_as_deleted() {
    let t = terminate(Some("launchTemplateVersionDoesNotExist")).await;
    t.result.as_ref().unwrap();
    assert_eq!(t.calls(), (1, 1, 1));
}

#[tokio::test]
async fn any_other_failure_to_delete_the_version_is_reported_and_the_group_kept() {
    let t = terminate(Some("unexpectedError")).await;
    let error = t.result.as_ref().unwrap_err().to_string();
    assert!(
        error.contains("version 7 of lt-1") && error.contains("unexpectedError"),
        "{error}"
    );
    assert_eq!(t.calls(), (1, 1, 0));
}

#[tokio::test]
async fn a_group_whose_version_was_not_made_here_keeps_it() {
    // An adopted group runs its owner's launch template: only the group goes.
    let t = terminate_group(false, OWN, None).await;
    t.result.as_ref().unwrap();
    assert_eq!(t.calls(), (0, 0, 1));
}

#[tokio::test]
async fn a_version_without_the_fleets_marker_is_kept_and_the_group_deleted() {
    for description in [
        "made by hand",
        "imm-web-d1",
        "immutable:web:imm-web-d2",
        "immutable:billing:imm-web-d1",
    ] {
        let t = terminate_group(true, description, None).await;
        t.result.as_ref().unwrap();
        assert_eq!(t.calls(), (1, 0, 1), "described {description:?}");
    }
}

/// A fleet on moto that deletes its versions (the deletes it would make are never reached
/// in these tests).
fn deleting_fleet(w: &World, template: &str) -> AsgFleet {
    AsgFleet::builder(&w.clients)
        .launch_template(LaunchTemplate::Id(template.to_owned()))
        .subnets(w.subnets.clone())
        .size_limits(1, 10)
        .build()
        .unwrap()
}

/// One group of one instance of `image`.
async fn launch(fleet: &AsgFleet, image: &ImageId) -> FleetId {
    let web = ServiceName::new(SERVICE).unwrap();
    let spec = FleetSpec::new(web, DeploymentId::generate(), image.clone(), 1);
    fleet.launch(&spec).await.unwrap().id
}

/// The group's `immutable:template-version` tag.
async fn version_tag(w: &World, group: &FleetId) -> String {
    w.groups()
        .await
        .iter()
        .find(|g| g.auto_scaling_group_name() == Some(group.as_str()))
        .and_then(|g| {
            g.tags()
                .iter()
                .find(|t| t.key() == Some(tags::TEMPLATE_VERSION))?
                .value()
                .map(str::to_owned)
        })
        .expect("the group and its version tag")
}

/// Points the group's version tag at `value`, as a hand (or a copied tag) would.
async fn retag(w: &World, group: &FleetId, value: &str) {
    let tag = AsgTag::builder()
        .resource_id(group.as_str())
        .resource_type("auto-scaling-group")
        .key(tags::TEMPLATE_VERSION)
        .value(value)
        .propagate_at_launch(false)
        .build();
    w.asg()
        .create_or_update_tags()
        .tags(tag)
        .send()
        .await
        .unwrap();
}

/// The description of a version, read past the SDK; `None` when it is gone.
async fn description(w: &World, template: &str, version: &str) -> Option<String> {
    let out = w
        .ec2()
        .describe_launch_template_versions()
        .launch_template_id(template)
        .versions(version)
        .send()
        .await
        .ok()?;
    let v = out.launch_template_versions().first()?;
    Some(v.version_description().unwrap_or_default().to_owned())
}

/// Terminates the group and returns the AWS operations it made.
async fn terminate_on_moto(w: &World, fleet: &AsgFleet, group: &FleetId) -> Vec<String> {
    w.calls.take();
    let web = ServiceName::new(SERVICE).unwrap();
    fleet.terminate(&web, group).await.unwrap();
    let calls = w.calls.take();
    assert!(
        w.groups()
            .await
            .iter()
            .filter(|g| g.auto_scaling_group_name() == Some(group.as_str()))
            .all(|g| g.status() == Some("Delete in progress")),
        "the group {group} is still there"
    );
    calls
}

fn deletes(calls: &[String]) -> usize {
    calls
        .iter()
        .filter(|c| *c == "DeleteLaunchTemplateVersions")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_moto_a_version_made_by_hand_or_for_another_fleet_is_left_in_place() {
    let w = World::new().await;
    let template = w.launch_template("web").await;
    let fleet = deleting_fleet(&w, &template);
    let image = w.bake_image(SERVICE, "web-v1").await;
    let (a, b) = (launch(&fleet, &image).await, launch(&fleet, &image).await);
    // Each version the SDK made carries its fleet's marker.
    let a_version = version_tag(&w, &a).await;
    let (_, a_number) = a_version.split_once(':').unwrap();
    assert_eq!(
        description(&w, &template, a_number).await,
        Some(format!("immutable:{SERVICE}:{a}"))
    );
    // A version made by hand, and b's tag pointed at it: b is deleted, the version is not.
    let by_hand = w
        .ec2()
        .create_launch_template_version()
        .launch_template_id(&template)
        .source_version("1")
        .version_description("made by hand")
        .launch_template_data(aws_sdk_ec2::types::RequestLaunchTemplateData::builder().build())
        .send()
        .await
        .unwrap()
        .launch_template_version()
        .and_then(|v| v.version_number())
        .unwrap()
        .to_string();
    retag(&w, &b, &format!("{template}:{by_hand}")).await;
    let calls = terminate_on_moto(&w, &fleet, &b).await;
    assert!(
        calls.iter().any(|c| c == "DescribeLaunchTemplateVersions"),
        "{calls:?}"
    );
    assert_eq!(
        deletes(&calls),
        0,
        "a version made by hand was deleted: {calls:?}"
    );
    assert_eq!(
        description(&w, &template, &by_hand).await.as_deref(),
        Some("made by hand")
    );
    // A group tagged with another fleet's version (a copied tag): the version stays a's.
    let c = launch(&fleet, &image).await;
    retag(&w, &c, &a_version).await;
    let calls = terminate_on_moto(&w, &fleet, &c).await;
    assert_eq!(
        deletes(&calls),
        0,
        "another fleet's version was deleted: {calls:?}"
    );
    assert_eq!(
        description(&w, &template, a_number).await,
        Some(format!("immutable:{SERVICE}:{a}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_moto_a_tag_naming_no_version_deletes_only_the_group() {
    let w = World::new().await;
    let template = w.launch_template("web").await;
    let fleet = deleting_fleet(&w, &template);
    let image = w.bake_image(SERVICE, "web-v1").await;
    // A version that does not exist: already gone, nothing to delete.
    let a = launch(&fleet, &image).await;
    retag(&w, &a, &format!("{template}:99")).await;
    let calls = terminate_on_moto(&w, &fleet, &a).await;
    assert_eq!(deletes(&calls), 0, "{calls:?}");
    // Not a version number: not read, not deleted.
    let b = launch(&fleet, &image).await;
    retag(&w, &b, &format!("{template}:$Latest")).await;
    let calls = terminate_on_moto(&w, &fleet, &b).await;
    assert_eq!(deletes(&calls), 0, "{calls:?}");
    assert!(
        calls.iter().all(|c| c != "DescribeLaunchTemplateVersions"),
        "{calls:?}"
    );
}
