//! What the pages show, built from records without reading anything: one row per service,
//! one deployment with its steps and events, one halt. The same values are the data of the
//! JSON twins, so a script and a page never disagree.

use std::time::SystemTime;

use immutable_core::{DeploymentRecord, Halt, HaltScope, Phase, Step, StrategySpec};
use serde::Serialize;

use crate::exit::human;

/// A time as RFC 3339 to the second, in UTC.
pub(crate) fn stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A halt as shown.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HaltView {
    /// `all`, or the service's name.
    pub(crate) scope: String,
    /// The service halted, when the halt is one service's.
    pub(crate) service: Option<String>,
    pub(crate) reason: String,
    pub(crate) by: String,
    pub(crate) at: String,
}

impl HaltView {
    pub(crate) fn of(h: &Halt) -> HaltView {
        let service = match &h.scope {
            HaltScope::Service(s) => Some(s.to_string()),
            _ => None,
        };
        HaltView {
            scope: service.clone().unwrap_or_else(|| "all".to_owned()),
            service,
            reason: h.reason.clone(),
            by: h.by.clone(),
            at: stamp(h.at),
        }
    }

    /// One line: `halted by alice: incident 42`.
    pub(crate) fn line(&self) -> String {
        let what = match &self.service {
            Some(_) => "halted",
            None => "every service halted",
        };
        format!("{what} by {}: {}", self.by, self.reason)
    }
}

/// One deployment as a row (of the services table, of a service's history).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeploymentRow {
    pub(crate) id: String,
    pub(crate) service: String,
    pub(crate) image: String,
    pub(crate) phase: String,
    pub(crate) terminal: bool,
    /// Percent of live traffic on the new fleet.
    pub(crate) weight: u32,
    /// `healthy/total` of the new fleet, as last read (`-` before it was).
    pub(crate) health: String,
    pub(crate) created_at: String,
    /// How long it took (or has taken until its last phase change).
    pub(crate) took: String,
    /// From launch to the new fleet healthy, when it got there.
    pub(crate) to_healthy: Option<String>,
    pub(crate) outcome: Option<String>,
    /// The record's version in the store: live views push when it changes.
    pub(crate) version: u64,
}

impl DeploymentRow {
    pub(crate) fn of(r: &DeploymentRecord) -> DeploymentRow {
        DeploymentRow {
            id: r.id.to_string(),
            service: r.service().to_string(),
            image: r.image.name.clone(),
            phase: r.phase.to_string(),
            terminal: r.phase.is_terminal(),
            weight: r.weight,
            health: r
                .health
                .map_or_else(|| "-".to_owned(), |(h, t)| format!("{h}/{t}")),
            created_at: stamp(r.created_at),
            took: human(r.duration()),
            to_healthy: r.time_to_healthy().map(human),
            outcome: r.outcome().map(|o| o.to_string()),
            version: r.version,
        }
    }
}

/// One row of the services table: the service, its latest deployment, the halt over it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServiceRow {
    pub(crate) service: String,
    pub(crate) latest: Option<DeploymentRow>,
    pub(crate) halt: Option<HaltView>,
}

/// Where one step of the strategy stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StepState {
    Done,
    Current,
    Pending,
}

impl StepState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StepState::Done => "done",
            StepState::Current => "current",
            StepState::Pending => "pending",
        }
    }
}

/// One step of the strategy.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StepView {
    pub(crate) index: usize,
    pub(crate) text: String,
    pub(crate) state: StepState,
    /// How it went, once done.
    pub(crate) note: Option<String>,
    /// Whether it is an approval gate.
    pub(crate) approval: bool,
}

/// The strategy's steps, the current one marked: the stored step list when the record has
/// one, else the steps taken and the one under way.
pub(crate) fn steps(r: &DeploymentRecord) -> Vec<StepView> {
    let past_rollout = matches!(r.phase, Phase::Bake | Phase::Retire | Phase::Done);
    let state = |i: usize| match i.cmp(&r.step) {
        _ if past_rollout => StepState::Done,
        std::cmp::Ordering::Less => StepState::Done,
        std::cmp::Ordering::Equal if r.phase == Phase::Rollout => StepState::Current,
        _ => StepState::Pending,
    };
    let listed: Vec<Step> = match &r.spec.strategy {
        StrategySpec::Steps(steps) => steps.steps().to_vec(),
        _ => r
            .steps_taken
            .iter()
            .map(|s| s.step.clone())
            .chain(r.current_step.clone())
            .collect(),
    };
    listed
        .into_iter()
        .enumerate()
        .map(|(i, step)| StepView {
            index: i,
            approval: matches!(step, Step::Approval { .. }),
            text: step.to_string(),
            state: state(i),
            note: r.steps_taken.get(i).and_then(|s| s.note.clone()),
        })
        .collect()
}

/// One line of what happened to a deployment.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EventView {
    pub(crate) at: String,
    pub(crate) text: String,
}

/// The record's timeline, oldest first, each entry in words (commands say who gave them).
pub(crate) fn events(r: &DeploymentRecord) -> Vec<EventView> {
    r.timeline
        .entries()
        .iter()
        .map(|e| EventView {
            at: stamp(e.at),
            text: e.mark.to_string(),
        })
        .collect()
}

/// One deployment, as its page shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeploymentView {
    #[serde(flatten)]
    pub(crate) row: DeploymentRow,
    pub(crate) image_id: String,
    pub(crate) strategy: String,
    pub(crate) steps: Vec<StepView>,
    pub(crate) events: Vec<EventView>,
    /// Events the record no longer keeps (its timeline is bounded).
    pub(crate) dropped: u64,
    /// The halt that covers the service, while the deployment is unfinished.
    pub(crate) halt: Option<HaltView>,
    /// Whether it waits at an approval gate now.
    pub(crate) at_gate: bool,
    /// The timeline chart, an inline `<svg>`.
    #[serde(skip)]
    pub(crate) chart: String,
}

impl DeploymentView {
    pub(crate) fn of(r: &DeploymentRecord, halt: Option<&Halt>) -> DeploymentView {
        let steps = steps(r);
        let at_gate = steps
            .iter()
            .any(|s| s.approval && s.state == StepState::Current);
        DeploymentView {
            row: DeploymentRow::of(r),
            image_id: r.image.id.to_string(),
            strategy: match &r.spec.strategy {
                StrategySpec::Steps(s) => s.name().to_owned(),
                StrategySpec::Named(n) => n.clone(),
                _ => "a strategy this version cannot name".to_owned(),
            },
            steps,
            events: events(r),
            dropped: r.timeline.dropped(),
            halt: halt.filter(|_| !r.phase.is_terminal()).map(HaltView::of),
            at_gate,
            chart: crate::report::chart::deployment_svg(r),
        }
    }
}
