//! `immutable notify test`: a test message to each notifier of the service file, and how
//! each answered.

use std::time::SystemTime;

use immutable_core::notify::{Delivery, send_once};
use immutable_core::{Notification, ServiceName};

use crate::config::Config;
use crate::exit::{Code, Failure};
use crate::output::{Document, NotifyTestDoc, NotifyTestRow};

/// Sends the test message to every notifier at once; exit 1 when one could not be reached.
#[allow(clippy::print_stdout)] // the program's output
pub(crate) async fn test(config: &Config, json: bool) -> Result<Code, Failure> {
    if config.notify.is_empty() {
        return Err(Failure::refused(
            "no notifier to test: the service file (--service-file) has no [[notify]] table; \
             the README's \"Notifications\" shows one",
        ));
    }
    let service = ServiceName::new(config.service()?)?;
    let notifiers = crate::backend::notifiers(config).await?;
    let message = Notification::test(&service, SystemTime::now());
    let sent = futures::future::join_all(notifiers.iter().map(|n| send_once(n, &message))).await;
    let rows: Vec<NotifyTestRow> = config
        .notify
        .iter()
        .zip(sent)
        .map(|(table, delivery)| {
            let (delivered, attempts, error) = match delivery {
                Delivery::Sent { attempts, .. } => (true, attempts, None),
                Delivery::Failed {
                    attempts, error, ..
                } => (false, attempts, Some(error)),
                _ => (false, 0, Some("not sent".to_owned())),
            };
            NotifyTestRow {
                name: table.name.clone(),
                kind: table.kind_word().to_owned(),
                delivered,
                attempts,
                error,
            }
        })
        .collect();
    let failed = rows.iter().filter(|r| !r.delivered).count();
    if json {
        Document::NotifyTest(NotifyTestDoc {
            service: service.to_string(),
            notifiers: rows,
        })
        .print();
    } else {
        for r in &rows {
            match &r.error {
                None => println!("{} ({}): delivered", r.name, r.kind),
                Some(e) => println!(
                    "{} ({}): not delivered after {} attempt{}: {e}",
                    r.name,
                    r.kind,
                    r.attempts,
                    if r.attempts == 1 { "" } else { "s" }
                ),
            }
        }
    }
    Ok(if failed == 0 {
        Code::Succeeded
    } else {
        Code::Error
    })
}
