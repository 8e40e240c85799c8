//! The documents of the commands that look back: `immutable history` and `immutable report`.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// What `immutable report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ReportFormat {
    /// The timeline chart alone, an SVG image.
    Svg,
    /// A standalone page: the chart, the steps and the events; it opens offline.
    Html,
}

impl ReportFormat {
    /// The file name extension.
    pub(crate) fn extension(self) -> &'static str {
        match self {
            ReportFormat::Svg => "svg",
            ReportFormat::Html => "html",
        }
    }
}

/// `report`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ReportDoc {
    pub(crate) deployment: String,
    pub(crate) service: String,
    pub(crate) format: ReportFormat,
    /// The file written.
    pub(crate) path: String,
    pub(crate) bytes: u64,
}

/// `history`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct HistoryDoc {
    pub(crate) service: String,
    /// Newest first.
    pub(crate) deployments: Vec<HistoryRow>,
}

/// One deployment in `history`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct HistoryRow {
    pub(crate) deployment: String,
    /// `immutable_core::Phase`.
    pub(crate) phase: Value,
    /// `immutable_core::Image`.
    pub(crate) image: Value,
    /// Percent of the traffic on the new fleet.
    pub(crate) weight: u32,
    /// `immutable_core::Outcome`, once it ended.
    pub(crate) outcome: Value,
    /// `std::time::SystemTime` as serde writes it.
    pub(crate) created_at: Value,
    pub(crate) duration_ms: u64,
    /// From launching the new fleet to `min_healthy` of it passing health checks, once it
    /// did.
    pub(crate) launch_to_healthy_ms: Option<u64>,
}
