//! AWS errors mapped into the core's [`Error`], where they arise.
//!
//! Throttling and 5xx are retryable; not-found codes become [`Error::NotFound`]; validation
//! errors become [`Error::InvalidInput`]; "in use" and wrong-state codes become
//! [`Error::Conflict`]; authorization failures name the IAM policy to fix. Where "not found" is
//! an answer (a resource already deleted), [`NotFoundIsNone`] says so once.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;
use immutable_core::{Error, ResourceKind};

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "EC2ThrottledException",
    "PriorRequestNotComplete",
    // SNS, and SNS waiting on KMS for an encrypted topic.
    "Throttled",
    "KMSThrottling",
];

const TRANSIENT: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
    "InsufficientInstanceCapacity",
    "RequestTimeout",
    "RequestTimeoutException",
];

const INVALID: &[&str] = &[
    "ValidationError",
    "ValidationException",
    "InvalidParameter",
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "MissingParameter",
    "InvalidConfigurationRequest",
    "InvalidAMIID.Malformed",
    "InvalidInstanceID.Malformed",
    "InvalidSubnetID.Malformed",
    "InvalidGroupId.Malformed",
    "InvalidTarget",
    "InvalidLaunchTemplateName.MalformedException",
    "InvalidLaunchTemplateId.Malformed",
];

const CONFLICT: &[&str] = &[
    "ResourceInUse",
    "ResourceInUseException",
    "IncorrectState",
    "IncorrectInstanceState",
    "DependencyViolation",
    "ConditionalCheckFailedException",
];

const DENIED: &[&str] = &[
    "UnauthorizedOperation",
    "AccessDenied",
    "AccessDeniedException",
    "AuthFailure",
    "OperationNotPermitted",
    // SNS.
    "AuthorizationError",
];

/// What a call was about, for the error it may produce.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    /// The AWS operation, e.g. `RunInstances`.
    pub(crate) operation: &'static str,
    /// The resource it concerns.
    pub(crate) kind: ResourceKind,
    /// Its id, as the caller named it.
    pub(crate) id: &'a str,
}

impl<'a> Call<'a> {
    pub(crate) fn new(operation: &'static str, kind: ResourceKind, id: &'a str) -> Self {
        Call {
            operation,
            kind,
            id,
        }
    }
}

fn is_not_found(code: &str) -> bool {
    code.ends_with("NotFound")
        || code.ends_with(".NotFound")
        || code.ends_with("NotFoundException")
        || code == "InvalidAMIID.Unavailable"
}

/// What AWS answered to one call: the operation, the error code and message, and the request
/// id AWS support asks for. Kept as the [`source`](std::error::Error::source) of every error a
/// call maps to, with the SDK's own error behind it.
#[derive(Debug)]
pub struct AwsCallError {
    /// The AWS operation, e.g. `RunInstances`.
    pub operation: &'static str,
    /// The error code, e.g. `InvalidAMIID.NotFound`.
    pub code: Option<String>,
    /// AWS's message.
    pub message: Option<String>,
    /// The request id of the failed call, when AWS gave one.
    pub request_id: Option<String>,
    source: immutable_core::BoxError,
}

impl std::fmt::Display for AwsCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.operation,
            self.code.as_deref().unwrap_or("Unknown"),
            self.message.as_deref().unwrap_or("no message")
        )?;
        match &self.request_id {
            Some(id) => write!(f, " (request id {id})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for AwsCallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Classifies an error code and HTTP status.
pub(crate) fn classify(
    call: Call<'_>,
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
    request_id: Option<&str>,
    source: immutable_core::BoxError,
) -> Error {
    let code_str = code.unwrap_or("Unknown");
    let cause = AwsCallError {
        operation: call.operation,
        code: code.map(str::to_owned),
        message: message.map(str::to_owned),
        request_id: request_id.map(str::to_owned),
        source,
    };
    let message = format!(
        "{} failed: {code_str}: {}",
        call.operation,
        message.unwrap_or("no message")
    );
    let source: Option<immutable_core::BoxError> = Some(Box::new(cause));
    match code {
        Some(c) if THROTTLING.contains(&c) => Error::Throttled { message, source },
        Some(c) if is_not_found(c) => Error::NotFound {
            kind: call.kind,
            id: call.id.to_owned(),
            source,
        },
        Some("AlreadyExists" | "AlreadyExistsFault" | "DuplicateTargetGroupName") => {
            Error::AlreadyExists {
                kind: call.kind,
                id: call.id.to_owned(),
                source,
            }
        }
        Some(c) if INVALID.contains(&c) => Error::InvalidInput {
            field: format!("{} request", call.operation),
            reason: message,
            source,
        },
        Some(c) if CONFLICT.contains(&c) => Error::Conflict { message, source },
        Some(c) if DENIED.contains(&c) => Error::Provider {
            message: format!(
                "{message} (grant the IAM actions listed in the immutable-aws docs, \
                 section \"IAM policy\")"
            ),
            source,
        },
        Some(c) if TRANSIENT.contains(&c) => Error::Transient { message, source },
        _ if status == Some(429) => Error::Throttled { message, source },
        _ if status.is_some_and(|s| s >= 500) => Error::Transient { message, source },
        _ => Error::Provider { message, source },
    }
}

/// Maps an SDK error of one call.
pub(crate) fn map_sdk<E>(call: Call<'_>, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let e = ctx.into_err();
            let code = e.code().map(str::to_owned);
            let msg = e.message().map(str::to_owned);
            let request_id = e.meta().request_id().map(str::to_owned);
            classify(
                call,
                code.as_deref(),
                msg.as_deref(),
                Some(status),
                request_id.as_deref(),
                Box::new(e),
            )
        }
        SdkError::TimeoutError(_) => Error::Transient {
            message: format!("{} timed out", call.operation),
            source: Some(Box::new(err)),
        },
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Error::Transient {
            message: format!("{} could not reach AWS: {err}", call.operation),
            source: Some(Box::new(err)),
        },
        other => Error::Provider {
            message: format!("{} failed: {other}", call.operation),
            source: Some(Box::new(other)),
        },
    }
}

/// Maps results of SDK calls.
pub(crate) trait MapAws<T> {
    /// Maps the error with what the call was about.
    fn aws(self, call: Call<'_>) -> Result<T, Error>;
}

impl<T, E> MapAws<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn aws(self, call: Call<'_>) -> Result<T, Error> {
        self.map_err(|e| map_sdk(call, e))
    }
}

/// "Not found" as an answer rather than a failure.
pub(crate) trait NotFoundIsNone<T> {
    /// `Ok(None)` for [`Error::NotFound`]: a resource already gone counts as deleted, a name
    /// nothing answers to as nothing found.
    fn none_if_not_found(self) -> Result<Option<T>, Error>;
}

impl<T> NotFoundIsNone<T> for Result<T, Error> {
    fn none_if_not_found(self) -> Result<Option<T>, Error> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(code: &str, status: u16) -> Error {
        classify(
            Call::new("Op", ResourceKind::Image, "ami-1"),
            Some(code),
            Some("m"),
            Some(status),
            Some("req-1"),
            "x".into(),
        )
    }

    #[test]
    fn every_mapped_error_keeps_the_call_and_its_request_id_as_its_source() {
        use std::error::Error as _;
        for (code, status) in [
            ("InvalidAMIID.NotFound", 400),
            ("DuplicateTargetGroupName", 400),
            ("ValidationError", 400),
            ("ResourceInUse", 400),
            ("Throttling", 400),
            ("InternalError", 500),
            ("UnauthorizedOperation", 403),
        ] {
            let e = c(code, status);
            let source = e.source().unwrap_or_else(|| panic!("{code}: no source"));
            let call = source
                .downcast_ref::<AwsCallError>()
                .unwrap_or_else(|| panic!("{code}: the source is not the AWS call"));
            assert_eq!(call.request_id.as_deref(), Some("req-1"), "{code}");
            assert_eq!(call.code.as_deref(), Some(code));
            assert!(source.to_string().contains("request id req-1"), "{source}");
            assert_ne!(
                e.category(),
                immutable_core::ErrorCategory::Refused,
                "{code}: a provider's answer is no engine refusal: {e}"
            );
        }
    }

    #[test]
    fn codes_are_classified() {
        assert!(matches!(
            c("RequestLimitExceeded", 503),
            Error::Throttled { .. }
        ));
        assert!(matches!(c("Throttling", 400), Error::Throttled { .. }));
        assert!(matches!(c("Whatever", 429), Error::Throttled { .. }));
        assert!(matches!(c("InternalError", 500), Error::Transient { .. }));
        assert!(matches!(c("Whatever", 502), Error::Transient { .. }));
        assert!(matches!(
            c("InvalidAMIID.NotFound", 400),
            Error::NotFound { .. }
        ));
        assert!(matches!(
            c("TargetGroupNotFound", 400),
            Error::NotFound { .. }
        ));
        assert!(matches!(
            c("ValidationError", 400),
            Error::InvalidInput { .. }
        ));
        assert!(matches!(c("ResourceInUse", 400), Error::Conflict { .. }));
        // attach_new finds a group whose name is taken instead of failing.
        assert!(matches!(
            c("DuplicateTargetGroupName", 400),
            Error::AlreadyExists { .. }
        ));
        match c("UnauthorizedOperation", 403) {
            Error::Provider { message, .. } => assert!(message.contains("IAM policy")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(c("Whatever", 400), Error::Provider { .. }));
        // SNS's codes.
        assert!(matches!(c("Throttled", 400), Error::Throttled { .. }));
        assert!(matches!(c("KMSThrottling", 400), Error::Throttled { .. }));
        assert!(matches!(c("NotFound", 404), Error::NotFound { .. }));
        match c("AuthorizationError", 403) {
            Error::Provider { message, .. } => assert!(message.contains("IAM policy")),
            other => panic!("{other:?}"),
        }
        assert!(c("Throttling", 400).is_retryable());
        assert!(!c("ValidationError", 400).is_retryable());
    }
}
