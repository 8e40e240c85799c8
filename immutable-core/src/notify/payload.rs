//! [`Notification`]: what a notifier delivers, and the JSON a webhook receives (version 1).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::Trigger;
use crate::{DeploymentId, DeploymentRecord, ImageId, Phase, ServiceName};

/// One notification: what happened to which deployment, and how it stands.
///
/// Its JSON (serde's form) is the webhook payload, version [`Notification::VERSION`]:
///
/// ```json
/// {
///   "version": 1,
///   "dedupe_key": "01JEXAMPLE0000000000000000/rollback_started",
///   "event": "rollback_started",
///   "at": "2026-12-07T10:41:07.123Z",
///   "deployment": "01JEXAMPLE0000000000000000",
///   "service": "web",
///   "image": "img-4f2a",
///   "phase": "rolling_back",
///   "weight": 50,
///   "cause": "check `errors` failed at 50%: 7% of requests failed",
///   "summary": "web: deployment 01JEXAMPLE0000000000000000 is rolling back: check `errors` failed at 50%: 7% of requests failed"
/// }
/// ```
///
/// `step`, `cause`, `halt` and `approval` appear only when they apply. Fields may be added
/// within a version; a change of meaning is a new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Notification {
    /// The payload's version: [`Notification::VERSION`].
    pub version: u32,
    /// Stable across retries and crashes: `<deployment>/<event>[-<detail>]`. A receiver that
    /// has seen it may drop the notification.
    pub dedupe_key: String,
    /// What happened.
    pub event: Trigger,
    /// When, RFC 3339 in UTC.
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
    /// The deployment.
    pub deployment: DeploymentId,
    /// Its service.
    pub service: ServiceName,
    /// The image it deploys.
    pub image: ImageId,
    /// Its phase, as saved.
    pub phase: Phase,
    /// Percent of live traffic on the new fleet, as saved.
    pub weight: u32,
    /// The step, for step and approval events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepNote>,
    /// Why it rolls back or stopped, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The halt, for halt events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halt: Option<HaltNote>,
    /// The approval gate, for approval events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalNote>,
    /// One sentence for people.
    pub summary: String,
}

/// A strategy step in a [`Notification`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepNote {
    /// Its index in the strategy, from 0.
    pub index: usize,
    /// The step, in words (`shift 50% of traffic`, ...).
    pub description: String,
}

/// A halt in a [`Notification`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HaltNote {
    /// Who halted.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// An approval gate in a [`Notification`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApprovalNote {
    /// When the gate times out, RFC 3339 in UTC.
    #[serde(with = "rfc3339")]
    pub deadline: SystemTime,
}

impl Notification {
    /// The payload version this SDK writes.
    pub const VERSION: u32 = 1;

    /// A notification of `event` about `record` as it stands, at `at`. `detail` tells apart
    /// notifications of one event in one deployment (a step's index, a halt's time) and goes
    /// into the dedupe key.
    pub fn about(
        record: &DeploymentRecord,
        event: Trigger,
        detail: Option<String>,
        at: SystemTime,
    ) -> Self {
        let dedupe_key = match &detail {
            Some(d) => format!("{}/{}-{d}", record.id, event.name()),
            None => format!("{}/{}", record.id, event.name()),
        };
        let cause = match event {
            Trigger::RollbackStarted | Trigger::RolledBack | Trigger::Stopped => {
                record.rollback_cause.as_ref().map(ToString::to_string)
            }
            _ => None,
        };
        let mut n = Notification {
            version: Self::VERSION,
            dedupe_key,
            event,
            at,
            deployment: record.id.clone(),
            service: record.service().clone(),
            image: record.image.id.clone(),
            phase: record.phase,
            weight: record.weight,
            step: None,
            cause,
            halt: None,
            approval: None,
            summary: String::new(),
        };
        n.summary = n.sentence();
        n
    }

    /// A test message about `service` (`immutable notify test`): trigger [`Trigger::Test`],
    /// a fresh deployment id that names no deployment, no image.
    pub fn test(service: &ServiceName, at: SystemTime) -> Self {
        let deployment = DeploymentId::generate();
        let mut n = Notification {
            version: Self::VERSION,
            dedupe_key: format!("{deployment}/{}", Trigger::Test.name()),
            event: Trigger::Test,
            at,
            deployment,
            service: service.clone(),
            image: ImageId::new("none"),
            phase: Phase::Plan,
            weight: 0,
            step: None,
            cause: None,
            halt: None,
            approval: None,
            summary: String::new(),
        };
        n.summary = n.sentence();
        n
    }

    /// The same, with the step it is about.
    pub fn with_step(mut self, index: usize, description: impl Into<String>) -> Self {
        self.step = Some(StepNote {
            index,
            description: description.into(),
        });
        self.summary = self.sentence();
        self
    }

    /// The same, with the halt it is about.
    pub fn with_halt(mut self, by: impl Into<String>, reason: impl Into<String>) -> Self {
        self.halt = Some(HaltNote {
            by: by.into(),
            reason: reason.into(),
        });
        self.summary = self.sentence();
        self
    }

    /// The same, with the approval gate's deadline.
    pub fn with_deadline(mut self, deadline: SystemTime) -> Self {
        self.approval = Some(ApprovalNote { deadline });
        self.summary = self.sentence();
        self
    }

    fn sentence(&self) -> String {
        let who = format!("{}: deployment {}", self.service, self.deployment);
        let step = self
            .step
            .as_ref()
            .map(|s| format!("step {} ({})", s.index + 1, s.description));
        let step = step.as_deref().unwrap_or("a step");
        let because = self
            .cause
            .as_ref()
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        let halt = self
            .halt
            .as_ref()
            .map(|h| format!(" by {}: {}", h.by, h.reason))
            .unwrap_or_default();
        match self.event {
            Trigger::Started => format!("{who} of image {} started", self.image),
            Trigger::ApprovalWaiting => format!("{who} waits for approval at {step}"),
            Trigger::ApprovalReminder => {
                format!("{who} still waits for approval at {step}, and will time out soon")
            }
            Trigger::StepPassed => {
                format!(
                    "{who} passed {step}, {}% of traffic on the new fleet",
                    self.weight
                )
            }
            Trigger::RollbackStarted => format!("{who} is rolling back{because}"),
            Trigger::RolledBack => format!("{who} rolled back{because}"),
            Trigger::Stopped => format!(
                "{who} stopped without a way back, {}% of traffic on the new fleet{because}",
                self.weight
            ),
            Trigger::Succeeded => format!("{who} succeeded: image {} serves", self.image),
            Trigger::Halted => format!("{who} is halted{halt}"),
            Trigger::HaltLifted => format!("{who}: the halt was lifted, it goes on"),
            Trigger::BlueLost => {
                format!("{who} lost the old fleet during the bake: there is no fast way back")
            }
            Trigger::Test => format!("{who}: a test message from immutable"),
        }
    }
}

/// `SystemTime` as RFC 3339 in UTC, with milliseconds.
mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_millis(*t))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339(&text)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time: {e}")))
    }
}
