//! A scripted [`Check`]: it passes while the new fleet takes less than a given share of
//! traffic and fails from that share on, as an error rate that rises with exposure would.

use async_trait::async_trait;
use immutable_core::{Check, CheckContext, CheckOutcome};

/// Passes below `percent` % of live traffic on the new fleet, fails at or above it with the
/// reason `error rate 7 % at <weight> %`.
///
/// ```
/// # use immutable_mock::FailsAtWeight;
/// // Register it on an engine: `Engine::builder().check("error-rate", FailsAtWeight::new(50))`.
/// let check = FailsAtWeight::new(50);
/// # let _ = check;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FailsAtWeight {
    percent: u32,
}

impl FailsAtWeight {
    /// A check that fails once the new fleet takes `percent` % of traffic or more.
    pub fn new(percent: u32) -> Self {
        FailsAtWeight { percent }
    }
}

#[async_trait]
impl Check for FailsAtWeight {
    async fn run(&self, ctx: &CheckContext<'_>) -> CheckOutcome {
        if ctx.weight >= self.percent {
            CheckOutcome::fail(format!("error rate 7 % at {} %", ctx.weight))
        } else {
            CheckOutcome::Pass
        }
    }
}
