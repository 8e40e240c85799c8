//! `notify test`'s document.

use schemars::JsonSchema;
use serde::Serialize;

/// `notify test`: how the test message went, per notifier.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct NotifyTestDoc {
    pub(crate) service: String,
    pub(crate) notifiers: Vec<NotifyTestRow>,
}

/// One notifier's answer to the test message.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct NotifyTestRow {
    pub(crate) name: String,
    /// `webhook`, `slack` or `sns`.
    pub(crate) kind: String,
    pub(crate) delivered: bool,
    pub(crate) attempts: u32,
    /// Why it failed (never the address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}
