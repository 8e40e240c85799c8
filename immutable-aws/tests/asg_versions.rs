//! An Auto Scaling fleet deletes its own launch template version when it is terminated
//! (moto has no `DeleteLaunchTemplateVersions`, so the calls are scripted with
//! aws-smithy-mocks): the group's version is deleted, a version already gone counts as
//! deleted, any other failure is reported with the group kept, and a version the SDK did not
//! make (an adopted group's) is never deleted.

use aws_sdk_autoscaling::operation::delete_auto_scaling_group::DeleteAutoScalingGroupOutput;
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::types::{AutoScalingGroup, LaunchTemplateSpecification, TagDescription};
use aws_sdk_ec2::operation::delete_launch_template_versions::DeleteLaunchTemplateVersionsOutput;
use aws_sdk_ec2::types::{
    DeleteLaunchTemplateVersionsResponseErrorItem, LaunchTemplateErrorCode, ResponseError,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use immutable_aws::{AsgFleet, LaunchTemplate};
use immutable_core::{Fleet, FleetId, ServiceName};

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

/// Terminates the group with EC2 answering `DeleteLaunchTemplateVersions` with `failed`;
/// returns the result, the version-delete rule and the group-delete rule.
async fn terminate(failed: Option<&'static str>) -> (immutable_core::Result<()>, Rule, Rule) {
    terminate_group(true, failed).await
}

/// The same for a group whose version was made by the SDK (`made_here`) or not.
async fn terminate_group(
    made_here: bool,
    failed: Option<&'static str>,
) -> (immutable_core::Result<()>, Rule, Rule) {
    let describe = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
        .then_output(move || the_group(made_here));
    let delete_group = mock!(aws_sdk_autoscaling::Client::delete_auto_scaling_group)
        .match_requests(|r| {
            r.auto_scaling_group_name() == Some(GROUP) && r.force_delete() == Some(true)
        })
        .then_output(|| DeleteAutoScalingGroupOutput::builder().build());
    let delete_version = mock!(aws_sdk_ec2::Client::delete_launch_template_versions)
        .match_requests(|r| r.launch_template_id() == Some("lt-1") && r.versions() == ["7"])
        .then_output(move || deleted(failed));
    let asg = mock_client!(
        aws_sdk_autoscaling,
        RuleMode::MatchAny,
        [&describe, &delete_group]
    );
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&delete_version]);
    let fleet = AsgFleet::builder_from_clients(asg, ec2)
        .launch_template(LaunchTemplate::Id("lt-1".into()))
        .build()
        .unwrap();
    let web = ServiceName::new("web").unwrap();
    let result = fleet.terminate(&web, &FleetId::new(GROUP)).await;
    (result, delete_version, delete_group)
}

#[tokio::test]
async fn terminate_deletes_the_fleets_launch_template_version_then_the_group() {
    let (result, version, group) = terminate(None).await;
    result.unwrap();
    assert_eq!(
        version.num_calls(),
        1,
        "the group's version 7 of lt-1 is deleted"
    );
    assert_eq!(group.num_calls(), 1, "the group is force-deleted");
}

#[tokio::test]
async fn a_version_already_gone_counts_as_deleted() {
    let (result, version, group) = terminate(Some("launchTemplateVersionDoesNotExist")).await;
    result.unwrap();
    assert_eq!((version.num_calls(), group.num_calls()), (1, 1));
}

#[tokio::test]
async fn any_other_failure_to_delete_the_version_is_reported_and_the_group_kept() {
    let (result, version, group) = terminate(Some("unexpectedError")).await;
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains("version 7 of lt-1") && error.contains("unexpectedError"),
        "{error}"
    );
    assert_eq!((version.num_calls(), group.num_calls()), (1, 0));
}

#[tokio::test]
async fn a_group_whose_version_was_not_made_here_keeps_it() {
    // An adopted group runs its owner's launch template: only the group goes.
    let (result, version, group) = terminate_group(false, None).await;
    result.unwrap();
    assert_eq!((version.num_calls(), group.num_calls()), (0, 1));
}
