//! Scripted faults: "fail the next N calls of an operation", "fail the 3rd call", never random.

use std::fmt;

use immutable_core::{Error, ResourceKind};

/// Every backend operation of the mock, one per trait method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Op {
    /// [`ImageStore::resolve`](immutable_core::ImageStore::resolve).
    ResolveImage,
    /// [`ImageStore::list`](immutable_core::ImageStore::list).
    ListImages,
    /// [`ImageStore::label`](immutable_core::ImageStore::label).
    LabelImage,
    /// [`ImageStore::retire`](immutable_core::ImageStore::retire).
    RetireImage,
    /// [`Fleet::launch`](immutable_core::Fleet::launch).
    Launch,
    /// [`Fleet::describe`](immutable_core::Fleet::describe).
    Describe,
    /// [`Fleet::list`](immutable_core::Fleet::list).
    ListFleets,
    /// [`Fleet::terminate`](immutable_core::Fleet::terminate).
    Terminate,
    /// [`TrafficRouter::attach`](immutable_core::TrafficRouter::attach).
    Attach,
    /// [`TrafficRouter::targets`](immutable_core::TrafficRouter::targets).
    Targets,
    /// [`TrafficRouter::health`](immutable_core::TrafficRouter::health).
    Health,
    /// [`TrafficRouter::routing`](immutable_core::TrafficRouter::routing).
    Routing,
    /// [`TrafficRouter::set_weights`](immutable_core::TrafficRouter::set_weights).
    SetWeights,
    /// [`TrafficRouter::preview`](immutable_core::TrafficRouter::preview).
    Preview,
    /// [`TrafficRouter::detach`](immutable_core::TrafficRouter::detach).
    Detach,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 15] = [
        Op::ResolveImage,
        Op::ListImages,
        Op::LabelImage,
        Op::RetireImage,
        Op::Launch,
        Op::Describe,
        Op::ListFleets,
        Op::Terminate,
        Op::Attach,
        Op::Targets,
        Op::Health,
        Op::Routing,
        Op::SetWeights,
        Op::Preview,
        Op::Detach,
    ];

    /// Whether the operation changes anything.
    pub fn is_mutation(self) -> bool {
        matches!(
            self,
            Op::LabelImage
                | Op::RetireImage
                | Op::Launch
                | Op::Terminate
                | Op::Attach
                | Op::SetWeights
                | Op::Preview
                | Op::Detach
        )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The error a scripted fault produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// [`Error::Throttled`]: retryable.
    Throttled,
    /// [`Error::Transient`]: retryable.
    Transient,
    /// [`Error::NotFound`].
    NotFound,
    /// [`Error::Provider`]: not retryable.
    Provider,
}

impl Fault {
    pub(crate) fn error(self, op: Op) -> Error {
        let message = format!("scripted fault on {op}");
        match self {
            Fault::Throttled => Error::throttled(message),
            Fault::Transient => Error::transient(message),
            Fault::NotFound => Error::not_found(ResourceKind::Fleet, message),
            Fault::Provider => Error::provider(message),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Script {
    pub(crate) op: Op,
    /// Calls of `op` to let through before failing.
    pub(crate) skip: u32,
    /// Calls of `op` to fail after that.
    pub(crate) remaining: u32,
    pub(crate) fault: Fault,
}

/// Counts one call of `op` against every script and returns the fault to inject, if any.
pub(crate) fn take_fault(scripts: &mut Vec<Script>, op: Op) -> Option<Fault> {
    let mut fault = None;
    for s in scripts.iter_mut().filter(|s| s.op == op) {
        if s.skip > 0 {
            s.skip -= 1;
        } else if s.remaining > 0 {
            s.remaining -= 1;
            fault.get_or_insert(s.fault);
        }
    }
    scripts.retain(|s| s.remaining > 0);
    fault
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_skip_then_fail_then_expire() {
        let mut scripts = vec![Script {
            op: Op::Launch,
            skip: 1,
            remaining: 2,
            fault: Fault::Throttled,
        }];
        assert_eq!(take_fault(&mut scripts, Op::Health), None);
        assert_eq!(take_fault(&mut scripts, Op::Launch), None);
        assert_eq!(take_fault(&mut scripts, Op::Launch), Some(Fault::Throttled));
        assert_eq!(take_fault(&mut scripts, Op::Launch), Some(Fault::Throttled));
        assert_eq!(take_fault(&mut scripts, Op::Launch), None);
        assert!(scripts.is_empty());
    }
}
