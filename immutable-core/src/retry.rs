//! The one retry policy: bounded attempts, exponential backoff with jitter.

use std::future::Future;
use std::time::Duration;

use crate::{Error, Result};

/// Bounded exponential backoff with jitter, applied to errors that
/// [`Error::is_retryable`] calls retryable.
///
/// Attempt `n` (from 1) that fails waits a random duration between half and all of
/// `min(initial_backoff * 2^(n-1), max_backoff)` before attempt `n + 1`, through
/// [`tokio::time::sleep`], so virtual-time tests pass through it instantly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included. At least 1.
    pub max_attempts: u32,
    /// The backoff after the first failure.
    pub initial_backoff: Duration,
    /// The longest single backoff.
    pub max_backoff: Duration,
    /// Where the jitter comes from: `None` draws it at random; `Some(seed)` derives it from
    /// the seed and the attempt, so retry timings repeat from run to run (under virtual time,
    /// to the nanosecond).
    pub jitter_seed: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(20),
            jitter_seed: None,
        }
    }
}

impl RetryPolicy {
    /// A policy with the given number of attempts and default backoffs.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the initial and the longest backoff.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Refuses attempts or backoffs outside [`limits`](crate::limits), naming `field`.
    pub(crate) fn validate(&self, field: &str) -> Result<()> {
        crate::limits::count(
            &format!("{field}.max_attempts"),
            self.max_attempts,
            1,
            crate::limits::MAX_RETRY_ATTEMPTS,
        )?;
        crate::limits::duration(
            &format!("{field}.max_backoff"),
            self.max_backoff,
            Duration::ZERO,
            crate::limits::MAX_BACKOFF,
        )?;
        if self.initial_backoff > self.max_backoff {
            return Err(Error::invalid(
                format!("{field}.initial_backoff"),
                format!(
                    "is {:?}, above max_backoff {:?}",
                    self.initial_backoff, self.max_backoff
                ),
            ));
        }
        Ok(())
    }

    /// Derives the jitter from `seed` instead of drawing it at random, so that retry timings
    /// repeat.
    pub fn with_jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    /// Never retries.
    pub fn none() -> Self {
        RetryPolicy::default().with_max_attempts(1)
    }

    /// The backoff after failed attempt `attempt` (from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let cap = exp.min(self.max_backoff);
        let half = cap / 2;
        let unit = match self.jitter_seed {
            Some(seed) => fastrand::Rng::with_seed(seed ^ u64::from(attempt)).f64(),
            None => fastrand::f64(),
        };
        half + cap.saturating_sub(half).mul_f64(unit)
    }

    /// Runs `op` until it succeeds, fails with an error that is not retryable, or runs out of
    /// attempts; `on_retry(attempt, error, backoff)` is told of each retry.
    pub async fn run<T, F, Fut>(
        &self,
        op: F,
        on_retry: impl FnMut(u32, &Error, Duration),
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.run_if(op, Error::is_retryable, on_retry).await
    }

    /// Like [`run`](Self::run), with the caller deciding which errors are worth another
    /// attempt.
    pub async fn run_if<T, F, Fut>(
        &self,
        mut op: F,
        retry_on: impl Fn(&Error) -> bool,
        mut on_retry: impl FnMut(u32, &Error, Duration),
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < self.max_attempts && retry_on(&e) => {
                    let wait = self.backoff(attempt);
                    on_retry(attempt, &e, wait);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn a_seeded_jitter_repeats_and_differs_by_seed() {
        let a = RetryPolicy::default().with_jitter_seed(7);
        let b = RetryPolicy::default().with_jitter_seed(7);
        let c = RetryPolicy::default().with_jitter_seed(8);
        let waits = |p: &RetryPolicy| (1..=6).map(|n| p.backoff(n)).collect::<Vec<_>>();
        assert_eq!(waits(&a), waits(&b));
        assert_ne!(waits(&a), waits(&c));
        for (n, w) in waits(&a).into_iter().enumerate() {
            let cap = a.initial_backoff.saturating_mul(1 << n).min(a.max_backoff);
            assert!(
                w >= cap / 2 && w <= cap,
                "attempt {}: {w:?} outside [{:?}, {cap:?}]",
                n + 1,
                cap / 2
            );
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p =
            RetryPolicy::default().with_backoff(Duration::from_millis(100), Duration::from_secs(1));
        for _ in 0..100 {
            let b1 = p.backoff(1);
            assert!(
                b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100),
                "{b1:?}"
            );
            let b3 = p.backoff(3);
            assert!(
                b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400),
                "{b3:?}"
            );
            let b30 = p.backoff(30);
            assert!(
                b30 >= Duration::from_millis(500) && b30 <= Duration::from_secs(1),
                "{b30:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_retryable_errors_until_success() {
        let calls = AtomicU32::new(0);
        let mut retries = 0;
        let v = RetryPolicy::default()
            .run(
                || async {
                    if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err(Error::throttled("slow down"))
                    } else {
                        Ok(7)
                    }
                },
                |_, _, _| retries += 1,
            )
            .await
            .unwrap();
        assert_eq!(v, 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(retries, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts_and_on_fatal_errors() {
        let calls = AtomicU32::new(0);
        let err = RetryPolicy::default()
            .with_max_attempts(3)
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err::<(), _>(Error::transient("503"))
                },
                |_, _, _| {},
            )
            .await
            .unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        calls.store(0, Ordering::SeqCst);
        let err = RetryPolicy::default()
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err::<(), _>(Error::provider("denied"))
                },
                |_, _, _| {},
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Provider { .. }));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
