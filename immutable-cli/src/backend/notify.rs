//! The service file's `[[notify]]` tables, made into the engine's notifiers.

use immutable_core::notify::{SlackNotifier, WebhookNotifier};
use immutable_core::{Notifier, Notify};

use crate::config::{Config, NotifyKind, NotifyTable};
use crate::exit::Failure;

/// One notifier per `[[notify]]` table, with its triggers, timeout and reminder lead.
pub(crate) async fn notifiers(config: &Config) -> Result<Vec<Notify>, Failure> {
    let mut all = Vec::with_capacity(config.notify.len());
    for table in &config.notify {
        all.push(notifier(config, table).await?);
    }
    Ok(all)
}

async fn notifier(config: &Config, table: &NotifyTable) -> Result<Notify, Failure> {
    let triggers = table.check()?;
    // The table's key, for an error of the library's field `notify.<key>`.
    let named = |e: immutable_core::Error| {
        let field = match &e {
            immutable_core::Error::InvalidInput { field, .. } => {
                format!("`{}`: ", field.trim_start_matches("notify."))
            }
            _ => String::new(),
        };
        Failure::refused(format!(
            "[[notify]] `{}`: {field}{}",
            table.name,
            crate::exit::reason(e)
        ))
    };
    let notifier: std::sync::Arc<dyn Notifier> = match table.kind {
        NotifyKind::Webhook => {
            std::sync::Arc::new(WebhookNotifier::new(&table.address()?).map_err(named)?)
        }
        NotifyKind::Slack => {
            let mut slack = SlackNotifier::new(&table.address()?).map_err(named)?;
            if let Some(url) = &table.dashboard_url {
                slack = slack.with_dashboard(url).map_err(named)?;
            }
            if let Some(command) = &table.command {
                slack = slack.with_command(command);
            }
            std::sync::Arc::new(slack)
        }
        NotifyKind::Sns => {
            let arn = table.topic_arn.as_deref().unwrap_or_default();
            let clients = super::aws_clients_in_region(&config.aws).await?;
            std::sync::Arc::new(immutable_aws::SnsNotifier::new(&clients, arn).map_err(named)?)
        }
    };
    let mut notify = Notify::shared(&table.name, notifier)
        .map_err(named)?
        .on(triggers);
    if let Some(t) = table.timeout {
        notify = notify.timeout(t);
    }
    if let Some(lead) = table.remind_before {
        notify = notify.remind_before(lead);
    }
    Ok(notify)
}
