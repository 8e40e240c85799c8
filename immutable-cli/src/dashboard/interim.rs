//! TEMPORARY: stand-ins for what `immutable-core` (the deployment timeline,
//! `time_to_healthy`, `services`) and `crate::report::chart` are about to provide. Each
//! function here is replaced by the real one once it lands; nothing else should grow here.

use std::time::Duration;

use immutable_core::{CommandRecord, DeploymentRecord, Phase};

use super::view::{EventView, stamp};

/// TEMPORARY: the record's phase history and its commands, by time, until the timeline lands.
pub(crate) fn events(r: &DeploymentRecord, commands: &[CommandRecord]) -> (Vec<EventView>, usize) {
    let mut events: Vec<(std::time::SystemTime, String)> = r
        .history
        .iter()
        .map(|h| {
            let text = match &h.note {
                Some(note) => format!("{}: {note}", h.phase),
                None => h.phase.to_string(),
            };
            (h.at, text)
        })
        .collect();
    events.extend(
        commands
            .iter()
            .map(|c| (c.at, format!("{} by {}", c.command, c.by))),
    );
    events.sort_by_key(|(at, _)| *at);
    let events = events
        .into_iter()
        .map(|(at, text)| EventView {
            at: stamp(at),
            text,
        })
        .collect();
    (events, 0)
}

/// TEMPORARY: from the record's start to its entering the rollout (health reached), until
/// `DeploymentRecord::time_to_healthy` lands.
pub(crate) fn time_to_healthy(r: &DeploymentRecord) -> Option<Duration> {
    let healthy = r
        .history
        .iter()
        .find(|h| h.phase == Phase::Rollout || h.phase == Phase::Bake)?;
    healthy.at.duration_since(r.created_at).ok()
}

/// TEMPORARY: an empty chart until `crate::report::chart::deployment_svg` lands.
pub(crate) fn deployment_svg(_r: &DeploymentRecord) -> String {
    r#"<svg xmlns="http://www.w3.org/2000/svg" width="600" height="40" role="img"><text x="8" y="24">chart pending</text></svg>"#.to_owned()
}

/// TEMPORARY: an empty chart until `crate::report::chart::history_svg` lands.
pub(crate) fn history_svg(_records: &[DeploymentRecord]) -> String {
    deployment_svg_empty()
}

fn deployment_svg_empty() -> String {
    r#"<svg xmlns="http://www.w3.org/2000/svg" width="600" height="40" role="img"></svg>"#
        .to_owned()
}

/// TEMPORARY: services that have records, in name order, after `after`, until
/// `Operator::services` lands (this reads the whole journal; the real one reads one page).
pub(crate) async fn services(
    store: &dyn immutable_core::StateStore,
    after: Option<&immutable_core::ServiceName>,
    limit: usize,
) -> immutable_core::Result<Vec<immutable_core::ServiceName>> {
    let mut names: Vec<_> = store
        .list(None)
        .await?
        .into_iter()
        .map(|r| r.service().clone())
        .filter(|s| after.is_none_or(|a| s > a))
        .collect();
    names.sort();
    names.dedup();
    names.truncate(limit);
    Ok(names)
}
