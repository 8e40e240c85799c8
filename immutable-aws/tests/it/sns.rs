//! `SnsNotifier` on moto's SNS and SQS: a deployment on the mock that rolls back tells a
//! topic, and the topic's SQS subscription receives the rollback, once per dedupe key; a FIFO
//! topic drops a notification delivered again; a missing topic fails for good. Its error
//! mapping, scripted with aws-smithy-mocks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::Account;
use async_trait::async_trait;
use aws_sdk_sns::operation::publish::{PublishError, PublishOutput};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, create_mock_http_client, mock};
use aws_smithy_types::error::ErrorMetadata;
use immutable_aws::{AwsClients, SnsNotifier};
use immutable_core::notify::Delivery;
use immutable_core::{
    Check, CheckContext, CheckOutcome, Engine, Error, InMemoryStore, Notification, Notifier,
    Notify, Outcome, Settings, StateStore, Steps, Trigger,
};
use immutable_mock::{MockCloud, Timings};
use immutable_testkit::regions::{failed_check, web};

/// The check that fails every time, as a broken release's error rate would.
#[derive(Debug)]
struct Fails;

#[async_trait]
impl Check for Fails {
    async fn run(&self, _: &CheckContext<'_>) -> CheckOutcome {
        CheckOutcome::fail("7% of requests failed")
    }
}

/// Real-time settings for a deployment of well under a second on an instant mock.
fn fast() -> Settings {
    Settings::default()
        .with_poll_interval(Duration::from_millis(10))
        .with_poll_ceiling(Duration::from_millis(50))
}

/// A topic named `name` and a queue of the same name subscribed to it, in the clients'
/// account: the topic's ARN and the queue's URL. `.fifo` names make both FIFO.
async fn topic_with_queue(clients: &AwsClients, name: &str, raw: bool) -> (String, String) {
    let fifo = name.ends_with(".fifo");
    let sns = clients.sns();
    let sqs = aws_sdk_sqs::Client::new(&clients.sdk);
    let mut topic = sns.create_topic().name(name);
    let mut queue = sqs.create_queue().queue_name(name);
    if fifo {
        topic = topic.attributes("FifoTopic", "true");
        queue = queue.attributes(QueueAttributeName::FifoQueue, "true");
    }
    let topic_arn = topic.send().await.unwrap().topic_arn.unwrap();
    let queue_url = queue.send().await.unwrap().queue_url.unwrap();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let queue_arn = attributes[&QueueAttributeName::QueueArn].clone();
    let mut subscribe = sns
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn);
    if raw {
        subscribe = subscribe.attributes("RawMessageDelivery", "true");
    }
    subscribe.send().await.unwrap();
    (topic_arn, queue_url)
}

/// Every message in the queue: received until the queue has `at_least` and then answers
/// empty once (so a duplicate would be seen), within 20 s.
async fn drain(clients: &AwsClients, queue_url: &str, at_least: usize) -> Vec<Message> {
    let sqs = aws_sdk_sqs::Client::new(&clients.sdk);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut received = Vec::new();
    loop {
        let batch = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if batch.is_empty() && received.len() >= at_least {
            return received;
        }
        received.extend(batch);
        assert!(
            Instant::now() < deadline,
            "{} of at least {at_least} messages within 20 s: {received:#?}",
            received.len()
        );
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A notification of `event` about deployment `01JEXAMPLE0000000000000000` of `web`, as a
/// receiver would parse it.
fn example(event: Trigger) -> Notification {
    serde_json::from_value(serde_json::json!({
        "version": 1,
        "dedupe_key": format!("01JEXAMPLE0000000000000000/{}", event.name()),
        "event": event,
        "at": "2026-12-07T10:41:07.123Z",
        "deployment": "01JEXAMPLE0000000000000000",
        "service": "web",
        "image": "img-4f2a",
        "phase": "rolling_back",
        "weight": 50,
        "cause": "check `errors` failed at 50%: 7% of requests failed",
        "summary": "web: deployment 01JEXAMPLE0000000000000000 is rolling back",
    }))
    .unwrap()
}

// The envelope received is printed: what a subscriber of the topic reads.
#[allow(clippy::print_stdout)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_reaches_an_sqs_queue_through_the_topic_once_per_dedupe_key() {
    let clients = Account::fresh().clients().await;
    let (topic_arn, queue_url) = topic_with_queue(&clients, "deployments", false).await;

    let cloud = MockCloud::with_timings(Timings::instant());
    cloud.add_image("web", "web-v1");
    cloud.add_image("web", "web-v2");
    let store = InMemoryStore::new();
    let quiet = Engine::builder()
        .backends(cloud.backends())
        .store(store.clone())
        .settings(fast())
        .build()
        .unwrap();
    assert!(quiet.deploy(web("web-v1")).await.unwrap().succeeded());

    let sns = SnsNotifier::new(&clients, &topic_arn).unwrap();
    assert_eq!(
        format!("{sns:?}"),
        format!("SnsNotifier {{ topic_arn: {topic_arn:?}, .. }}")
    );
    let engine = Engine::builder()
        .backends(cloud.backends())
        .store(store.clone())
        .settings(fast())
        .check("errors", Fails)
        .notify(
            Notify::new("sns", sns)
                .unwrap()
                .on([Trigger::RollbackStarted, Trigger::RolledBack]),
        )
        .build()
        .unwrap();
    let canary = Steps::canary([20, 100], Duration::from_millis(50))
        .with_checks(Vec::<String>::new(), ["errors"]);
    let report = engine.deploy(web("web-v2").strategy(canary)).await.unwrap();
    assert_eq!(failed_check(&report, "errors", 20), "7% of requests failed");
    let Outcome::RolledBack { cause } = &report.outcome else {
        unreachable!("failed_check saw a rollback")
    };
    let id = report.record.id.clone();

    let messages = drain(&clients, &queue_url, 2).await;
    let mut per_key = BTreeMap::new();
    let mut rolled_back = None;
    for m in &messages {
        let envelope = json(m.body().unwrap());
        assert_eq!(envelope["Type"], "Notification", "{envelope:#}");
        assert_eq!(envelope["TopicArn"], topic_arn.as_str());
        let payload = json(envelope["Message"].as_str().unwrap());
        *per_key
            .entry(payload["dedupe_key"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
        if payload["event"] == "rolled_back" {
            rolled_back = Some((envelope, payload));
        }
    }
    assert_eq!(
        per_key,
        BTreeMap::from([
            (format!("{id}/rollback_started"), 1),
            (format!("{id}/rolled_back"), 1),
        ]),
        "the two wanted notifications, each once"
    );

    let (envelope, payload) = rolled_back.unwrap();
    println!("SNS envelope of the rollback: {envelope:#}");
    assert_eq!(envelope["Subject"], "immutable: web rolled back");
    assert_eq!(
        envelope["MessageAttributes"],
        serde_json::json!({
            "event": { "Type": "String", "Value": "rolled_back" },
            "service": { "Type": "String", "Value": "web" },
        })
    );
    assert_eq!(payload["version"], 1);
    assert_eq!(payload["deployment"], id.to_string());
    assert_eq!(payload["service"], "web");
    assert_eq!(payload["dedupe_key"], format!("{id}/rolled_back"));
    assert_eq!(payload["cause"], cause.to_string());
    assert!(
        cause.to_string().contains("7% of requests failed"),
        "{cause}"
    );
    let parsed: Notification = serde_json::from_value(payload).unwrap();
    assert_eq!(
        (parsed.event, &parsed.deployment),
        (Trigger::RolledBack, &id)
    );

    let record = store.load(&id).await.unwrap();
    let deliveries: Vec<_> = record.notifications.deliveries().collect();
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    for (name, out, delivery) in deliveries {
        assert_eq!(name, "sns");
        assert!(
            matches!(delivery, Delivery::Sent { attempts: 1, .. }),
            "{}: {delivery}",
            out.key
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_topic_drops_a_notification_delivered_again() {
    let clients = Account::fresh().clients().await;
    let (topic_arn, queue_url) = topic_with_queue(&clients, "deployments.fifo", true).await;
    let sns = SnsNotifier::new(&clients, &topic_arn).unwrap();
    assert!(sns.is_fifo());

    // As after a crash between SNS's answer and the save that records it: the same
    // notification, under the same dedupe key, published again.
    let started = example(Trigger::RollbackStarted);
    let ended = example(Trigger::RolledBack);
    for n in [&started, &started, &ended] {
        sns.send(n).await.unwrap();
    }

    let messages = drain(&clients, &queue_url, 2).await;
    let keys: Vec<_> = messages
        .iter()
        .map(|m| {
            json(m.body().unwrap())["dedupe_key"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        keys,
        [started.dedupe_key.as_str(), ended.dedupe_key.as_str()],
        "each once, in order"
    );
    for (m, n) in messages.iter().zip([&started, &ended]) {
        let attributes = m.attributes().unwrap();
        assert_eq!(
            attributes[&MessageSystemAttributeName::MessageGroupId],
            "web"
        );
        assert_eq!(
            attributes[&MessageSystemAttributeName::MessageDeduplicationId],
            SnsNotifier::deduplication_id(&n.dedupe_key)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_that_does_not_exist_fails_for_good_naming_it() {
    let account = Account::fresh();
    let clients = account.clients().await;
    let arn = format!("arn:aws:sns:us-east-1:{}:nobody-made-this", account.id);
    let sns = SnsNotifier::new(&clients, &arn).unwrap();
    let e = sns.send(&example(Trigger::RolledBack)).await.unwrap_err();
    assert!(matches!(e, Error::Provider { .. }), "{e:?}");
    assert!(!e.is_retryable(), "{e}");
    assert!(e.to_string().contains(&arn), "{e}");
}

#[test]
fn a_malformed_topic_arn_is_refused_naming_the_field() {
    let rule = mock!(aws_sdk_sns::Client::publish).then_output(|| PublishOutput::builder().build());
    let e = SnsNotifier::from_client(scripted(&rule), "arn:aws:sqs:us-east-1:123456789012:q")
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidInput { ref field, .. } if field == "notify.topic_arn"),
        "{e}"
    );
}

/// A client whose `Publish` answers follow `rule`.
fn scripted(rule: &aws_smithy_mocks::Rule) -> aws_sdk_sns::Client {
    let interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::Sequential)
        .with_rule(rule);
    aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::Config::builder()
            .region(aws_sdk_sns::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sns::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .http_client(create_mock_http_client())
            .interceptor(interceptor)
            .build(),
    )
}

fn publish_error(code: &str) -> PublishError {
    PublishError::generic(
        ErrorMetadata::builder()
            .code(code)
            .message("scripted")
            .build(),
    )
}

#[tokio::test]
async fn sns_errors_map_to_retryable_or_final() {
    let arn = "arn:aws:sns:us-east-1:123456789012:deployments";
    let n = example(Trigger::RolledBack);
    let send = |code: &'static str| async move {
        let rule = mock!(aws_sdk_sns::Client::publish).then_error(move || publish_error(code));
        SnsNotifier::from_client(scripted(&rule), arn)
            .unwrap()
            .send(&example(Trigger::RolledBack))
            .await
            .unwrap_err()
    };
    for code in ["Throttled", "KMSThrottling"] {
        let e = send(code).await;
        assert!(matches!(e, Error::Throttled { .. }), "{code}: {e:?}");
        assert!(e.is_retryable());
    }
    let e = send("InternalError").await;
    assert!(e.is_retryable(), "{e:?}");
    let e = send("AuthorizationError").await;
    assert!(!e.is_retryable(), "{e:?}");
    assert!(e.to_string().contains("IAM policy"), "{e}");
    let e = send("InvalidParameter").await;
    assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");

    let rule = mock!(aws_sdk_sns::Client::publish)
        .match_requests(move |r| {
            r.topic_arn() == Some(arn)
                && r.subject() == Some("immutable: web rolled back")
                && r.message_group_id().is_none()
                && r.message_deduplication_id().is_none()
        })
        .then_output(|| PublishOutput::builder().message_id("m-1").build());
    SnsNotifier::from_client(scripted(&rule), arn)
        .unwrap()
        .send(&n)
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 1);
}
