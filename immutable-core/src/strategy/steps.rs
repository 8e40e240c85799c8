//! [`Steps`]: a strategy as a fixed list of steps, with the presets (blue-green, canary,
//! linear) and the builders that add checks and approval gates.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{OnTimeout, Progress, Step, Strategy};
use crate::{Error, Result, limits};

/// A fixed list of steps: the presets, or your own.
///
/// ```
/// use std::time::Duration;
/// use immutable_core::{Step, Steps};
///
/// let canary = Steps::canary([10, 50, 100], Duration::from_secs(300))
///     .with_checks(["smoke-preview"], ["error-rate"]);
/// assert_eq!(canary.steps()[0], Step::Preview);
/// assert_eq!(canary.steps()[1], Step::checks(["smoke-preview"]));
/// assert_eq!(canary.steps()[2], Step::shift(10));
/// assert_eq!(canary.steps()[3], Step::checks(["error-rate"]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Steps {
    name: String,
    steps: Vec<Step>,
}

impl Steps {
    /// Verify on the preview entry point, then move 100 % at once.
    pub fn blue_green() -> Self {
        Steps {
            name: "blue_green".into(),
            steps: vec![Step::Preview, Step::shift(100)],
        }
    }

    /// Preview, then each weight in turn with a pause after every one but the last.
    ///
    /// A last weight below 100 is followed by a shift to 100.
    pub fn canary(weights: impl IntoIterator<Item = u32>, pause: Duration) -> Self {
        let mut weights: Vec<u32> = weights.into_iter().collect();
        if weights.last() != Some(&100) {
            weights.push(100);
        }
        let mut steps = vec![Step::Preview];
        for (i, w) in weights.iter().enumerate() {
            steps.push(Step::shift(*w));
            if i + 1 < weights.len() {
                steps.push(Step::pause(pause));
            }
        }
        Steps {
            name: "canary".into(),
            steps,
        }
    }

    /// Preview, then `percent` more every `interval` until 100 %.
    ///
    /// A `percent` of 0 or above 100 is kept as given, never clamped: the steps shift by it
    /// once, and [`validate`](Self::validate) (which every deployment runs) refuses them,
    /// naming the step.
    pub fn linear(percent: u32, interval: Duration) -> Self {
        if !(1..=100).contains(&percent) {
            return Steps {
                name: "linear".into(),
                steps: vec![Step::Preview, Step::shift(percent)],
            };
        }
        let weights: Vec<u32> = (1..)
            .map(|i| (i * percent).min(100))
            .take_while(|w| *w < 100)
            .chain([100])
            .collect();
        Steps {
            name: "linear".into(),
            ..Steps::canary(weights, interval)
        }
    }

    /// A custom step list.
    ///
    /// # Errors
    /// See [`validate`](Self::validate).
    pub fn from_steps(name: impl Into<String>, steps: Vec<Step>) -> Result<Self> {
        let s = Steps {
            name: name.into(),
            steps,
        };
        s.validate()?;
        Ok(s)
    }

    /// Adds checks: `before` right after the preview (against the preview entry point, before
    /// any live traffic moves; at the start when there is no preview step), `after` after
    /// every shift (the last one included: the post-promotion verification).
    pub fn with_checks<A, B>(mut self, before: A, after: B) -> Self
    where
        A: IntoIterator,
        A::Item: Into<String>,
        B: IntoIterator,
        B::Item: Into<String>,
    {
        let before: Vec<String> = before.into_iter().map(Into::into).collect();
        let after: Vec<String> = after.into_iter().map(Into::into).collect();
        let mut steps = Vec::new();
        if !before.is_empty() && self.steps.first() != Some(&Step::Preview) {
            steps.push(Step::checks(before.clone()));
        }
        for step in self.steps {
            let is_shift = matches!(step, Step::Shift { .. });
            let is_preview = step == Step::Preview;
            steps.push(step);
            if is_preview && !before.is_empty() {
                steps.push(Step::checks(before.clone()));
            }
            if is_shift && !after.is_empty() {
                steps.push(Step::checks(after.clone()));
            }
        }
        self.steps = steps;
        self
    }

    /// Adds an approval gate before the first shift.
    pub fn with_approval(mut self, timeout: Duration, on_timeout: OnTimeout) -> Self {
        let at = self
            .steps
            .iter()
            .position(|s| matches!(s, Step::Shift { .. }))
            .unwrap_or(self.steps.len());
        self.steps.insert(at, Step::approval(timeout, on_timeout));
        self
    }

    /// The list's name, for events and records.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Checks that shifts are within 1 to 100 %, the last shift reaches 100 %, check lists
    /// are not empty, and approvals have a timeout.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on the field `strategy`.
    pub fn validate(&self) -> Result<()> {
        let mut last = None;
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                Step::Shift { percent } if !(1..=100).contains(percent) => {
                    return Err(Error::invalid(
                        "strategy",
                        format!("step {i} shifts {percent} %, outside 1 to 100"),
                    ));
                }
                Step::Shift { percent } => last = Some(*percent),
                Step::Checks { names }
                    if names.is_empty() || names.iter().any(String::is_empty) =>
                {
                    return Err(Error::invalid(
                        "strategy",
                        format!("step {i} names no check"),
                    ));
                }
                Step::Approval { timeout, .. } if timeout.is_zero() => {
                    return Err(Error::invalid(
                        "strategy",
                        format!("step {i} is an approval without a timeout"),
                    ));
                }
                Step::Approval { timeout, .. } => limits::duration(
                    &format!("strategy.steps[{i}].timeout"),
                    *timeout,
                    limits::MIN_APPROVAL_TIMEOUT,
                    limits::MAX_APPROVAL_TIMEOUT,
                )?,
                Step::Pause { duration } => limits::duration(
                    &format!("strategy.steps[{i}].duration"),
                    *duration,
                    limits::MIN_PAUSE,
                    limits::MAX_PAUSE,
                )?,
                _ => {}
            }
        }
        if last != Some(100) {
            return Err(Error::invalid(
                "strategy",
                format!(
                    "`{}` must end by shifting 100 % to the new fleet",
                    self.name
                ),
            ));
        }
        Ok(())
    }

    /// Every check the list names.
    pub fn check_names(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().flat_map(|s| match s {
            Step::Checks { names } => names.iter().map(String::as_str).collect::<Vec<_>>(),
            _ => Vec::new(),
        })
    }
}

impl Default for Steps {
    fn default() -> Self {
        Steps::blue_green()
    }
}

#[async_trait]
impl Strategy for Steps {
    async fn next_step(&self, progress: &Progress<'_>) -> Result<Option<Step>> {
        Ok(self.steps.get(progress.index).cloned())
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;
    use crate::StrategySpec;

    fn shifts(s: &Steps) -> Vec<u32> {
        s.steps()
            .iter()
            .filter_map(|s| match s {
                Step::Shift { percent } => Some(*percent),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn presets_end_at_100_percent() {
        let m = Duration::from_secs(60);
        assert_eq!(shifts(&Steps::blue_green()), [100]);
        assert_eq!(shifts(&Steps::canary([10, 50, 100], m)), [10, 50, 100]);
        assert_eq!(shifts(&Steps::canary([5], m)), [5, 100]);
        assert_eq!(shifts(&Steps::linear(30, m)), [30, 60, 90, 100]);
        assert_eq!(shifts(&Steps::linear(25, m)), [25, 50, 75, 100]);
        for bad in [0, 101, u32::MAX] {
            let err = Steps::linear(bad, m).validate().unwrap_err();
            assert!(
                err.to_string().contains(&format!("shifts {bad} %")),
                "{err}"
            );
        }
        let c = Steps::canary([10, 50, 100], m);
        assert_eq!(
            c.steps()
                .iter()
                .filter(|s| matches!(s, Step::Pause { .. }))
                .count(),
            2
        );
        for s in [Steps::blue_green(), c, Steps::linear(7, m)] {
            s.validate().unwrap();
        }
    }

    #[test]
    fn bad_step_lists_are_refused() {
        for steps in [
            vec![],
            vec![Step::shift(50)],
            vec![Step::shift(0), Step::shift(100)],
            vec![Step::shift(101)],
            vec![Step::checks(Vec::<String>::new()), Step::shift(100)],
            vec![
                Step::approval(Duration::ZERO, OnTimeout::RollBack),
                Step::shift(100),
            ],
        ] {
            let err = Steps::from_steps("x", steps).unwrap_err();
            assert!(matches!(err, Error::InvalidInput { ref field, .. } if field == "strategy"));
        }
    }

    #[test]
    fn checks_and_approvals_are_placed() {
        let s = Steps::blue_green()
            .with_checks(["pre"], ["post"])
            .with_approval(Duration::from_secs(60), OnTimeout::RollBack);
        assert_eq!(
            s.steps(),
            [
                Step::Preview,
                Step::checks(["pre"]),
                Step::approval(Duration::from_secs(60), OnTimeout::RollBack),
                Step::shift(100),
                Step::checks(["post"]),
            ]
        );
        assert_eq!(s.check_names().collect::<Vec<_>>(), ["pre", "post"]);
    }

    #[test]
    fn steps_round_trip_through_json() {
        let s: StrategySpec = Steps::canary([10, 100], Duration::from_millis(1500))
            .with_approval(Duration::from_secs(9), OnTimeout::KeepWaiting)
            .into();
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"duration\":\"1.5s\""), "{json}");
        assert_eq!(serde_json::from_str::<StrategySpec>(&json).unwrap(), s);
    }
}
