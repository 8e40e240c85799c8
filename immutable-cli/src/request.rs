//! The deployment request, from the deploy flags over the service file's `[deploy]` table.

use std::time::Duration;

use immutable_core::{DeploymentRequest, ImageRef, OnTimeout, Steps};

use crate::cli::{OnTimeoutKind, RequestArgs, StrategyKind};
use crate::config::{Config, merge_deploy};
use crate::exit::Failure;

const DEFAULT_PAUSE: Duration = Duration::from_secs(300);

/// An id when it looks like one of the backends' (`ami-...`, `img-...`), else a name.
pub(crate) fn image_ref(image: &str) -> ImageRef {
    if image.starts_with("ami-") || image.starts_with("img-") {
        ImageRef::id(image)
    } else {
        ImageRef::name(image)
    }
}

/// The request `deploy` and `plan` send.
pub(crate) fn build(config: &Config, args: &RequestArgs) -> Result<DeploymentRequest, Failure> {
    let s = merge_deploy(args.settings.clone(), config.deploy.clone());
    let mut request = DeploymentRequest::new(config.service()?, image_ref(&args.image));
    if let Some(n) = s.capacity {
        request = request.capacity(n);
    }
    if let Some(n) = s.min_healthy {
        request = request.min_healthy(n);
    }
    if let Some(d) = s.health_timeout {
        request = request.health_timeout(d);
    }
    if let Some(d) = s.bake_time {
        request = request.bake_time(d);
    }
    let pause = s.pause.unwrap_or(DEFAULT_PAUSE);
    let mut steps = match s.strategy {
        None | Some(StrategyKind::BlueGreen) => Steps::blue_green(),
        Some(StrategyKind::Canary) if s.weights.is_empty() => {
            return Err(Failure::refused(
                "a canary needs --weights, e.g. --weights 10,50",
            ));
        }
        Some(StrategyKind::Canary) => Steps::canary(s.weights.iter().copied(), pause),
        Some(StrategyKind::Linear) => {
            let step = s.linear_step.ok_or_else(|| {
                Failure::refused("a linear rollout needs --linear-step, e.g. --linear-step 25")
            })?;
            if !(1..=100).contains(&step) {
                return Err(Failure::refused(format!(
                    "--linear-step: must be 1 to 100 percent, got {step}"
                )));
            }
            Steps::linear(step, pause)
        }
    };
    if let Some(timeout) = s.approval_timeout {
        let on_timeout = match s.on_approval_timeout {
            None | Some(OnTimeoutKind::RollBack) => OnTimeout::RollBack,
            Some(OnTimeoutKind::KeepWaiting) => OnTimeout::KeepWaiting,
        };
        steps = steps.with_approval(timeout, on_timeout);
    }
    Ok(request.strategy(steps))
}
