//! Checks: verifications run before promotion, against the preview entry point, and after
//! each step. A failing check rolls the deployment back.

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{DeploymentId, ImageId, ServiceName, TargetId, TrafficRouter};

#[cfg(feature = "http-check")]
mod cutover;
#[cfg(feature = "http-check")]
mod http;
#[cfg(feature = "prometheus-check")]
mod prometheus;
#[cfg(any(feature = "http-check", feature = "prometheus-check"))]
mod url;
#[cfg(feature = "http-check")]
pub use cutover::CutoverCheck;
#[cfg(feature = "http-check")]
pub use http::HttpCheck;
#[cfg(feature = "prometheus-check")]
pub use prometheus::{Condition, NoData, PrometheusCheck, PrometheusCheckBuilder};

/// What a check may look at.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CheckContext<'a> {
    /// The deployment.
    pub deployment: &'a DeploymentId,
    /// Its service.
    pub service: &'a ServiceName,
    /// The new fleet's target.
    pub target: &'a TargetId,
    /// Percent of live traffic on the new fleet when the check runs (0 before promotion).
    pub weight: u32,
    /// The service's router, to read health or routing.
    pub router: &'a dyn TrafficRouter,
    /// The image the new fleet runs, when known (always, inside the engine).
    pub image: Option<&'a ImageId>,
}

impl<'a> CheckContext<'a> {
    /// A context, for running a check outside the engine (in its own tests, say).
    pub fn new(
        deployment: &'a DeploymentId,
        service: &'a ServiceName,
        target: &'a TargetId,
        weight: u32,
        router: &'a dyn TrafficRouter,
    ) -> Self {
        CheckContext {
            deployment,
            service,
            target,
            weight,
            router,
            image: None,
        }
    }

    /// The same context, naming the image the new fleet runs.
    pub fn with_image(mut self, image: &'a ImageId) -> Self {
        self.image = Some(image);
        self
    }
}

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CheckOutcome {
    /// It passed.
    Pass,
    /// It failed, for this reason.
    Fail {
        /// Why, in words an operator can act on.
        reason: String,
    },
}

impl CheckOutcome {
    /// A failure.
    pub fn fail(reason: impl Into<String>) -> Self {
        CheckOutcome::Fail {
            reason: reason.into(),
        }
    }

    /// Whether it passed.
    pub fn passed(&self) -> bool {
        *self == CheckOutcome::Pass
    }
}

/// A verification of the new fleet. Register checks by name with
/// [`EngineBuilder::check`](crate::EngineBuilder::check) and name them in
/// [`Step::Checks`](crate::Step::Checks).
///
/// A check waits (through tokio time) as long as it needs and reports a failure as
/// [`CheckOutcome::Fail`], never by panicking.
#[async_trait]
pub trait Check: Debug + Send + Sync + 'static {
    /// Runs the check once.
    async fn run(&self, ctx: &CheckContext<'_>) -> CheckOutcome;
}

/// Passes when at least `min_ratio` of the new fleet's registered instances are healthy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthRatioCheck {
    min_ratio: f64,
}

impl HealthRatioCheck {
    /// `min_ratio` is clamped to 0 to 1.
    pub fn new(min_ratio: f64) -> Self {
        HealthRatioCheck {
            min_ratio: min_ratio.clamp(0.0, 1.0),
        }
    }
}

#[async_trait]
impl Check for HealthRatioCheck {
    async fn run(&self, ctx: &CheckContext<'_>) -> CheckOutcome {
        match ctx.router.health(ctx.service, ctx.target).await {
            Err(e) => CheckOutcome::fail(format!("cannot read health: {e}")),
            Ok(report) if report.instances.is_empty() => {
                CheckOutcome::fail("no instance is registered")
            }
            Ok(report) => {
                let ratio = report.healthy() as f64 / report.instances.len() as f64;
                if ratio + f64::EPSILON >= self.min_ratio {
                    CheckOutcome::Pass
                } else {
                    CheckOutcome::fail(format!(
                        "{} of {} instances healthy ({:.0} %), {:.0} % needed",
                        report.healthy(),
                        report.instances.len(),
                        ratio * 100.0,
                        self.min_ratio * 100.0
                    ))
                }
            }
        }
    }
}
