//! Delivering an outbox: each notifier its pending notifications in order, notifiers
//! concurrently, every delivery bounded by its notifier's timeout.

use std::time::Duration;

use futures::future::join_all;

use super::{Delivery, Notification, Notify, Outbox};
use crate::Clock;

/// Attempts per notification, within its timeout.
const MAX_ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Sends `n` to `notify`, retrying retryable errors with backoff, all within its timeout.
pub(crate) async fn deliver(notify: &Notify, n: &Notification, clock: &dyn Clock) -> Delivery {
    let mut attempts = 0u32;
    let mut last_error: Option<String> = None;
    let work = async {
        let mut backoff = FIRST_BACKOFF;
        loop {
            attempts += 1;
            match notify.notifier().send(n).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retryable() && attempts < MAX_ATTEMPTS => {
                    last_error = Some(e.to_string());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    let outcome = tokio::time::timeout(notify.timeout_value(), work).await;
    let at = clock.now();
    match outcome {
        Ok(Ok(())) => Delivery::Sent { at, attempts },
        Ok(Err(error)) => Delivery::Failed {
            at,
            attempts,
            error,
        },
        Err(_) => {
            let waited = humantime::format_duration(notify.timeout_value());
            let error = match last_error {
                Some(e) => format!("no success within {waited} (last error: {e})"),
                None => format!("no answer within {waited}"),
            };
            Delivery::Failed {
                at,
                attempts,
                error,
            }
        }
    }
}

/// Delivers what `outbox` holds pending for the registered `notifiers`, and records how each
/// delivery went. True when anything changed (the record needs saving). Pending deliveries
/// to notifiers not registered here stay pending.
pub(crate) async fn deliver_outbox(
    notifiers: &[Notify],
    outbox: &mut Outbox,
    clock: &dyn Clock,
) -> bool {
    let work: Vec<_> = notifiers
        .iter()
        .map(|notify| {
            let pending: Vec<(usize, Notification)> = outbox
                .pending_for(notify.name())
                .into_iter()
                .filter_map(|i| outbox.notification(i).map(|n| (i, n.clone())))
                .collect();
            async move {
                let mut done = Vec::with_capacity(pending.len());
                for (i, n) in pending {
                    done.push((i, deliver(notify, &n, clock).await));
                }
                (notify.name(), done)
            }
        })
        .collect();
    let mut changed = false;
    for (name, done) in join_all(work).await {
        for (i, delivery) in done {
            outbox.record(i, name, delivery);
            changed = true;
        }
    }
    changed
}
