//! What a deployment will cost before it runs: provider calls per phase, from what each
//! backend declares an operation costs, and how long it takes at least and at most.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::Inner;
use crate::{Cost, DeploymentSpec, OnTimeout, Operation, Phase, ServiceName, Step};

/// A number of provider calls: at least `least` (every wait done at its first poll), at most
/// `most` (every wait running to its timeout); `None` when nothing bounds it.
///
/// Waits of a fixed length (pauses, the bake) are counted at one poll per poll interval, which
/// is exact when calls take no time (the mock). Against a real provider each poll also takes
/// its call's time, so those waits can poll fewer times than counted, and a run can make
/// fewer calls than `least` in those phases; never more than `most`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Calls {
    /// The fewest calls.
    pub least: u64,
    /// The most calls, if bounded.
    pub most: Option<u64>,
}

impl Default for Calls {
    fn default() -> Self {
        Calls {
            least: 0,
            most: Some(0),
        }
    }
}

impl Calls {
    fn add(&mut self, least: u64, most: Option<u64>) {
        self.least += least;
        self.most = self.most.zip(most).map(|(a, b)| a + b);
    }
}

/// The provider calls a deployment would make, per phase, on the way to `Done`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// Per phase, in the order a deployment walks them.
    pub phases: BTreeMap<Phase, Calls>,
    /// The sum.
    pub total: Calls,
    /// Operations whose cost the backend does not declare (counted as nothing), and steps
    /// whose calls are their own (checks).
    pub unknown: Vec<String>,
}

/// How long a deployment would take: at least `least` (the pauses and the bake; boots and
/// health checks done at once), at most `most` (every wait running to its timeout, plus a
/// poll interval each); `None` when an approval gate waits without a timeout policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Eta {
    /// The least time.
    #[serde(with = "crate::serde_duration")]
    pub least: Duration,
    /// The most time, if bounded.
    #[serde(with = "crate::serde_duration::option")]
    pub most: Option<Duration>,
}

/// What the budget needs to know of the world, as the plan read it.
pub(super) struct World {
    /// Whether a fleet serves now.
    pub(super) blue: bool,
    /// Instances of the fleet that serves now.
    pub(super) blue_capacity: u32,
    /// Whether the image carries the service's tag (it is labelled when promoted).
    pub(super) owned_image: bool,
    /// Images retention would retire.
    pub(super) retired_images: u32,
    /// Whether retention reads the fleets: only when some image lies beyond the newest
    /// `keep_images` that are neither deployed now nor serving now.
    pub(super) lists_fleets: bool,
}

/// Counts calls phase by phase.
struct Counter<'a> {
    inner: &'a Inner,
    service: &'a ServiceName,
    budget: Budget,
}

impl Counter<'_> {
    fn cost(&self, op: Operation) -> Option<Cost> {
        let (i, s) = (self.inner, self.service);
        match op {
            Operation::ResolveImage
            | Operation::ListImages
            | Operation::LabelImage
            | Operation::RetireImage => i.images.cost(s, op),
            Operation::Launch
            | Operation::Describe
            | Operation::ListFleets
            | Operation::Terminate
            | Operation::SetScaling => i.fleet.cost(s, op),
            _ => i.router.cost(s, op),
        }
    }

    /// `times` calls of `op` handling `instances` each, and up to `more` further ones.
    fn add(&mut self, phase: Phase, op: Operation, instances: u32, times: u64, more: Option<u64>) {
        // A capability the engine does not have is a call it does not make.
        let absent = match op {
            Operation::SetScaling => self.inner.scaling.is_none(),
            Operation::Preview => self.inner.preview.is_none(),
            _ => false,
        };
        if absent {
            return;
        }
        let Some(cost) = self.cost(op) else {
            let name = op.to_string();
            if !self.budget.unknown.contains(&name) {
                self.budget.unknown.push(name);
            }
            return;
        };
        let least = cost.least(instances) * times;
        let most = more.map(|m| cost.most(instances) * (times + m));
        self.budget
            .phases
            .entry(phase)
            .or_default()
            .add(least, most);
        self.budget.total.add(least, most);
    }
}

/// Polls of a wait of `d` that runs to its end: one at the start, one per interval.
fn polls(d: Duration, poll: Duration) -> u64 {
    d.as_nanos().div_ceil(poll.as_nanos().max(1)) as u64 + 1
}

impl Inner {
    /// The calls of a deployment of `spec` that succeeds, from the backends' declared costs.
    pub(super) fn budget(&self, spec: &DeploymentSpec, steps: &[Step], world: &World) -> Budget {
        let poll = self.settings.poll_interval;
        let n = spec.capacity;
        let mut c = Counter {
            inner: self,
            service: &spec.service,
            budget: Budget::default(),
        };
        c.add(Phase::Plan, Operation::ResolveImage, 0, 1, Some(0));
        c.add(Phase::Plan, Operation::Routing, 0, 1, Some(0));
        if world.blue {
            c.add(Phase::Plan, Operation::Targets, 0, 1, Some(0));
            // Only when the service's newest record does not name blue's image.
            c.add(
                Phase::Plan,
                Operation::Describe,
                world.blue_capacity,
                0,
                Some(1),
            );
        }
        if world.blue {
            c.add(Phase::Provision, Operation::SetScaling, 0, 1, Some(0));
        }
        c.add(Phase::Provision, Operation::Launch, n, 1, Some(0));
        let launch_polls = polls(self.settings.launch_timeout, poll) - 1;
        c.add(Phase::Attach, Operation::Describe, n, 1, Some(launch_polls));
        c.add(Phase::Attach, Operation::Attach, n, 1, Some(0));
        let health_polls = polls(spec.health_timeout, poll) - 1;
        c.add(
            Phase::AwaitHealthy,
            Operation::Health,
            n,
            1,
            Some(health_polls),
        );
        // AwaitHealthy's last read serves the first shift unless a step that waits comes first.
        let mut verified = true;
        for step in steps {
            self.count_step(&mut c, step, n, verified);
            verified &= super::phases::step::keeps_health_read(step);
        }
        c.add(Phase::Rollout, Operation::SetScaling, 0, 1, Some(0));
        // No bake, no reads: green was read before its last weight change.
        let bake = match spec.bake_time.is_zero() {
            true => 0,
            false => super::poll::polls_over(&self.settings, spec.bake_time),
        };
        c.add(Phase::Bake, Operation::Health, n, bake, Some(0));
        if world.blue {
            c.add(
                Phase::Bake,
                Operation::Health,
                world.blue_capacity,
                bake.saturating_sub(1),
                Some(0),
            );
        }
        self.count_retire(&mut c, steps, world);
        c.budget
    }

    /// The calls of one step; a shift with `verified` takes AwaitHealthy's last read as its
    /// health check.
    fn count_step(&self, c: &mut Counter<'_>, step: &Step, n: u32, verified: bool) {
        match step {
            Step::Shift { .. } => {
                let health = u64::from(!verified);
                c.add(Phase::Rollout, Operation::Health, n, health, Some(0));
                c.add(Phase::Rollout, Operation::SetWeights, n, 1, Some(0));
            }
            Step::Pause { duration } => {
                c.add(
                    Phase::Rollout,
                    Operation::Health,
                    n,
                    super::poll::polls_over(&self.settings, *duration),
                    Some(0),
                );
            }
            Step::Preview => c.add(Phase::Rollout, Operation::Preview, 0, 1, Some(0)),
            Step::Checks { names } => {
                for name in names {
                    let what = format!("check `{name}`");
                    if !c.budget.unknown.contains(&what) {
                        c.budget.unknown.push(what);
                    }
                }
            }
            Step::Approval { .. } => {}
        }
    }

    fn count_retire(&self, c: &mut Counter<'_>, steps: &[Step], world: &World) {
        if steps.contains(&Step::Preview) {
            c.add(Phase::Retire, Operation::Preview, 0, 1, Some(0));
        }
        if world.blue {
            c.add(
                Phase::Retire,
                Operation::Detach,
                world.blue_capacity,
                1,
                Some(0),
            );
            c.add(
                Phase::Retire,
                Operation::Terminate,
                world.blue_capacity,
                1,
                Some(0),
            );
        }
        if world.owned_image {
            c.add(Phase::Retire, Operation::LabelImage, 0, 1, Some(0));
        }
        c.add(Phase::Retire, Operation::ListImages, 0, 1, Some(0));
        c.add(
            Phase::Retire,
            Operation::ListFleets,
            0,
            world.lists_fleets.into(),
            Some(0),
        );
        let retired = u64::from(world.retired_images);
        c.add(Phase::Retire, Operation::RetireImage, 0, retired, Some(0));
    }

    /// The least and the most time a deployment of `spec` takes when it succeeds.
    pub(super) fn eta(&self, spec: &DeploymentSpec, steps: &[Step], blue: bool) -> Eta {
        let s = &self.settings;
        let mut least = spec.bake_time;
        let mut most = Some(s.launch_timeout + spec.health_timeout + spec.bake_time);
        let mut waits = 3u32;
        for step in steps {
            match step {
                Step::Pause { duration } => {
                    least += *duration;
                    most = most.map(|m| m + *duration);
                    waits += 1;
                }
                Step::Approval {
                    timeout,
                    on_timeout: OnTimeout::RollBack,
                } => {
                    most = most.map(|m| m + *timeout);
                    waits += 1;
                }
                Step::Approval { .. } => most = None,
                _ => {}
            }
        }
        if blue {
            let drain = self
                .router
                .cost(&spec.service, Operation::Detach)
                .map(|c| c.max_wait);
            most = most.zip(drain).map(|(m, d)| m + d);
        }
        Eta {
            least,
            most: most.map(|m| m + s.poll_ceiling.max(s.poll_interval) * waits),
        }
    }
}
