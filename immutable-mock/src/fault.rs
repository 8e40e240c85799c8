//! Scripted faults: "fail the next N calls of an operation", "fail the 3rd call", never random.

use immutable_core::{Error, ResourceKind};

/// Every backend operation of the mock, one per trait method: the core's [`Operation`], which
/// backends also price their calls by.
///
/// [`Operation`]: immutable_core::Operation
pub use immutable_core::Operation as Op;

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

/// Which calls a fault script applies to: every call of an operation, or only those made for
/// one service, or on one resource (an image, fleet or target id; the launch key for
/// [`Op::Launch`]). An [`Op`] converts into the first.
///
/// ```
/// use immutable_mock::{Fault, Matching, MockCloud, Op};
///
/// let cloud = MockCloud::new();
/// // Only the billing service's detaches fail; web's go through.
/// cloud.fail_next(Matching::op(Op::Detach).service("billing"), 1, Fault::Provider);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matching {
    op: Op,
    service: Option<String>,
    resource: Option<String>,
}

impl Matching {
    /// Every call of `op`.
    pub fn op(op: Op) -> Self {
        Matching {
            op,
            service: None,
            resource: None,
        }
    }

    /// Only calls made for `service`.
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// Only calls on `resource` (its id, as a string).
    pub fn resource(mut self, resource: impl ToString) -> Self {
        self.resource = Some(resource.to_string());
        self
    }

    fn matches(&self, call: &CallOn<'_>) -> bool {
        self.op == call.op
            && self
                .service
                .as_deref()
                .is_none_or(|s| call.service == Some(s))
            && self
                .resource
                .as_deref()
                .is_none_or(|r| call.resource == Some(r))
    }
}

impl From<Op> for Matching {
    fn from(op: Op) -> Self {
        Matching::op(op)
    }
}

/// What a call was made on, for matching.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallOn<'a> {
    pub(crate) op: Op,
    pub(crate) service: Option<&'a str>,
    pub(crate) resource: Option<&'a str>,
}

#[derive(Debug)]
pub(crate) struct Script {
    pub(crate) matching: Matching,
    /// Matching calls to let through before failing.
    pub(crate) skip: u32,
    /// Matching calls to fail after that.
    pub(crate) remaining: u32,
    pub(crate) fault: Fault,
}

/// Counts one call against every script it matches and returns the fault to inject, if any.
pub(crate) fn take_fault(scripts: &mut Vec<Script>, call: CallOn<'_>) -> Option<Fault> {
    let mut fault = None;
    for s in scripts.iter_mut().filter(|s| s.matching.matches(&call)) {
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
            matching: Op::Launch.into(),
            skip: 1,
            remaining: 2,
            fault: Fault::Throttled,
        }];
        let call = |op| CallOn {
            op,
            service: Some("web"),
            resource: None,
        };
        assert_eq!(take_fault(&mut scripts, call(Op::Health)), None);
        assert_eq!(take_fault(&mut scripts, call(Op::Launch)), None);
        assert_eq!(
            take_fault(&mut scripts, call(Op::Launch)),
            Some(Fault::Throttled)
        );
        assert_eq!(
            take_fault(&mut scripts, call(Op::Launch)),
            Some(Fault::Throttled)
        );
        assert_eq!(take_fault(&mut scripts, call(Op::Launch)), None);
        assert!(scripts.is_empty());
    }

    #[test]
    fn scripts_can_match_a_service_or_a_resource() {
        let mut scripts = vec![
            Script {
                matching: Matching::op(Op::Detach).service("billing"),
                skip: 0,
                remaining: 1,
                fault: Fault::Provider,
            },
            Script {
                matching: Matching::op(Op::Health).resource("tg-2"),
                skip: 0,
                remaining: 1,
                fault: Fault::Transient,
            },
        ];
        let on = |op, service, resource| CallOn {
            op,
            service: Some(service),
            resource: Some(resource),
        };
        assert_eq!(
            take_fault(&mut scripts, on(Op::Detach, "web", "tg-1")),
            None
        );
        assert_eq!(
            take_fault(&mut scripts, on(Op::Health, "web", "tg-1")),
            None
        );
        assert_eq!(
            take_fault(&mut scripts, on(Op::Health, "web", "tg-2")),
            Some(Fault::Transient)
        );
        assert_eq!(
            take_fault(&mut scripts, on(Op::Detach, "billing", "tg-3")),
            Some(Fault::Provider)
        );
        assert!(scripts.is_empty());
    }
}
