//! [`SlackNotifier`]: a [`Notification`] as a Slack incoming-webhook message, with what a
//! person can do next.

use std::fmt;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::webhook::WebhookNotifier;
use super::{Notification, Notifier, Trigger};
use crate::{Error, Result};

/// Posts each [`Notification`] to a Slack incoming webhook as a readable message
/// ([`slack_message`]): a header, the summary, the deployment's phase, traffic and cause, the
/// CLI commands a person can run next, and a button to the dashboard when one is configured.
///
/// The webhook address is a secret: neither errors nor `Debug` show its path.
#[derive(Clone)]
pub struct SlackNotifier {
    hook: WebhookNotifier,
    links: SlackLinks,
}

/// What a Slack message links to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlackLinks {
    /// The dashboard's address (`immutable dashboard`), for a button to the deployment.
    pub dashboard: Option<String>,
    /// How the commands a message suggests begin (default `immutable`): add the flags that
    /// name your journal, `immutable --store file:/srv/journal` say.
    pub command: Option<String>,
}

impl fmt::Debug for SlackNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackNotifier")
            .field("endpoint", &self.hook.endpoint())
            .field("links", &self.links)
            .finish()
    }
}

impl SlackNotifier {
    /// A notifier for the incoming webhook at `url`.
    ///
    /// # Errors
    /// As [`WebhookNotifier::new`].
    pub fn new(url: &str) -> Result<Self> {
        Ok(SlackNotifier {
            hook: WebhookNotifier::new(url)?,
            links: SlackLinks::default(),
        })
    }

    /// Adds a button to `dashboard`'s page of the deployment.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `notify.dashboard_url` unless it is an http(s) address.
    pub fn with_dashboard(mut self, dashboard: &str) -> Result<Self> {
        super::webhook::parse_url(dashboard).map_err(|_| {
            Error::invalid(
                "notify.dashboard_url",
                format!("`{dashboard}` is not an http or https address"),
            )
        })?;
        self.links.dashboard = Some(dashboard.trim_end_matches('/').to_owned());
        Ok(self)
    }

    /// Begins the suggested commands with `command` instead of `immutable`.
    pub fn with_command(mut self, command: impl Into<String>) -> Self {
        self.links.command = Some(command.into());
        self
    }
}

#[async_trait]
impl Notifier for SlackNotifier {
    async fn send(&self, notification: &Notification) -> Result<()> {
        self.hook
            .post(&slack_message(notification, &self.links))
            .await
    }
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// At most `max` characters, with an ellipsis when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push('…');
    s
}

/// The commands a person can run next, for this notification.
fn next_commands(n: &Notification, command: &str) -> Vec<(String, &'static str)> {
    let svc = format!("{command} --service {}", n.service);
    let id = &n.deployment;
    let c = |args: String, why| (format!("{svc} {args}"), why);
    match n.event {
        Trigger::ApprovalWaiting | Trigger::ApprovalReminder => vec![
            c(format!("approve {id}"), "let it go on"),
            c(format!("reject {id} --reason \"...\""), "roll it back"),
            c(format!("status {id}"), "see where it stands"),
        ],
        Trigger::Started | Trigger::StepPassed | Trigger::HaltLifted => vec![
            c(format!("watch {id}"), "follow it"),
            c(format!("abort {id} --reason \"...\""), "roll it back"),
        ],
        Trigger::Halted => vec![
            c("lift-halt".into(), "let it go on"),
            c(format!("abort {id} --reason \"...\""), "roll it back"),
        ],
        Trigger::BlueLost => vec![
            c(format!("status {id}"), "see both fleets"),
            c(format!("watch {id}"), "follow the bake"),
        ],
        Trigger::RollbackStarted => vec![c(format!("watch {id}"), "follow the rollback")],
        Trigger::Stopped => vec![
            c(format!("status {id}"), "see how the fleets stand"),
            c(
                "rollback --redeploy".into(),
                "deploy the previous image again",
            ),
        ],
        Trigger::RolledBack | Trigger::Succeeded => vec![
            c(
                format!("report {id} --format html --out report.html"),
                "see what happened",
            ),
            c("history".into(), "see the service's deployments"),
        ],
        Trigger::Test => vec![c("status".into(), "see the latest deployment")],
    }
}

/// The Slack incoming-webhook message for `n`: a `text` fallback (for notifications and
/// clients without blocks) and Block Kit blocks within Slack's documented limits (header
/// text at most 150 characters, section text at most 3,000, at most 10 fields).
pub fn slack_message(n: &Notification, links: &SlackLinks) -> Value {
    let icon = match n.event {
        Trigger::Succeeded => ":white_check_mark:",
        Trigger::RolledBack | Trigger::RollbackStarted => ":leftwards_arrow_with_hook:",
        Trigger::Stopped | Trigger::BlueLost => ":rotating_light:",
        Trigger::ApprovalWaiting | Trigger::ApprovalReminder => ":raised_hand:",
        Trigger::Halted => ":octagonal_sign:",
        _ => ":arrows_counterclockwise:",
    };
    let header = cut(&format!("{}: {}", n.service, n.event), 150);
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": format!("*Deployment*\n`{}`", n.deployment)}),
        json!({"type": "mrkdwn", "text": format!("*Image*\n`{}`", escape(n.image.as_str()))}),
        json!({"type": "mrkdwn", "text": format!("*Phase*\n{}", n.phase)}),
        json!({"type": "mrkdwn", "text": format!("*Traffic on the new fleet*\n{}%", n.weight)}),
    ];
    if let Some(step) = &n.step {
        let text = format!("*Step*\n{}: {}", step.index + 1, escape(&step.description));
        fields.push(json!({"type": "mrkdwn", "text": cut(&text, 2000)}));
    }
    if let Some(cause) = &n.cause {
        let text = format!("*Cause*\n{}", escape(cause));
        fields.push(json!({"type": "mrkdwn", "text": cut(&text, 2000)}));
    }
    if let Some(halt) = &n.halt {
        let text = format!(
            "*Halted by*\n{}: {}",
            escape(&halt.by),
            escape(&halt.reason)
        );
        fields.push(json!({"type": "mrkdwn", "text": cut(&text, 2000)}));
    }
    if let Some(approval) = &n.approval {
        let at = humantime::format_rfc3339_seconds(approval.deadline);
        fields.push(json!({"type": "mrkdwn", "text": format!("*Gate times out*\n{at}")}));
    }
    let command = links.command.as_deref().unwrap_or("immutable");
    let next: Vec<String> = next_commands(n, command)
        .into_iter()
        .map(|(cmd, why)| format!("• {why}: `{}`", escape(&cmd)))
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
        json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": cut(&format!("{icon} {}", escape(&n.summary)), 3000)},
            "fields": fields,
        }),
        json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": cut(&format!("*What you can do*\n{}", next.join("\n")), 3000)},
        }),
    ];
    if let Some(dashboard) = &links.dashboard {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": "Open in the dashboard"},
                "url": format!("{dashboard}/deployments/{}", n.deployment),
            }],
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": cut(&format!("{} · `{}`", n.event.name(), escape(&n.dedupe_key)), 3000)}],
    }));
    json!({ "text": cut(&n.summary, 3000), "blocks": blocks })
}
