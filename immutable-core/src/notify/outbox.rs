//! [`Outbox`]: a deployment's notifications in its record, with how each delivery went.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{Notification, Trigger};

/// How one notification's delivery to one notifier stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Delivery {
    /// Saved, not delivered yet.
    Pending,
    /// The receiver accepted it.
    Sent {
        /// When.
        at: SystemTime,
        /// Attempts it took.
        attempts: u32,
    },
    /// It could not be delivered; it will not be tried again.
    Failed {
        /// When the last attempt ended.
        at: SystemTime,
        /// Attempts made.
        attempts: u32,
        /// Why the last one failed.
        error: String,
    },
}

impl Delivery {
    /// Whether it is still to be delivered.
    pub fn is_pending(&self) -> bool {
        matches!(self, Delivery::Pending)
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delivery::Pending => f.write_str("pending"),
            Delivery::Sent { attempts: 1, .. } => f.write_str("sent"),
            Delivery::Sent { attempts, .. } => write!(f, "sent after {attempts} attempts"),
            Delivery::Failed {
                attempts, error, ..
            } => {
                let s = if *attempts == 1 { "" } else { "s" };
                write!(f, "failed after {attempts} attempt{s}: {error}")
            }
        }
    }
}

/// One notification in an [`Outbox`], with its delivery to each notifier that wants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Outgoing {
    /// Its [`Notification::dedupe_key`].
    pub key: String,
    /// What it is about.
    pub event: Trigger,
    /// The notification, kept until every delivery has ended (then dropped, to keep the
    /// record small).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Notification>,
    /// Per notifier name.
    pub deliveries: BTreeMap<String, Delivery>,
}

/// A deployment's notifications, in the order they were made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Outbox {
    entries: Vec<Outgoing>,
}

impl Outbox {
    /// Whether nothing was ever notified.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The notifications, in the order they were made.
    pub fn entries(&self) -> &[Outgoing] {
        &self.entries
    }

    /// Whether a notification with this dedupe key was ever made.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.iter().any(|e| e.key == key)
    }

    /// Adds `notification`, pending for each of `notifiers`, unless its key is already here
    /// (a re-run phase made it again). False when it was already here.
    pub(crate) fn push<'a>(
        &mut self,
        notification: Notification,
        notifiers: impl IntoIterator<Item = &'a str>,
    ) -> bool {
        if self.contains(&notification.dedupe_key) {
            return false;
        }
        let deliveries: BTreeMap<_, _> = notifiers
            .into_iter()
            .map(|n| (n.to_owned(), Delivery::Pending))
            .collect();
        if deliveries.is_empty() {
            return false;
        }
        self.entries.push(Outgoing {
            key: notification.dedupe_key.clone(),
            event: notification.event,
            notification: Some(notification),
            deliveries,
        });
        true
    }

    /// Whether any delivery is pending.
    pub fn has_pending(&self) -> bool {
        self.entries
            .iter()
            .any(|e| e.deliveries.values().any(Delivery::is_pending))
    }

    /// Deliveries that failed: notifier, notification, how.
    pub fn failed(&self) -> impl Iterator<Item = (&str, &Outgoing, &Delivery)> {
        self.deliveries()
            .filter(|(_, _, d)| matches!(d, Delivery::Failed { .. }))
    }

    /// Every delivery: notifier, notification, how it stands.
    pub fn deliveries(&self) -> impl Iterator<Item = (&str, &Outgoing, &Delivery)> {
        self.entries.iter().flat_map(|e| {
            e.deliveries
                .iter()
                .map(move |(name, d)| (name.as_str(), e, d))
        })
    }

    /// Pending notifications for `notifier`, oldest first, by index.
    pub(crate) fn pending_for(&self, notifier: &str) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&i| {
                self.entries[i]
                    .deliveries
                    .get(notifier)
                    .is_some_and(Delivery::is_pending)
                    && self.entries[i].notification.is_some()
            })
            .collect()
    }

    pub(crate) fn notification(&self, index: usize) -> Option<&Notification> {
        self.entries.get(index)?.notification.as_ref()
    }

    /// Records how the delivery of entry `index` to `notifier` went; drops the notification
    /// once no delivery of it is pending.
    pub(crate) fn record(&mut self, index: usize, notifier: &str, delivery: Delivery) {
        if let Some(e) = self.entries.get_mut(index) {
            e.deliveries.insert(notifier.to_owned(), delivery);
            if !e.deliveries.values().any(Delivery::is_pending) {
                e.notification = None;
            }
        }
    }
}
