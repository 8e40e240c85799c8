//! What each trait operation costs in provider API calls, as a backend declares it, so that
//! [`Engine::plan`](crate::Engine::plan) computes a deployment's call budget instead of
//! guessing it.
//!
//! Each trait has a `cost` method with a default of "unknown"; backends override it with
//! what they measured (the AWS backend's table, the local backend's runtime-API requests, one
//! call per operation for the mock).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The operations of the three backend traits and of the capabilities, one per method
/// (adoption's fleet side counts a dry run apart from an apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// [`ImageStore::resolve`](crate::ImageStore::resolve).
    ResolveImage,
    /// [`ImageStore::list`](crate::ImageStore::list).
    ListImages,
    /// [`ImageStore::label`](crate::ImageStore::label).
    LabelImage,
    /// [`ImageStore::retire`](crate::ImageStore::retire).
    RetireImage,
    /// [`Fleet::launch`](crate::Fleet::launch).
    Launch,
    /// [`Fleet::describe`](crate::Fleet::describe).
    Describe,
    /// [`Fleet::list`](crate::Fleet::list).
    ListFleets,
    /// [`Fleet::terminate`](crate::Fleet::terminate).
    Terminate,
    /// [`ScalingControl::set_scaling`](crate::ScalingControl::set_scaling).
    SetScaling,
    /// [`TrafficRouter::attach`](crate::TrafficRouter::attach).
    Attach,
    /// [`TrafficRouter::targets`](crate::TrafficRouter::targets), as the plan makes it: at
    /// the same time as [`Routing`](Operation::Routing), so a router whose two calls read the
    /// same thing and share overlapping reads declares only what `targets` reads besides.
    Targets,
    /// [`TrafficRouter::health`](crate::TrafficRouter::health).
    Health,
    /// [`TrafficRouter::routing`](crate::TrafficRouter::routing).
    Routing,
    /// [`TrafficRouter::set_weights`](crate::TrafficRouter::set_weights).
    SetWeights,
    /// [`PreviewRouter::preview`](crate::PreviewRouter::preview).
    Preview,
    /// [`TrafficRouter::detach`](crate::TrafficRouter::detach).
    Detach,
    /// [`TargetAdoption::adoptable`](crate::TargetAdoption::adoptable).
    Adoptable,
    /// [`TargetAdoption::adopt_target`](crate::TargetAdoption::adopt_target).
    AdoptTarget,
    /// [`FleetAdoption::adopt`](crate::FleetAdoption::adopt) with
    /// [`AdoptMode::DryRun`](crate::AdoptMode::DryRun): a read.
    PreviewAdoption,
    /// [`FleetAdoption::adopt`](crate::FleetAdoption::adopt) with
    /// [`AdoptMode::Apply`](crate::AdoptMode::Apply).
    AdoptFleet,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 20] = [
        Operation::ResolveImage,
        Operation::ListImages,
        Operation::LabelImage,
        Operation::RetireImage,
        Operation::Launch,
        Operation::Describe,
        Operation::ListFleets,
        Operation::Terminate,
        Operation::SetScaling,
        Operation::Attach,
        Operation::Targets,
        Operation::Health,
        Operation::Routing,
        Operation::SetWeights,
        Operation::Preview,
        Operation::Detach,
        Operation::Adoptable,
        Operation::AdoptTarget,
        Operation::PreviewAdoption,
        Operation::AdoptFleet,
    ];

    /// Whether the operation changes anything.
    pub fn is_mutation(self) -> bool {
        matches!(
            self,
            Operation::LabelImage
                | Operation::RetireImage
                | Operation::Launch
                | Operation::Terminate
                | Operation::SetScaling
                | Operation::Attach
                | Operation::SetWeights
                | Operation::Preview
                | Operation::Detach
                | Operation::AdoptTarget
                | Operation::AdoptFleet
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The provider calls one operation makes: `calls`, plus `per_batch` for every `batch`
/// instances it handles (registering 2,500 instances in batches of 1,000 is 3 calls), plus,
/// for an operation that waits inside (draining), `per_poll` calls every `poll` for at most
/// `max_wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Cost {
    /// Calls made once.
    pub calls: u32,
    /// Calls made per batch of instances.
    pub per_batch: u32,
    /// Instances per batch (0 when the cost does not grow with instances).
    pub batch: u32,
    /// Calls made per poll of an inner wait.
    pub per_poll: u32,
    /// How often the inner wait polls.
    #[serde(with = "crate::serde_duration")]
    pub poll: Duration,
    /// The longest the inner wait lasts.
    #[serde(with = "crate::serde_duration")]
    pub max_wait: Duration,
}

impl Cost {
    /// `calls` calls, whatever the fleet size.
    pub const fn calls(calls: u32) -> Self {
        Cost {
            calls,
            per_batch: 0,
            batch: 0,
            per_poll: 0,
            poll: Duration::ZERO,
            max_wait: Duration::ZERO,
        }
    }

    /// Adds `per_batch` calls for every `batch` instances.
    pub const fn batched(mut self, per_batch: u32, batch: u32) -> Self {
        self.per_batch = per_batch;
        self.batch = batch;
        self
    }

    /// Adds an inner wait: `per_poll` calls every `poll`, for at most `max_wait`.
    pub const fn polling(mut self, per_poll: u32, poll: Duration, max_wait: Duration) -> Self {
        self.per_poll = per_poll;
        self.poll = poll;
        self.max_wait = max_wait;
        self
    }

    /// Calls for `instances` instances when the inner wait ends at once.
    pub fn least(&self, instances: u32) -> u64 {
        let batches = match self.batch {
            0 => 0,
            b => instances.div_ceil(b),
        };
        u64::from(self.calls) + u64::from(self.per_batch) * u64::from(batches)
    }

    /// Calls for `instances` instances when the inner wait runs to its end.
    pub fn most(&self, instances: u32) -> u64 {
        let polls = match self.poll.as_nanos() {
            0 => 0,
            p => self.max_wait.as_nanos().div_ceil(p),
        };
        self.least(instances) + u64::from(self.per_poll) * polls as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_and_polls_add_up() {
        let register = Cost::calls(2).batched(1, 1000);
        assert_eq!(register.least(0), 2);
        assert_eq!(register.least(1000), 3);
        assert_eq!(register.least(2500), 5);
        let drain = Cost::calls(3).polling(1, Duration::from_secs(5), Duration::from_secs(30));
        assert_eq!((drain.least(10), drain.most(10)), (3, 9));
    }
}
