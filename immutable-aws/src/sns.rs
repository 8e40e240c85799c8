//! [`SnsNotifier`]: notifications published to an Amazon SNS topic (feature `sns`).

use std::fmt;
use std::fmt::Write as _;

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;
use immutable_core::{Error, Notification, Notifier, ResourceKind, Result};
use sha2::{Digest, Sha256};

use crate::AwsClients;
use crate::error::{Call, MapAws};

/// The longest subject SNS takes, in characters.
const SUBJECT_MAX: usize = 100;

/// The field its configuration errors name.
const FIELD: &str = "notify.topic_arn";

/// Publishes each [`Notification`] to an Amazon SNS topic, from where SNS fans it out to the
/// topic's subscribers (SQS queues, Lambda functions, e-mail, HTTPS endpoints, ...).
///
/// One `Publish` per notification:
/// - `Message`: the notification's JSON, the same versioned payload the core's webhook
///   notifier POSTs (see [`Notification`]);
/// - `Subject`: a short line for e-mail subscribers, `immutable: <service> <event>` (say
///   `immutable: web rolled back`), printable ASCII only and at most 100 characters, as SNS
///   requires;
/// - message attributes `event` (the trigger's name, `rolled_back`) and `service`, both of
///   type `String`, for subscription filter policies;
/// - on a FIFO topic (its name ends in `.fifo`): `MessageGroupId` = the service, so one
///   service's notifications keep their order, and `MessageDeduplicationId` = the hex SHA-256
///   of the notification's [`dedupe_key`](Notification::dedupe_key), so SNS itself drops a
///   notification delivered again (after a crash between its publish and the save that records
///   it) within its 5-minute deduplication window.
///
/// # Errors
/// Mapped where they arise, as the engine's retries expect: throttling (`Throttled`,
/// `KMSThrottling`), 5xx answers, timeouts and connection failures are retryable and retried
/// within the notifier's [`Notify::timeout`](immutable_core::Notify::timeout); a topic that
/// does not exist, a denied publish (`AuthorizationError`, with the IAM hint) or an invalid
/// parameter end the delivery as failed, recorded in the deployment's outbox. Neither errors
/// nor `Debug` show more than the topic's ARN, which is no secret; credentials stay in the
/// client.
///
/// # IAM
/// `sns:Publish` on the topic (and `kms:GenerateDataKey` and `kms:Decrypt` on its key when
/// the topic is encrypted with a customer managed key).
///
/// ```no_run
/// # async fn demo() -> immutable_core::Result<()> {
/// use immutable_aws::{AwsConfig, SnsNotifier};
/// use immutable_core::{Engine, Notify, Trigger};
///
/// let clients = AwsConfig::from_env().load().await;
/// let sns = SnsNotifier::new(&clients, "arn:aws:sns:eu-west-1:123456789012:deployments")?;
/// let builder = Engine::builder().notify(
///     Notify::new("sns", sns)?.on([Trigger::RollbackStarted, Trigger::RolledBack, Trigger::Stopped]),
/// );
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
    fifo: bool,
}

impl fmt::Debug for SnsNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnsNotifier")
            .field("topic_arn", &self.topic_arn)
            .finish_non_exhaustive()
    }
}

impl SnsNotifier {
    /// A notifier publishing to `topic_arn`, over the clients' AWS configuration.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `notify.topic_arn` unless it has the shape of an SNS topic's
    /// ARN, `arn:<partition>:sns:<region>:<12-digit account>:<name>`, where the name is 1 to
    /// 256 ASCII letters, digits, `-` or `_`, its `.fifo` suffix included. Whether the topic
    /// exists is known at the first publish.
    pub fn new(clients: &AwsClients, topic_arn: &str) -> Result<Self> {
        Self::from_client(clients.sns(), topic_arn)
    }

    /// A notifier publishing to `topic_arn` with this client (one built from an
    /// `aws_config::SdkConfig`, say, with its own retries and timeouts).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_client(client: aws_sdk_sns::Client, topic_arn: &str) -> Result<Self> {
        let fifo = check_topic_arn(topic_arn)?;
        Ok(SnsNotifier {
            client,
            topic_arn: topic_arn.to_owned(),
            fifo,
        })
    }

    /// The topic's ARN.
    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    /// Whether the topic is a FIFO topic (its name ends in `.fifo`).
    pub fn is_fifo(&self) -> bool {
        self.fifo
    }

    /// The `MessageDeduplicationId` of a notification on a FIFO topic: the lowercase hex
    /// SHA-256 of `dedupe_key`, 64 characters. The same key always gives the same id, on
    /// every machine and release.
    pub fn deduplication_id(dedupe_key: &str) -> String {
        Sha256::digest(dedupe_key.as_bytes()).iter().fold(
            String::with_capacity(64),
            |mut hex, byte| {
                let _ = write!(hex, "{byte:02x}");
                hex
            },
        )
    }

    /// The `Subject` of a notification: `immutable: <service> <event>`, made safe for SNS.
    fn subject(n: &Notification) -> String {
        sanitize_subject(&format!("immutable: {} {}", n.service, n.event))
    }

    /// A topic that does not exist is the operator's configuration to fix, not a resource the
    /// engine looked up: the core has no resource kind for it, so it is a provider error
    /// naming the topic.
    fn topic_missing(&self, e: Error) -> Error {
        match e {
            Error::NotFound { source, .. } => Error::Provider {
                message: format!(
                    "SNS topic `{}` does not exist (is {FIELD} right, in this account and \
                     region?)",
                    self.topic_arn
                ),
                source,
            },
            other => other,
        }
    }
}

/// `subject` with every character SNS refuses in a subject (control characters, line breaks,
/// anything beyond ASCII) replaced by `?`, cut to [`SUBJECT_MAX`] characters.
fn sanitize_subject(subject: &str) -> String {
    subject
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .take(SUBJECT_MAX)
        .collect()
}

/// Checks the shape of an SNS topic's ARN, and says whether the topic is FIFO.
fn check_topic_arn(arn: &str) -> Result<bool> {
    let refuse = |why: &str| {
        Error::invalid(
            FIELD,
            format!(
                "`{arn}` is not an SNS topic ARN: {why}; expected \
                 arn:<partition>:sns:<region>:<account>:<topic name>"
            ),
        )
    };
    let label = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let parts: Vec<&str> = arn.split(':').collect();
    let [prefix, partition, service, region, account, name] = parts[..] else {
        return Err(refuse("it must have six `:`-separated parts"));
    };
    if prefix != "arn" {
        return Err(refuse("it must start with `arn:`"));
    }
    if !label(partition) {
        return Err(refuse(
            "the partition (`aws`, `aws-cn`, ...) is missing or malformed",
        ));
    }
    if service != "sns" {
        return Err(refuse("the service must be `sns`"));
    }
    if !label(region) {
        return Err(refuse("the region is missing or malformed"));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse("the account must be 12 digits"));
    }
    let (base, fifo) = match name.strip_suffix(".fifo") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let name_ok = !base.is_empty()
        && name.len() <= 256
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !name_ok {
        return Err(refuse(
            "the topic name must be 1 to 256 ASCII letters, digits, `-` or `_` (and `.fifo` \
             to end a FIFO topic's name)",
        ));
    }
    Ok(fifo)
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| Error::provider(format!("cannot build an SNS message attribute: {e}")))
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn send(&self, n: &Notification) -> Result<()> {
        let message = serde_json::to_string(n)
            .map_err(|e| Error::provider(format!("the notification is not JSON: {e}")))?;
        let mut publish = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(message)
            .subject(Self::subject(n))
            .message_attributes("event", string_attribute(n.event.name())?)
            .message_attributes("service", string_attribute(n.service.as_str())?);
        if self.fifo {
            publish = publish
                .message_group_id(n.service.as_str())
                .message_deduplication_id(Self::deduplication_id(&n.dedupe_key));
        }
        // The kind is only read for a not-found answer, which `topic_missing` rewrites.
        let call = Call::new("Publish", ResourceKind::Target, &self.topic_arn);
        publish
            .send()
            .await
            .aws(call)
            .map_err(|e| self.topic_missing(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: &Error) -> &str {
        match e {
            Error::InvalidInput { field, .. } => field,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn topic_arns_are_checked_naming_the_field() {
        for good in [
            "arn:aws:sns:us-east-1:123456789012:deployments",
            "arn:aws-cn:sns:cn-north-1:123456789012:web_notify-2",
            "arn:aws-us-gov:sns:us-gov-west-1:123456789012:x",
        ] {
            assert!(!check_topic_arn(good).unwrap(), "{good}");
        }
        assert!(check_topic_arn("arn:aws:sns:eu-west-1:123456789012:deploys.fifo").unwrap());

        let long = format!("arn:aws:sns:us-east-1:123456789012:{}", "a".repeat(257));
        for bad in [
            "",
            "deployments",
            "https://sns.us-east-1.amazonaws.com/deployments",
            "arn:aws:sqs:us-east-1:123456789012:deployments",
            "arn:aws:sns:us-east-1:123456789012",
            "arn:aws:sns:us-east-1:123456789012:deployments:extra",
            "arn::sns:us-east-1:123456789012:deployments",
            "arn:aws:sns::123456789012:deployments",
            "arn:aws:sns:us-east-1:1234:deployments",
            "arn:aws:sns:us-east-1:123456789012:",
            "arn:aws:sns:us-east-1:123456789012:.fifo",
            "arn:aws:sns:us-east-1:123456789012:dep loys",
            "xrn:aws:sns:us-east-1:123456789012:deployments",
            long.as_str(),
        ] {
            let e = check_topic_arn(bad).unwrap_err();
            assert_eq!(field_of(&e), "notify.topic_arn", "{bad}: {e}");
            assert!(
                e.to_string().contains("expected arn:<partition>:sns:"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_fifo_deduplication_id_is_stable_and_valid() {
        let key = "01JEXAMPLE0000000000000000/rolled_back";
        let id = SnsNotifier::deduplication_id(key);
        // Pinned: a release that changed it would let SNS deliver a resumed run's
        // notification twice.
        assert_eq!(
            id,
            "401c97089907a7b7df007be537b697ad1e659c40c4e4ff11d2205b974efc2be9"
        );
        assert_eq!(SnsNotifier::deduplication_id(key), id);
        assert_eq!(id.len(), 64);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_ne!(
            SnsNotifier::deduplication_id("01JEXAMPLE0000000000000000/rollback_started"),
            id
        );
    }

    #[test]
    fn debug_shows_the_topic_and_no_credentials() {
        let client = aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::Config::builder()
                .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
                .region(aws_sdk_sns::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sns::config::Credentials::new(
                    "AKIAEXAMPLEKEY",
                    "very-secret-value",
                    None,
                    None,
                    "test",
                ))
                .build(),
        );
        let arn = "arn:aws:sns:us-east-1:123456789012:deployments";
        let shown = format!("{:?}", SnsNotifier::from_client(client, arn).unwrap());
        assert_eq!(shown, format!("SnsNotifier {{ topic_arn: {arn:?}, .. }}"));
    }

    #[test]
    fn subjects_are_printable_ascii_and_short() {
        assert_eq!(
            sanitize_subject("immutable: web rolled back"),
            "immutable: web rolled back"
        );
        assert_eq!(
            sanitize_subject("immutable: web\nrolled\tback é"),
            "immutable: web?rolled?back ?"
        );
        let long = sanitize_subject(&format!("immutable: {} blue lost", "w".repeat(200)));
        assert_eq!(long.chars().count(), 100);
        assert!(long.starts_with("immutable: www"));
    }
}
