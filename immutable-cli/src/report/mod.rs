//! Pictures and reports of deployments from the journal: the chart of one deployment, the
//! history of a service, and `immutable report`'s standalone files.

pub(crate) mod chart;
pub(crate) mod html;
