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

/// Wall-clock time anchored when it is created and advanced by [`tokio::time::Instant`].
///
/// In a normal runtime this is the system clock (it does not follow later adjustments of the
/// system clock); under `start_paused` it advances with virtual time, so a 30-minute bake is
/// recorded as 30 minutes.
#[derive(Debug, Clone)]
pub struct TokioClock {
    wall: SystemTime,
    mono: tokio::time::Instant,
}

impl TokioClock {
    /// Anchors the clock at the current system time.
    pub fn new() -> Self {
        Self::starting_at(SystemTime::now())
    }

    /// Anchors the clock at `wall`, for deterministic timestamps in tests.
    pub fn starting_at(wall: SystemTime) -> Self {
        TokioClock {
            wall,
            mono: tokio::time::Instant::now(),
        }
    }

    /// Time elapsed on tokio's clock since the anchor.
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
        self.wall + self.mono.elapsed()
    }
}
