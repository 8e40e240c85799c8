//! A deployment's timeline: what happened to it, with when, saved with its record so that any
//! process sharing the store can draw it (weights, healthy instances of both fleets, checks,
//! operator commands with who gave them, halts, phases, the rollback cause).
//!
//! It is bounded: at most [`Timeline::MAX_ENTRIES`] entries (about 40 KB of JSON), so a record
//! stays within every store's item limit however long a deployment runs. When it is full, the
//! oldest health sample that a later sample of the same fleet supersedes goes first, then the
//! oldest entry that is not a phase change; [`Timeline::dropped`] counts what went.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::{CheckOutcome, Command, HaltScope, Phase, RollbackCause, Step};

/// Which fleet a health sample is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The fleet that served when the deployment began.
    Blue,
    /// The fleet the deployment launched.
    Green,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Blue => "old fleet",
            Side::Green => "new fleet",
        })
    }
}

/// What happened, in a [`TimelineEntry`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mark", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mark {
    /// The deployment entered a phase.
    Phase {
        /// The phase.
        phase: Phase,
        /// Why, when there is more to say.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A strategy step started.
    Step {
        /// Its index.
        index: usize,
        /// The step.
        step: Step,
    },
    /// The live traffic on the new fleet changed.
    Weight {
        /// Percent of live traffic on the new fleet.
        percent: u32,
    },
    /// A fleet's count of healthy instances changed (as read by the engine).
    Health {
        /// Which fleet.
        side: Side,
        /// Healthy instances.
        healthy: usize,
        /// Instances registered, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<usize>,
    },
    /// A check ran.
    Check {
        /// Its name.
        name: String,
        /// Whether it passed.
        passed: bool,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// An approval gate began waiting.
    ApprovalRequested {
        /// The step's index.
        index: usize,
    },
    /// An operator gave a command (approve, reject, promote, abort).
    Command {
        /// The stored command's id.
        id: String,
        /// The command.
        command: Command,
        /// Who gave it.
        by: String,
    },
    /// A halt stopped the deployment from advancing.
    Halted {
        /// What the halt covers.
        scope: HaltScope,
        /// Who halted.
        by: String,
        /// Why.
        reason: String,
    },
    /// The halt was lifted.
    HaltLifted,
    /// A rollback began.
    RollbackStarted {
        /// Why.
        cause: RollbackCause,
    },
    /// The old fleet dropped below `min_healthy` during the bake: the fast-rollback window was
    /// lost.
    BlueLost {
        /// Its healthy instances.
        healthy: usize,
        /// Healthy instances needed.
        needed: u32,
    },
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mark::Phase { phase, note: None } => write!(f, "entered {phase}"),
            Mark::Phase {
                phase,
                note: Some(note),
            } => write!(f, "entered {phase}: {note}"),
            Mark::Step { index, step } => write!(f, "step {}: {step}", index + 1),
            Mark::Weight { percent } => write!(f, "{percent} % of live traffic on the new fleet"),
            Mark::Health {
                side,
                healthy,
                total: Some(total),
            } => write!(f, "{side}: {healthy} of {total} healthy"),
            Mark::Health {
                side,
                healthy,
                total: None,
            } => write!(f, "{side}: {healthy} healthy"),
            Mark::Check {
                name, passed: true, ..
            } => write!(f, "check {name} passed"),
            Mark::Check { name, reason, .. } => write!(
                f,
                "check {name} failed: {}",
                reason.as_deref().unwrap_or("no reason given")
            ),
            Mark::ApprovalRequested { index } => {
                write!(f, "step {}: waiting for approval", index + 1)
            }
            Mark::Command { command, by, .. } => write!(f, "{command}, by {by}"),
            Mark::Halted { scope, by, reason } => {
                write!(f, "halted ({scope}) by {by}: {reason}")
            }
            Mark::HaltLifted => f.write_str("halt lifted"),
            Mark::RollbackStarted { cause } => write!(f, "rolling back: {cause}"),
            Mark::BlueLost { healthy, needed } => write!(
                f,
                "fast-rollback window lost: the old fleet has {healthy} healthy, {needed} needed"
            ),
        }
    }
}

/// One thing that happened, and when (on the engine's clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When.
    pub at: SystemTime,
    /// What.
    #[serde(flatten)]
    pub mark: Mark,
}

/// A deployment's timeline, oldest first, saved with its
/// [`DeploymentRecord`](crate::DeploymentRecord) so that any process sharing the store reads
/// it.
///
/// It is bounded: at most [`MAX_ENTRIES`](Self::MAX_ENTRIES) entries (about 40 KB of JSON),
/// so a record stays within every store's item limit however long a deployment runs. When it
/// is full, the oldest health sample that a later sample of the same fleet supersedes goes
/// first, then the oldest entry that is not a phase change; [`dropped`](Self::dropped) counts
/// what went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    entries: Vec<TimelineEntry>,
    #[serde(default, skip_serializing_if = "is_zero")]
    dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Timeline {
    /// The most entries a timeline keeps.
    pub const MAX_ENTRIES: usize = 256;

    /// The entries, oldest first.
    pub fn entries(&self) -> &[TimelineEntry] {
        &self.entries
    }

    /// How many entries were dropped to keep it within [`MAX_ENTRIES`](Self::MAX_ENTRIES).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The last health sample of `side`, if any.
    pub fn last_health(&self, side: Side) -> Option<(usize, Option<usize>)> {
        self.entries.iter().rev().find_map(|e| match &e.mark {
            Mark::Health {
                side: s,
                healthy,
                total,
            } if *s == side => Some((*healthy, *total)),
            _ => None,
        })
    }

    /// Whether a command with this id is recorded.
    pub(crate) fn has_command(&self, id: &str) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(&e.mark, Mark::Command { id: i, .. } if i == id))
    }

    /// Adds `mark` at `at`, in time order, dropping an older entry when full.
    pub(crate) fn push(&mut self, at: SystemTime, mark: Mark) {
        if self.entries.len() >= Self::MAX_ENTRIES {
            let victim = self.superseded_health().or_else(|| {
                self.entries
                    .iter()
                    .position(|e| !matches!(e.mark, Mark::Phase { .. }))
            });
            self.entries.remove(victim.unwrap_or(0));
            self.dropped += 1;
        }
        // Marks come from several clocks' readings (a command carries its giver's): keep the
        // entries in time order.
        let at_or_before = self.entries.partition_point(|e| e.at <= at);
        self.entries
            .insert(at_or_before, TimelineEntry { at, mark });
    }

    /// Appends a health sample of `side` unless it repeats the last one.
    pub(crate) fn push_health(
        &mut self,
        at: SystemTime,
        side: Side,
        healthy: usize,
        total: Option<usize>,
    ) {
        if self.last_health(side) != Some((healthy, total)) {
            self.push(
                at,
                Mark::Health {
                    side,
                    healthy,
                    total,
                },
            );
        }
    }

    /// The oldest health sample that a later one of the same fleet supersedes.
    fn superseded_health(&self) -> Option<usize> {
        self.entries.iter().enumerate().find_map(|(i, e)| {
            let Mark::Health { side, .. } = e.mark else {
                return None;
            };
            self.entries[i + 1..]
                .iter()
                .any(|later| matches!(later.mark, Mark::Health { side: s, .. } if s == side))
                .then_some(i)
        })
    }
}

/// The mark an event leaves on the timeline, if any. `green` is the new fleet's target, for
/// reading a routing's weight on it.
pub(crate) fn mark_of(kind: &crate::EventKind, green: Option<&crate::TargetId>) -> Option<Mark> {
    use crate::EventKind as E;
    Some(match kind {
        E::StepStarted { index, step } => Mark::Step {
            index: *index,
            step: step.clone(),
        },
        E::WeightsSet { routing } => Mark::Weight {
            percent: green.map_or(0, |g| routing.weight(g)),
        },
        E::CheckResult { name, outcome } => Mark::Check {
            name: name.clone(),
            passed: matches!(outcome, CheckOutcome::Pass),
            reason: match outcome {
                CheckOutcome::Fail { reason } => Some(reason.clone()),
                _ => None,
            },
        },
        E::ApprovalRequested { index, .. } => Mark::ApprovalRequested { index: *index },
        E::Halted {
            scope, by, reason, ..
        } => Mark::Halted {
            scope: scope.clone(),
            by: by.clone(),
            reason: reason.clone(),
        },
        E::HaltLifted { .. } => Mark::HaltLifted,
        E::RollbackStarted { cause } => Mark::RollbackStarted {
            cause: cause.clone(),
        },
        E::RollbackWindowLost {
            healthy, needed, ..
        } => Mark::BlueLost {
            healthy: *healthy,
            needed: *needed,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
