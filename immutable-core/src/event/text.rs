//! The operator's sentence for each [`EventKind`]: what the tracing lines and the examples
//! print.

use std::fmt;

use crate::human::Human;

use super::EventKind;
use crate::{CheckOutcome, OnBlueLost, OnHalt};

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::RollbackStarted { .. }
            | EventKind::RollbackWindowLost { .. }
            | EventKind::TargetDetached { .. }
            | EventKind::FleetTerminated { .. }
            | EventKind::ImageRetired { .. }
            | EventKind::RolledBack { .. }
            | EventKind::Stopped { .. }
            | EventKind::Completed { .. }
            | EventKind::LeaseTakenOver { .. }
            | EventKind::Halted { .. }
            | EventKind::HaltLifted { .. } => self.fmt_ending(f),
            _ => self.fmt_forward(f),
        }
    }
}

impl EventKind {
    /// The text of events on the way to the switch.
    fn fmt_forward(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::Planned {
                image,
                capacity,
                blue,
            } => match blue {
                Some(b) => write!(f, "planned: {capacity} x {image}, replacing fleet {b}"),
                None => write!(f, "planned: {capacity} x {image}, first deployment"),
            },
            EventKind::PhaseEntered { phase } => write!(f, "phase {phase}"),
            EventKind::FleetLaunched { fleet, instances } => {
                write!(f, "launched fleet {fleet} ({instances} instances)")
            }
            EventKind::TargetAttached { target } => write!(f, "attached target {target}"),
            EventKind::HealthProgress {
                target,
                healthy,
                needed,
                total,
            } => write!(f, "{target}: {healthy}/{total} healthy ({needed} needed)"),
            EventKind::StepStarted { index, step } => {
                write!(f, "step {index}: {step}")
            }
            EventKind::StepFinished { index, note } => match note {
                Some(n) => write!(f, "step {index} done: {n}"),
                None => write!(f, "step {index} done"),
            },
            EventKind::PreviewRouted { target } => write!(f, "preview routes to {target}"),
            EventKind::PreviewSkipped { reason } => write!(f, "preview skipped: {reason}"),
            EventKind::CheckResult { name, outcome } => match outcome {
                CheckOutcome::Pass => write!(f, "check {name}: pass"),
                CheckOutcome::Fail { reason } => write!(f, "check {name}: FAIL: {reason}"),
            },
            EventKind::ApprovalRequested { index, timeout } => {
                write!(
                    f,
                    "step {index}: waiting for approval (timeout {})",
                    Human(*timeout)
                )
            }
            EventKind::Approved => f.write_str("approved"),
            EventKind::Rejected { reason } => write!(f, "rejected: {reason}"),
            EventKind::ApprovalOverdue { waited } => {
                write!(
                    f,
                    "approval overdue after {}; still waiting",
                    Human(*waited)
                )
            }
            EventKind::Promoted => f.write_str("promoted: skipping the remaining waits"),
            EventKind::WeightsSet { routing } => write!(f, "routing: {routing}"),
            EventKind::Retrying {
                operation,
                attempt,
                error,
                backoff,
            } => write!(
                f,
                "retrying {operation} (attempt {attempt} failed: {error}; waiting {})",
                Human(*backoff)
            ),
            other => other.fmt_ending(f),
        }
    }

    /// The text of events on the way back, at the end, and of the lease.
    fn fmt_ending(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::RollbackStarted { cause } => write!(f, "rolling back: {cause}"),
            EventKind::RollbackWindowLost {
                target,
                healthy,
                needed,
                policy,
            } => write!(
                f,
                "fast-rollback window lost: the old fleet's target {target} has {healthy} \
                 healthy instance(s), {needed} needed ({})",
                match policy {
                    OnBlueLost::KeepBaking => "baking on",
                    OnBlueLost::RetireBlue => "retiring it now",
                }
            ),
            EventKind::TargetDetached { target } => write!(f, "detached target {target}"),
            EventKind::FleetTerminated { fleet } => write!(f, "terminated fleet {fleet}"),
            EventKind::ImageRetired { image } => write!(f, "retired image {image}"),
            EventKind::RolledBack { cause } => write!(f, "rolled back: {cause}"),
            EventKind::Stopped { cause, stranded } => {
                write!(f, "STOPPED without a way back ({cause}): {stranded}")
            }
            EventKind::Completed { fleet, image } => {
                write!(f, "done: fleet {fleet} of {image} serves")
            }
            EventKind::LeaseTakenOver {
                previous_holder,
                previous_deployment,
            } => write!(
                f,
                "took over the expired lease of {previous_holder} (deployment {previous_deployment})"
            ),
            EventKind::Halted {
                scope,
                by,
                reason,
                policy,
            } => {
                let what = match policy {
                    OnHalt::Hold => "holding until it is lifted",
                    OnHalt::RollBack => "rolling back",
                };
                write!(f, "{scope} halted by {by} ({reason}): {what}")
            }
            EventKind::HaltLifted { scope } => write!(f, "halt of {scope} lifted: going on"),
            other => write!(f, "{other:?}"),
        }
    }
}
