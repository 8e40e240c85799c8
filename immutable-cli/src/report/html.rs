//! The standalone HTML report of one deployment: its summary, the timeline chart, the steps
//! with the current one marked and the events, in one file with its style inline (no script,
//! no link out), so it opens offline as a CI artifact or in an incident review.

use askama::Template;
use immutable_core::DeploymentRecord;

use crate::dashboard::view::{DeploymentView, stamp};
use crate::exit::Failure;

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage<'a> {
    view: &'a DeploymentView,
    /// The dashboard's style sheet, inlined.
    css: &'static str,
    generated: String,
}

/// The report of `rec` (the commands given to it are in its timeline, with who gave them).
pub(crate) fn report(rec: &DeploymentRecord) -> Result<String, Failure> {
    let view = DeploymentView::of(rec, None);
    ReportPage {
        view: &view,
        css: include_str!("../dashboard/assets/dashboard.css"),
        generated: stamp(std::time::SystemTime::now()),
    }
    .render()
    .map_err(|e| Failure::from(immutable_core::Error::invalid("report", e.to_string())))
}
