//! How often a wait polls: at the floor ([`Settings::poll_interval`](super::Settings)) while
//! the wait is young, then slower, up to the ceiling ([`Settings::poll_ceiling`](super::Settings)).
//! Short waits end soon after their condition holds; long waits cost few calls.

use std::time::{Duration, SystemTime};

use super::Settings;
use super::run::Run;

/// The share of a wait's time so far that its next poll interval may take: a wait ends at most
/// this much later than its condition came true (or one floor interval, if longer).
const GROWTH: u32 = 4;

/// The poll intervals of one wait.
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    started: SystemTime,
    floor: Duration,
    ceiling: Duration,
}

impl Backoff {
    /// A wait that starts at `now` with the settings' floor and ceiling.
    pub(super) fn new(settings: &Settings, now: SystemTime) -> Self {
        Backoff {
            started: now,
            floor: settings.poll_interval,
            ceiling: settings.poll_ceiling.max(settings.poll_interval),
        }
    }

    /// The interval before the next poll: a quarter of the time waited so far, between the
    /// floor and the ceiling.
    pub(super) fn next(&self, now: SystemTime) -> Duration {
        let waited = now.duration_since(self.started).unwrap_or_default();
        (waited / GROWTH).clamp(self.floor, self.ceiling)
    }
}

/// The polls of a wait of fixed length `d` that runs to its end, the first at its start and
/// the last at its end, when each poll takes no time (the mock's virtual time).
pub(super) fn polls_over(settings: &Settings, d: Duration) -> u64 {
    let start = SystemTime::UNIX_EPOCH;
    let backoff = Backoff::new(settings, start);
    let mut waited = Duration::ZERO;
    let mut polls = 1;
    while waited < d {
        let interval = backoff.next(start + waited);
        if interval == backoff.ceiling {
            // From here on every interval is the ceiling.
            let rest = (d - waited).as_nanos().div_ceil(interval.as_nanos().max(1));
            return polls + rest as u64;
        }
        waited = (waited + interval).min(d);
        polls += 1;
    }
    polls
}

impl Run<'_> {
    /// The poll intervals of a wait starting now.
    pub(super) fn backoff(&self) -> Backoff {
        Backoff::new(&self.engine.settings, self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_start_at_the_floor_and_slow_down_to_the_ceiling() {
        let settings = Settings::default()
            .with_poll_interval(Duration::from_secs(1))
            .with_poll_ceiling(Duration::from_secs(10));
        let t0 = SystemTime::UNIX_EPOCH;
        let b = Backoff::new(&settings, t0);
        let at = |s| b.next(t0 + Duration::from_secs(s));
        assert_eq!(at(0), Duration::from_secs(1));
        assert_eq!(at(3), Duration::from_secs(1));
        assert_eq!(at(20), Duration::from_secs(5));
        assert_eq!(at(3600), Duration::from_secs(10));
    }

    #[test]
    fn a_fixed_wait_counts_its_polls_with_the_backoff() {
        let flat = Settings::default()
            .with_poll_interval(Duration::from_secs(1))
            .with_poll_ceiling(Duration::from_secs(1));
        assert_eq!(polls_over(&flat, Duration::ZERO), 1);
        assert_eq!(polls_over(&flat, Duration::from_secs(10)), 11);
        let backoff = flat.with_poll_ceiling(Duration::from_secs(10));
        // 0..5 s at 1 s, then a quarter of the time waited: 6.25, 7.8, and 8 (9.8, capped).
        assert_eq!(polls_over(&backoff, Duration::from_secs(8)), 9);
        assert_eq!(polls_over(&backoff, Duration::from_secs(100)), 22);
    }

    #[test]
    fn a_ceiling_below_the_floor_means_no_backoff() {
        let settings = Settings::default()
            .with_poll_interval(Duration::from_secs(2))
            .with_poll_ceiling(Duration::from_secs(1));
        let t0 = SystemTime::UNIX_EPOCH;
        let b = Backoff::new(&settings, t0);
        assert_eq!(
            b.next(t0 + Duration::from_secs(600)),
            Duration::from_secs(2)
        );
    }
}
