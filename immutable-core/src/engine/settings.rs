//! Engine-wide [`Settings`]: poll interval, timeouts, retry policies, retention, leases.

use std::time::Duration;

use crate::{Error, OnHalt, Result, RetryPolicy, limits};

/// Engine-wide settings. Per-deployment settings live in [`DeploymentRequest`](crate::DeploymentRequest).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// How often waits poll the backends at first (the floor). Default 5 s.
    pub poll_interval: Duration,
    /// The longest interval between polls of a wait: a wait polls at the floor at first, then
    /// every quarter of the time it has waited, up to this. Default 30 s; at or below the
    /// floor, every poll is at the floor.
    pub poll_ceiling: Duration,
    /// How long the new fleet's instances may take to reach running. Default 10 minutes.
    pub launch_timeout: Duration,
    /// Retries of retryable errors on forward steps.
    pub retry: RetryPolicy,
    /// Retries of cleanup calls (rollback and retire), which retry any error but
    /// [`Error::NotFound`]: giving up on a cleanup leaks resources. Default 10 attempts.
    pub cleanup_retry: RetryPolicy,
    /// Images of the service kept by retention: the newest this many, plus any in use and the
    /// one replaced by the last deployment. Default 3.
    pub keep_images: usize,
    /// How long a service lease lasts unless renewed; the engine renews it every third of
    /// this. Default 60 s.
    pub lease_ttl: Duration,
    /// What a running deployment does when a halt covers its service. Default
    /// [`OnHalt::Hold`].
    pub on_halt: OnHalt,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll_interval: Duration::from_secs(5),
            poll_ceiling: Duration::from_secs(30),
            launch_timeout: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            cleanup_retry: RetryPolicy::default().with_max_attempts(10),
            keep_images: 3,
            lease_ttl: Duration::from_secs(60),
            on_halt: OnHalt::Hold,
        }
    }
}

impl Settings {
    /// Sets the poll interval.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets the longest interval between polls of a wait (see [`Settings::poll_ceiling`]).
    pub fn with_poll_ceiling(mut self, ceiling: Duration) -> Self {
        self.poll_ceiling = ceiling;
        self
    }

    /// Sets the launch timeout.
    pub fn with_launch_timeout(mut self, timeout: Duration) -> Self {
        self.launch_timeout = timeout;
        self
    }

    /// Sets the retry policy of forward steps.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the retry policy of cleanup calls.
    pub fn with_cleanup_retry(mut self, retry: RetryPolicy) -> Self {
        self.cleanup_retry = retry;
        self
    }

    /// Sets how many images retention keeps.
    pub fn with_keep_images(mut self, keep: usize) -> Self {
        self.keep_images = keep;
        self
    }

    /// Sets the lease time-to-live.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Sets what a running deployment does under a halt.
    pub fn with_on_halt(mut self, policy: OnHalt) -> Self {
        self.on_halt = policy;
        self
    }

    /// Checks every duration and count against [`limits`](crate::limits).
    pub(super) fn validate(&self) -> Result<()> {
        limits::duration(
            "poll_interval",
            self.poll_interval,
            limits::MIN_POLL_INTERVAL,
            limits::MAX_POLL_INTERVAL,
        )?;
        limits::duration(
            "poll_ceiling",
            self.poll_ceiling,
            limits::MIN_POLL_INTERVAL,
            limits::MAX_POLL_INTERVAL,
        )?;
        limits::duration(
            "launch_timeout",
            self.launch_timeout,
            limits::MIN_LAUNCH_TIMEOUT,
            limits::MAX_LAUNCH_TIMEOUT,
        )?;
        limits::duration(
            "lease_ttl",
            self.lease_ttl,
            limits::MIN_LEASE_TTL,
            limits::MAX_LEASE_TTL,
        )?;
        if self.keep_images == 0 {
            return Err(Error::invalid(
                "keep_images",
                "must be at least 1: the image being deployed is always kept",
            ));
        }
        limits::count("keep_images", self.keep_images, 1, limits::MAX_KEEP_IMAGES)?;
        self.retry.validate("retry")?;
        self.cleanup_retry.validate("cleanup_retry")
    }
}
