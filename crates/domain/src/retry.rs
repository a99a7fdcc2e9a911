//! The one retry policy used for every transient failure: the database, the payment provider, SMTP and the
//! token endpoint. It is plain data (no I/O) so it can be configured, logged and shared; [`RetryPolicy::backoff`]
//! turns it into a `backon` builder for the caller that does the I/O.
//!
//! Only errors a caller has classified as *transient* may be retried with it. What counts as transient is the
//! caller's knowledge (a PostgreSQL 40001, a connect error, an HTTP 503), never this module's.

use std::time::Duration;

/// Exponential backoff with full jitter, bounded both by attempts and by total elapsed time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the first retry.
    pub initial_delay: Duration,
    /// Upper bound for any single delay.
    pub max_delay: Duration,
    /// Retries after the first attempt (so `max_retries = 3` means at most 4 attempts).
    pub max_retries: usize,
    /// Stop retrying once this much time has passed since the first attempt.
    pub max_elapsed: Duration,
}

impl RetryPolicy {
    /// Calls to other services on the request path: a few quick retries, then give up and report.
    pub const fn outbound() -> Self {
        Self {
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(1),
            max_retries: 4,
            max_elapsed: Duration::from_secs(5),
        }
    }

    /// The database on the request path: enough to ride out a failover or a restart of a few seconds, bounded
    /// so that a request past it answers `503` (with `Retry-After`) well inside its timeout.
    pub const fn database() -> Self {
        Self {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_retries: 10,
            max_elapsed: Duration::from_secs(10),
        }
    }

    /// [`RetryPolicy::database`] with another total budget (`SKYBOOK_DATABASE_RETRY_BUDGET`): the elapsed time
    /// bounds it, not the count of attempts.
    pub fn database_within(budget: Duration) -> Self {
        let base = Self::database();
        Self {
            max_retries: usize::try_from(budget.as_millis() / base.initial_delay.as_millis())
                .unwrap_or(usize::MAX)
                .max(1),
            max_elapsed: budget,
            ..base
        }
    }

    /// No retries at all; useful in tests that want to see the first failure.
    pub const fn none() -> Self {
        Self {
            initial_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_retries: 0,
            max_elapsed: Duration::ZERO,
        }
    }

    /// The delay before retry number `attempts` (1 = the first retry) of work that is retried across runs (a
    /// job, an email, an alert delivery) rather than in one `backon` loop: exponential, capped at `max_delay`,
    /// with "equal jitter" — half fixed, half scaled by `jitter` (a random number in `0.0..1.0` the caller
    /// draws) — so work that failed together does not retry in lockstep, yet never retries at once.
    pub fn attempt_delay(&self, attempts: u32, jitter: f64) -> Duration {
        let exponent = attempts.clamp(1, 21) - 1;
        let base = self
            .initial_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let half = base / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// The `backon` builder for this policy (exponential, factor 2, with jitter).
    pub fn backoff(&self) -> backon::ExponentialBuilder {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.initial_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_total_delay(Some(self.max_elapsed))
            .with_factor(2.0)
            .with_jitter()
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::outbound()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_delays_double_up_to_the_cap_with_half_of_each_jittered() {
        let policy = RetryPolicy {
            initial_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            max_retries: 10,
            max_elapsed: Duration::from_secs(3600),
        };
        let fixed: Vec<u64> = (1..=7)
            .map(|n| policy.attempt_delay(n, 0.0).as_secs())
            .collect();
        assert_eq!(fixed, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(policy.attempt_delay(3, 1.0), Duration::from_secs(8));
        assert_eq!(policy.attempt_delay(100, 0.5), Duration::from_secs(45));
    }
}
