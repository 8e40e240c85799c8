//! Rollout strategies as data: a list of steps the engine walks, one persisted index at a time.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One step of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// Send `percent` of traffic to the new fleet and the rest to the old one, in one routing
    /// call. The engine first checks that the new fleet has `min_healthy` healthy instances.
    Shift {
        /// 1 to 100.
        percent: u32,
    },
    /// Wait, watching the new fleet's health; a drop below `min_healthy` rolls back.
    Pause {
        /// How long.
        #[serde(with = "crate::serde_duration")]
        duration: Duration,
    },
}

/// A named list of steps.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use immutable_core::{Step, Strategy};
///
/// let canary = Strategy::from_steps("canary", vec![
///     Step::Shift { percent: 10 },
///     Step::Pause { duration: Duration::from_secs(300) },
///     Step::Shift { percent: 100 },
/// ]).unwrap();
/// assert_eq!(canary.steps().len(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strategy {
    name: String,
    steps: Vec<Step>,
}

impl Strategy {
    /// Everything at once: one step to 100 %.
    pub fn blue_green() -> Self {
        Strategy {
            name: "blue_green".into(),
            steps: vec![Step::Shift { percent: 100 }],
        }
    }

    /// A custom step list.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on the field `strategy` when there are no steps, a shift is
    /// outside 1 to 100 %, or the last shift does not reach 100 %.
    pub fn from_steps(name: impl Into<String>, steps: Vec<Step>) -> Result<Self> {
        let s = Strategy {
            name: name.into(),
            steps,
        };
        s.validate()?;
        Ok(s)
    }

    /// The strategy's name, for events and records.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Checks the invariants [`from_steps`](Self::from_steps) documents.
    pub fn validate(&self) -> Result<()> {
        let mut last = None;
        for (i, step) in self.steps.iter().enumerate() {
            if let Step::Shift { percent } = step {
                if !(1..=100).contains(percent) {
                    return Err(Error::invalid(
                        "strategy",
                        format!("step {i} shifts {percent} %, outside 1 to 100"),
                    ));
                }
                last = Some(*percent);
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
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy::blue_green()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_must_reach_100_percent() {
        assert!(Strategy::blue_green().validate().is_ok());
        for steps in [
            vec![],
            vec![Step::Shift { percent: 50 }],
            vec![Step::Shift { percent: 0 }, Step::Shift { percent: 100 }],
            vec![Step::Shift { percent: 101 }],
        ] {
            let err = Strategy::from_steps("x", steps).unwrap_err();
            assert!(matches!(err, Error::InvalidInput { ref field, .. } if field == "strategy"));
        }
    }

    #[test]
    fn steps_round_trip_through_json() {
        let s = Strategy::from_steps(
            "canary",
            vec![
                Step::Shift { percent: 10 },
                Step::Pause {
                    duration: Duration::from_millis(1500),
                },
                Step::Shift { percent: 100 },
            ],
        )
        .unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"duration\":\"1.5s\""), "{json}");
        assert_eq!(serde_json::from_str::<Strategy>(&json).unwrap(), s);
    }
}
