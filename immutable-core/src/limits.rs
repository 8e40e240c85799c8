//! The documented bounds of every duration and count in a
//! [`DeploymentRequest`](crate::DeploymentRequest), a strategy and
//! [`Settings`](crate::Settings).
//!
//! Values outside them are refused with [`Error::InvalidInput`] naming the field, before any
//! backend call. The bounds are generous: they catch a zero or a unit mistake (seconds given
//! as milliseconds, days as seconds), not a policy.

use std::time::Duration;

use crate::{Error, Result};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Most instances in one fleet.
pub const MAX_CAPACITY: u32 = 10_000;
/// Shortest health timeout: instances need time to boot and pass checks.
pub const MIN_HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest health timeout.
pub const MAX_HEALTH_TIMEOUT: Duration = DAY;
/// Longest bake (the fast-rollback window); zero is allowed and retires the old fleet at once.
pub const MAX_BAKE_TIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Shortest pause step (short pauses serve tests in real time; zero is refused).
pub const MIN_PAUSE: Duration = Duration::from_millis(1);
/// Longest pause step.
pub const MAX_PAUSE: Duration = DAY;
/// Shortest approval timeout.
pub const MIN_APPROVAL_TIMEOUT: Duration = Duration::from_millis(1);
/// Longest approval timeout.
pub const MAX_APPROVAL_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// Shortest poll interval.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(1);
/// Longest poll interval.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// Shortest launch timeout.
pub const MIN_LAUNCH_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest launch timeout.
pub const MAX_LAUNCH_TIMEOUT: Duration = DAY;
/// Shortest lease: the engine renews it every third of its time-to-live.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(3);
/// Longest lease: a dead runner's lease blocks the service this long.
pub const MAX_LEASE_TTL: Duration = HOUR;
/// Most images retention keeps.
pub const MAX_KEEP_IMAGES: usize = 10_000;
/// Most attempts of one call under a retry policy.
pub const MAX_RETRY_ATTEMPTS: u32 = 100;
/// Longest single backoff of a retry policy.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10 * 60);

/// Refuses `value` outside `min..=max`, naming `field`.
pub(crate) fn duration(field: &str, value: Duration, min: Duration, max: Duration) -> Result<()> {
    if value < min {
        let reason = if value.is_zero() {
            format!("must be above zero (at least {min:?})")
        } else {
            format!("is {value:?}, below the minimum of {min:?}")
        };
        return Err(Error::invalid(field, reason));
    }
    if value > max {
        return Err(Error::invalid(
            field,
            format!("is {value:?}, above the maximum of {max:?}"),
        ));
    }
    Ok(())
}

/// Refuses a count outside `min..=max`, naming `field`.
pub(crate) fn count<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    min: T,
    max: T,
) -> Result<()> {
    if value < min || value > max {
        return Err(Error::invalid(
            field,
            format!("is {value}, must be {min} to {max}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field_and_the_bound() {
        let e = duration("bake_time", DAY * 8, Duration::ZERO, MAX_BAKE_TIME).unwrap_err();
        assert!(e.to_string().contains("`bake_time`"), "{e}");
        assert!(e.to_string().contains("maximum"), "{e}");
        let e = duration("poll_interval", Duration::ZERO, MIN_POLL_INTERVAL, HOUR).unwrap_err();
        assert!(e.to_string().contains("above zero"), "{e}");
        assert!(count("capacity", 0u32, 1, MAX_CAPACITY).is_err());
        assert!(count("capacity", 3u32, 1, MAX_CAPACITY).is_ok());
    }
}
