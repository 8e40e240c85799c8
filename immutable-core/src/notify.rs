//! Notifications: people told when a deployment needs someone or changes course.
//!
//! # Expected flow
//! Register a [`Notify`] per notifier on the builder
//! ([`EngineBuilder::notify`](crate::EngineBuilder::notify)): a [`Notifier`] (a JSON
//! [`WebhookNotifier`], a [`SlackNotifier`], Amazon SNS in `immutable-aws`, or your own), the
//! [`Trigger`]s it wants, and how long one delivery may take. When a deployment reaches a
//! trigger, the engine makes a [`Notification`], writes it into the deployment's record (its
//! [`Outbox`]) with the save that records the change, and only then delivers it, to each
//! notifier in the order the notifications were made.
//!
//! # Guarantees
//! - Never announces what was not saved: a notification leaves after the journal write that
//!   records its change, and describes the record as saved.
//! - Exactly once per notification and notifier across crashes: the outbox records what was
//!   delivered, a resumed run delivers what its predecessor left pending (and a finished
//!   deployment's leftovers on [`Engine::resume`](crate::Engine::resume)), and a notification
//!   made again by a re-run phase has the same [`Notification::dedupe_key`], which the outbox
//!   already holds. The one window left is a crash between a receiver's answer and the save
//!   that records it: the receiver then gets the notification again under the same dedupe key,
//!   so that it can drop it.
//! - Never fails a deployment, and delays it by at most [`Notify::timeout`] per notification
//!   (notifiers are served concurrently): retryable failures are retried with backoff within
//!   that time, and a notification that could not be delivered is recorded as failed, with
//!   why, in the record's outbox, where [`Status`](crate::Status) shows it.
//!
//! # Caveats
//! A notification is delivered by the process that runs the deployment; a deployment nobody
//! runs sends nothing until it is resumed.

mod outbox;
mod payload;
#[cfg(feature = "notify-webhook")]
mod slack;
#[cfg(feature = "notify-webhook")]
mod webhook;

pub(crate) mod deliver;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use outbox::{Delivery, Outbox, Outgoing};
pub use payload::{ApprovalNote, HaltNote, Notification, StepNote};
#[cfg(feature = "notify-webhook")]
pub use slack::{SlackLinks, SlackNotifier, slack_message};
#[cfg(feature = "notify-webhook")]
pub use webhook::WebhookNotifier;

use crate::{Error, Result};

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Trigger {
    /// A deployment was planned and starts.
    Started,
    /// A deployment waits for someone's approval.
    ApprovalWaiting,
    /// An approval gate will time out soon ([`Notify::remind_before`]).
    ApprovalReminder,
    /// A strategy step finished and the rollout goes on.
    StepPassed,
    /// A rollback began (the notification carries the cause).
    RollbackStarted,
    /// A rollback ended: the old fleet serves, nothing of the new one remains.
    RolledBack,
    /// A rollback found no way back: the deployment stopped with both fleets kept, and needs
    /// someone.
    Stopped,
    /// The deployment finished: the new fleet serves.
    Succeeded,
    /// A halt stopped the deployment from advancing.
    Halted,
    /// The halt was lifted and the deployment goes on.
    HaltLifted,
    /// The old fleet lost its healthy instances during the bake: there is no fast way back.
    BlueLost,
    /// A test message (`immutable notify test`), never sent by a deployment.
    Test,
}

impl Trigger {
    /// Every trigger a deployment sends, in the order a deployment meets them.
    pub const ALL: [Trigger; 11] = [
        Trigger::Started,
        Trigger::ApprovalWaiting,
        Trigger::ApprovalReminder,
        Trigger::StepPassed,
        Trigger::Halted,
        Trigger::HaltLifted,
        Trigger::BlueLost,
        Trigger::RollbackStarted,
        Trigger::RolledBack,
        Trigger::Stopped,
        Trigger::Succeeded,
    ];

    /// Its name in payloads and service files (`approval_waiting`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Started => "started",
            Trigger::ApprovalWaiting => "approval_waiting",
            Trigger::ApprovalReminder => "approval_reminder",
            Trigger::StepPassed => "step_passed",
            Trigger::RollbackStarted => "rollback_started",
            Trigger::RolledBack => "rolled_back",
            Trigger::Stopped => "stopped",
            Trigger::Succeeded => "succeeded",
            Trigger::Halted => "halted",
            Trigger::HaltLifted => "halt_lifted",
            Trigger::BlueLost => "blue_lost",
            Trigger::Test => "test",
        }
    }

    /// Whether someone should act now (a gate, a deployment stopped, the way back lost).
    pub fn needs_someone(self) -> bool {
        matches!(
            self,
            Trigger::ApprovalWaiting
                | Trigger::ApprovalReminder
                | Trigger::Stopped
                | Trigger::BlueLost
        )
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trigger::Started => "deployment started",
            Trigger::ApprovalWaiting => "waiting for approval",
            Trigger::ApprovalReminder => "approval about to time out",
            Trigger::StepPassed => "step passed",
            Trigger::RollbackStarted => "rollback started",
            Trigger::RolledBack => "rolled back",
            Trigger::Stopped => "stopped without a way back",
            Trigger::Succeeded => "succeeded",
            Trigger::Halted => "halted",
            Trigger::HaltLifted => "halt lifted",
            Trigger::BlueLost => "old fleet lost during the bake",
            Trigger::Test => "test message",
        })
    }
}

impl FromStr for Trigger {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Trigger::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Trigger::ALL.iter().map(|t| t.name()).collect();
                Error::invalid(
                    "triggers",
                    format!(
                        "`{s}` is not a trigger; expected one of {}",
                        names.join(", ")
                    ),
                )
            })
    }
}

/// Delivers notifications somewhere people read them.
///
/// # Guarantees expected
/// `send` returns once the receiver has accepted the notification, or with an error: a
/// retryable one ([`Error::is_retryable`]: throttling, 5xx, a dropped connection) is tried
/// again within the [`Notify::timeout`], any other ends the delivery as failed. It never
/// puts a secret (a webhook's address, a token) into an error or its `Debug` output.
#[async_trait]
pub trait Notifier: fmt::Debug + Send + Sync + 'static {
    /// Delivers one notification.
    async fn send(&self, notification: &Notification) -> Result<()>;
}

/// A notifier registered on an engine: its name, what it wants to hear about, and how long
/// one delivery may take.
#[derive(Debug, Clone)]
#[must_use]
pub struct Notify {
    name: String,
    notifier: Arc<dyn Notifier>,
    triggers: BTreeSet<Trigger>,
    timeout: Duration,
    remind_before: Duration,
}

impl Notify {
    /// The longest [`timeout`](Notify::timeout) a notifier may have.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

    /// `notifier` under `name` (its key in records and in `status`), for every trigger, with
    /// a 10 s timeout and reminders 5 minutes before an approval times out.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `name` unless it is 1 to 64 ASCII letters, digits, `-` or
    /// `_`.
    pub fn new(name: impl Into<String>, notifier: impl Notifier) -> Result<Self> {
        Notify::shared(name, Arc::new(notifier))
    }

    /// [`Notify::new`] with a shared notifier.
    ///
    /// # Errors
    /// As [`Notify::new`].
    pub fn shared(name: impl Into<String>, notifier: Arc<dyn Notifier>) -> Result<Self> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(Error::invalid(
                "notify.name",
                format!("`{name}` must be 1 to 64 ASCII letters, digits, `-` or `_`"),
            ));
        }
        Ok(Notify {
            name,
            notifier,
            triggers: Trigger::ALL.into_iter().collect(),
            timeout: Duration::from_secs(10),
            remind_before: Duration::from_secs(300),
        })
    }

    /// Only these triggers (default: all of [`Trigger::ALL`]).
    pub fn on(mut self, triggers: impl IntoIterator<Item = Trigger>) -> Self {
        self.triggers = triggers.into_iter().collect();
        self
    }

    /// How long one notification's delivery may take, retries included (default 10 s; at
    /// most [`Notify::MAX_TIMEOUT`]). It bounds how much this notifier can delay a deployment
    /// per notification.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long before an approval gate times out the [`Trigger::ApprovalReminder`] goes
    /// (default 5 minutes). A gate whose timeout is not longer than this gets no reminder.
    /// With several notifiers, the reminder goes once, at the longest of their leads.
    pub fn remind_before(mut self, lead: Duration) -> Self {
        self.remind_before = lead;
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it wants notifications of `trigger`.
    pub fn wants(&self, trigger: Trigger) -> bool {
        self.triggers.contains(&trigger)
    }

    /// The notifier.
    pub fn notifier(&self) -> &Arc<dyn Notifier> {
        &self.notifier
    }

    pub(crate) fn timeout_value(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn reminder_lead(&self) -> Duration {
        self.remind_before
    }

    pub(crate) fn validate(notifiers: &[Notify]) -> Result<()> {
        let mut names = BTreeSet::new();
        for n in notifiers {
            if !names.insert(n.name.as_str()) {
                return Err(Error::invalid(
                    "notify.name",
                    format!("two notifiers are named `{}`: names must be unique", n.name),
                ));
            }
            if n.timeout.is_zero() || n.timeout > Notify::MAX_TIMEOUT {
                return Err(Error::invalid(
                    "notify.timeout",
                    format!(
                        "notifier `{}`: the timeout must be more than 0 and at most 300s",
                        n.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Sends `notification` to `notify` as a deployment would (retries within its timeout), and
/// says how it went: for tools that test a configuration (`immutable notify test`).
pub async fn send_once(notify: &Notify, notification: &Notification) -> Delivery {
    deliver::deliver(notify, notification, &crate::SystemClock).await
}
