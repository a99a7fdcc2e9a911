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

    /// No retries at all; useful in tests that want to see the first failure.
    pub const fn none() -> Self {
        Self {
            initial_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_retries: 0,
            max_elapsed: Duration::ZERO,
        }
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
