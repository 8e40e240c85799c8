//! AWS error replies, scripted with aws-smithy-mocks, map to the core's error kinds, and the
//! core's retry policy retries the retryable ones.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::operation::describe_images::{DescribeImagesError, DescribeImagesOutput};
use aws_sdk_ec2::types::{Image, Tag};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use immutable_aws::AwsImageStore;
use immutable_core::{Error, ImageRef, ImageStore, RetryPolicy, ServiceName};

fn aws_error(code: &str) -> DescribeImagesError {
    DescribeImagesError::generic(
        ErrorMetadata::builder()
            .code(code)
            .message("scripted")
            .build(),
    )
}

fn one_image() -> DescribeImagesOutput {
    DescribeImagesOutput::builder()
        .images(
            Image::builder()
                .image_id("ami-1")
                .name("web-v1")
                .creation_date("2026-01-01T00:00:00.000Z")
                .tags(Tag::builder().key("immutable:service").value("web").build())
                .build(),
        )
        .build()
}

#[tokio::test(start_paused = true)]
async fn a_throttling_reply_is_retried_by_the_core_policy() {
    let rule = mock!(Client::describe_images)
        .sequence()
        .error(|| aws_error("RequestLimitExceeded"))
        .times(2)
        .output(one_image)
        .build();
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::Sequential, [&rule], |c| c
        .retry_config(RetryConfig::disabled()));
    let store = AwsImageStore::from_client(ec2);
    let web = ServiceName::new("web").unwrap();
    let mut retries = Vec::new();
    let name = ImageRef::name("web-v1");
    let image = RetryPolicy::default()
        .run(
            || store.resolve(&web, &name),
            |attempt, e, _| retries.push((attempt, e.is_retryable())),
        )
        .await
        .unwrap();
    assert_eq!(image.id.as_str(), "ami-1");
    assert_eq!(image.service, Some(web));
    assert_eq!(rule.num_calls(), 3);
    assert_eq!(retries, vec![(1, true), (2, true)]);
}

#[tokio::test]
async fn a_validation_error_is_invalid_input_and_not_retried() {
    let rule = mock!(Client::describe_images)
        .sequence()
        .error(|| aws_error("InvalidParameterValue"))
        .repeatedly()
        .build();
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::Sequential, [&rule], |c| c
        .retry_config(RetryConfig::disabled()));
    let store = AwsImageStore::from_client(ec2);
    let web = ServiceName::new("web").unwrap();
    let name = ImageRef::name("web-v1");
    let err = RetryPolicy::default()
        .run(|| store.resolve(&web, &name), |_, _, _| {})
        .await
        .unwrap_err();
    match err {
        Error::InvalidInput { field, reason, .. } => {
            assert_eq!(field, "DescribeImages request");
            assert!(reason.contains("InvalidParameterValue"), "{reason}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert_eq!(
        rule.num_calls(),
        1,
        "a validation error must not be retried"
    );
}

#[tokio::test]
async fn not_found_and_server_errors_are_classified() {
    let rule = mock!(Client::describe_images)
        .sequence()
        .error(|| aws_error("InvalidAMIID.NotFound"))
        .http_status(503, None)
        .build();
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::Sequential, [&rule], |c| c
        .retry_config(RetryConfig::disabled()));
    let store = AwsImageStore::from_client(ec2);
    let web = ServiceName::new("web").unwrap();
    let r = ImageRef::id("ami-0123");
    assert!(matches!(
        store.resolve(&web, &r).await,
        Err(Error::NotFound { .. })
    ));
    let e = store.resolve(&web, &r).await.unwrap_err();
    assert!(e.is_retryable(), "a 503 must be retryable: {e:?}");
}

#[tokio::test]
async fn a_partial_launch_that_cannot_be_filled_is_reported() {
    use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
    use aws_sdk_ec2::operation::run_instances::{RunInstancesError, RunInstancesOutput};
    use aws_sdk_ec2::types::Instance;
    use immutable_aws::AwsFleet;
    use immutable_core::{DeploymentId, Fleet, FleetSpec};

    let describe = mock!(Client::describe_instances)
        .sequence()
        .output(|| DescribeInstancesOutput::builder().build())
        .repeatedly()
        .build();
    // Asked for two, EC2 starts one; the top-up finds no capacity.
    let run = mock!(Client::run_instances)
        .sequence()
        .output(|| {
            RunInstancesOutput::builder()
                .instances(
                    Instance::builder()
                        .instance_id("i-1")
                        .subnet_id("subnet-a")
                        .build(),
                )
                .build()
        })
        .error(|| {
            RunInstancesError::generic(
                ErrorMetadata::builder()
                    .code("InsufficientInstanceCapacity")
                    .message("no t3.micro left in this zone")
                    .build(),
            )
        })
        .build();
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&describe, &run], |c| c
        .retry_config(RetryConfig::disabled()));
    let fleet = AwsFleet::builder_from_client(ec2)
        .instance_type("t3.micro")
        .subnets(["subnet-a"])
        .build()
        .unwrap();
    let spec = FleetSpec::new(
        ServiceName::new("web").unwrap(),
        DeploymentId::generate(),
        "ami-1".into(),
        2,
    );
    match fleet.launch(&spec).await {
        Err(Error::Provider { message, .. }) => {
            assert!(message.contains("partial launch"), "{message}");
            assert!(message.contains("1 of 2 instances"), "{message}");
            assert!(
                message.contains("InsufficientInstanceCapacity"),
                "{message}"
            );
        }
        other => panic!("expected a partial-launch error, got {other:?}"),
    }
    assert_eq!(run.num_calls(), 2, "one launch and one top-up");
}
