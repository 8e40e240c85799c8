//! `[[notify]]` tables of the service file: who is told about the service's deployments.
//!
//! ```toml
//! [[notify]]
//! name = "ops"                       # its key in records and in `status`
//! kind = "slack"                     # "webhook", "slack" or "sns"
//! url_env = "OPS_SLACK_WEBHOOK"      # the address, from the environment (it is a secret)
//! on = ["approval_waiting", "approval_reminder", "rolled_back", "stopped", "blue_lost"]
//! timeout = "10s"                    # at most this per notification, retries included
//! remind_before = "5m"               # the approval reminder's lead
//! dashboard_url = "http://127.0.0.1:8080"   # Slack: a button to the deployment's page
//!
//! [[notify]]
//! name = "audit"
//! kind = "sns"
//! topic_arn = "arn:aws:sns:us-east-1:123456789012:deployments"
//! ```

use std::time::Duration;

use immutable_core::Trigger;
use serde::Deserialize;

use crate::exit::Failure;

/// What kind of notifier a `[[notify]]` table describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NotifyKind {
    /// The JSON payload, POSTed.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// An Amazon SNS topic (credentials and region from the AWS chain and `[aws]`).
    Sns,
}

/// One `[[notify]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotifyTable {
    pub(crate) name: String,
    pub(crate) kind: NotifyKind,
    /// The address, written in the file (prefer `url_env`: addresses of webhooks are
    /// secrets).
    #[serde(default)]
    pub(crate) url: Option<String>,
    /// The environment variable that holds the address.
    #[serde(default)]
    pub(crate) url_env: Option<String>,
    #[serde(default)]
    pub(crate) topic_arn: Option<String>,
    /// Trigger names; default all.
    #[serde(default)]
    pub(crate) on: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::cli::opt_duration")]
    pub(crate) timeout: Option<Duration>,
    #[serde(default, deserialize_with = "crate::cli::opt_duration")]
    pub(crate) remind_before: Option<Duration>,
    #[serde(default)]
    pub(crate) dashboard_url: Option<String>,
    /// How the commands a Slack message suggests begin (default `immutable`).
    #[serde(default)]
    pub(crate) command: Option<String>,
}

impl NotifyTable {
    /// Checks what can be checked without the network: the fields this kind needs, and the
    /// trigger names. Errors name the table and the field.
    pub(crate) fn check(&self) -> Result<Vec<Trigger>, Failure> {
        let at = |field: &str| format!("[[notify]] `{}`: `{field}`", self.name);
        let needs_url = matches!(self.kind, NotifyKind::Webhook | NotifyKind::Slack);
        match (needs_url, &self.url, &self.url_env, &self.topic_arn) {
            (true, Some(_), Some(_), _) => {
                return Err(Failure::refused(format!(
                    "{}: give `url` or `url_env`, not both",
                    at("url")
                )));
            }
            (true, None, None, _) => {
                return Err(Failure::refused(format!(
                    "{}: a {} notifier needs its address: `url_env = \"VAR\"` (the variable \
                     that holds it; addresses of webhooks are secrets) or `url`",
                    at("url_env"),
                    self.kind_word()
                )));
            }
            (true, _, _, Some(_)) => {
                return Err(Failure::refused(format!(
                    "{}: only an sns notifier takes a topic",
                    at("topic_arn")
                )));
            }
            (false, None, None, None) => {
                return Err(Failure::refused(format!(
                    "{}: an sns notifier needs `topic_arn`",
                    at("topic_arn")
                )));
            }
            (false, Some(_), _, _) | (false, _, Some(_), _) => {
                return Err(Failure::refused(format!(
                    "{}: an sns notifier takes `topic_arn`, not an address",
                    at("url")
                )));
            }
            _ => {}
        }
        if self.kind != NotifyKind::Slack
            && (self.dashboard_url.is_some() || self.command.is_some())
        {
            return Err(Failure::refused(format!(
                "{}: only a slack notifier takes `dashboard_url` and `command`",
                at("dashboard_url")
            )));
        }
        match &self.on {
            None => Ok(Trigger::ALL.to_vec()),
            Some(names) => names
                .iter()
                .map(|n| {
                    n.parse::<Trigger>().map_err(|e| {
                        Failure::refused(format!("{}: {}", at("on"), crate::exit::reason(e)))
                    })
                })
                .collect(),
        }
    }

    /// The webhook's address, from the file or the environment. The message of an error
    /// names the variable, never a value.
    pub(crate) fn address(&self) -> Result<String, Failure> {
        match (&self.url, &self.url_env) {
            (Some(url), _) => Ok(url.clone()),
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                Failure::refused(format!(
                    "[[notify]] `{}`: `url_env`: the environment variable {var} is not set (or \
                     not UTF-8): set it to the {} address",
                    self.name,
                    self.kind_word()
                ))
            }),
            (None, None) => Err(Failure::refused(format!(
                "[[notify]] `{}`: no address",
                self.name
            ))),
        }
    }

    pub(crate) fn kind_word(&self) -> &'static str {
        match self.kind {
            NotifyKind::Webhook => "webhook",
            NotifyKind::Slack => "slack",
            NotifyKind::Sns => "sns",
        }
    }
}
