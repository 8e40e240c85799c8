//! Wall-clock time that follows tokio's clock, so virtual-time tests see virtual timestamps.

use std::fmt::Debug;
use std::time::{Duration, SystemTime};

/// A source of wall-clock time for records and events.
pub trait Clock: Debug + Send + Sync + 'static {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to: for lease tests of stores that do real I/O, where
/// tokio's paused clock cannot be used.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: std::sync::Arc<std::sync::Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: SystemTime) -> Self {
        ManualClock {
            now: std::sync::Arc::new(std::sync::Mutex::new(start)),
        }
    }

    /// Moves the clock (and every clone of it) forward.
    pub fn advance(&self, by: Duration) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Wall-clock time that follows tokio's clock.
///
/// [`TokioClock::new`] maps tokio's clock to wall time through one origin read once per
/// process: in a normal runtime that is the system clock (not following later adjustments of
/// it); under `start_paused` it advances with virtual time, so a 30-minute bake is recorded as
/// 30 minutes. Every such clock in a process reads the same time, so two engines that resume
/// each other agree on leases and deadlines without sharing a clock by hand.
///
/// [`TokioClock::starting_at`] anchors it at a given wall time instead, for deterministic
/// timestamps in examples and tests.
#[derive(Debug, Clone)]
pub struct TokioClock {
    anchor: Option<SystemTime>,
    mono: tokio::time::Instant,
}

impl TokioClock {
    /// The system clock, shifted by tokio's virtual time when it is paused.
    pub fn new() -> Self {
        TokioClock {
            anchor: None,
            mono: tokio::time::Instant::now(),
        }
    }

    /// A clock reading `wall` now and advancing with tokio's clock.
    pub fn starting_at(wall: SystemTime) -> Self {
        TokioClock {
            anchor: Some(wall),
            mono: tokio::time::Instant::now(),
        }
    }

    /// Time elapsed on tokio's clock since the clock was created.
    pub fn elapsed(&self) -> Duration {
        self.mono.elapsed()
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        if let Some(wall) = self.anchor {
            return wall + self.mono.elapsed();
        }
        let (wall, real) = *ORIGIN.get_or_init(|| (SystemTime::now(), std::time::Instant::now()));
        let tokio_now = tokio::time::Instant::now().into_std();
        match tokio_now.checked_duration_since(real) {
            Some(after) => wall + after,
            None => wall - real.duration_since(tokio_now),
        }
    }
}

/// The wall and monotonic times read once per process, so that every [`TokioClock::new`]
/// maps tokio's clock to wall time the same way, to the nanosecond.
static ORIGIN: std::sync::OnceLock<(SystemTime, std::time::Instant)> = std::sync::OnceLock::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn clocks_made_at_different_times_agree_under_virtual_time() {
        let early = TokioClock::new();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        let late = TokioClock::new();
        let (a, b) = (early.now(), late.now());
        assert_eq!(a, b, "clocks made an hour apart disagree");
        let before = early.now();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(
            early.now().duration_since(before).unwrap(),
            Duration::from_secs(60)
        );
    }
}
