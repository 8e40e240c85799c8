//! Slack messages checked against Slack's documented incoming-webhook format (a JSON Schema
//! written from Slack's Block Kit reference, in `slack-incoming-webhook.schema.json`), for
//! every trigger, with long texts, and with and without a dashboard.

use std::time::{Duration, SystemTime};

use immutable_core::notify::{SlackLinks, slack_message};
use immutable_core::{Notification, ServiceName, Trigger};
use serde_json::Value;

fn validator() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(include_str!("slack-incoming-webhook.schema.json")).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn every_kind_of_notification() -> Vec<Notification> {
    let web = ServiceName::new("web").unwrap();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let long = "x<&>".repeat(2000);
    let mut all = Vec::new();
    for trigger in Trigger::ALL.into_iter().chain([Trigger::Test]) {
        let mut n = Notification::test(&web, at);
        n.event = trigger;
        all.push(n.clone());
        // Every optional part, with texts far over Slack's limits and characters mrkdwn
        // must escape.
        n.cause = Some(long.clone());
        all.push(
            n.with_step(3, long.clone())
                .with_halt("alice", long.clone())
                .with_deadline(at + Duration::from_secs(1800)),
        );
    }
    all
}

#[test]
fn every_message_is_a_valid_slack_incoming_webhook_payload() {
    let v = validator();
    let mut dashboard = SlackLinks::default();
    dashboard.dashboard = Some("http://127.0.0.1:8080".into());
    dashboard.command = Some("immutable --store file:/srv/journal".into());
    let mut checked = 0;
    for n in every_kind_of_notification() {
        for links in [&SlackLinks::default(), &dashboard] {
            let message = slack_message(&n, links);
            let errors: Vec<String> = v.iter_errors(&message).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:?}\n{message:#}", n.event);
            checked += 1;
        }
    }
    assert_eq!(checked, 4 * (Trigger::ALL.len() + 1));
}

#[test]
fn the_schema_refuses_what_slack_refuses() {
    // The schema is only worth something if it fails: a header over 150 characters, a
    // section without text or fields, an unknown block type.
    let v = validator();
    let header = serde_json::json!({"text": "t", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}}]});
    let empty = serde_json::json!({"text": "t", "blocks": [{"type": "section"}]});
    let unknown = serde_json::json!({"text": "t", "blocks": [{"type": "table"}]});
    for bad in [header, empty, unknown] {
        assert!(!v.is_valid(&bad), "{bad}");
    }
}

#[test]
fn a_gate_message_says_how_to_approve_and_links_the_dashboard() {
    let web = ServiceName::new("web").unwrap();
    let mut n = Notification::test(&web, SystemTime::now());
    n.event = Trigger::ApprovalWaiting;
    let mut links = SlackLinks::default();
    links.dashboard = Some("https://deploys.example.com".into());
    let text = slack_message(&n, &links).to_string();
    let id = n.deployment.to_string();
    assert!(
        text.contains(&format!("immutable --service web approve {id}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("immutable --service web reject {id}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("https://deploys.example.com/deployments/{id}")),
        "{text}"
    );
}
