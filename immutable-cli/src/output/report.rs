//! The document of `immutable report`.

use schemars::JsonSchema;
use serde::Serialize;

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
