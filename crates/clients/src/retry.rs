//! The crate's one way to retry an outbound call: [`RetryPolicy::backoff`] (exponential + jitter, bounded by
//! attempts and total delay) driven by `backon`, plus what `backon` cannot know on its own: the policy's
//! `max_elapsed` measured in wall time (attempts included, not only the sleeps), a server's `Retry-After`,
//! and the log line + metric for every retry.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use backon::Retryable;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use skybook_domain::RetryPolicy;
use tokio::time::Instant;

/// The counter every retry of an outbound call increments.
pub(crate) const RETRIES_METRIC: &str = "skybook_outbound_retries_total";

/// How an error tells the retry loop whether trying again can help.
pub(crate) trait RetryClass: Display {
    /// Only transient errors are retried.
    fn is_transient(&self) -> bool;
    /// How long the server asked us to wait (`Retry-After`), if it did.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// Runs `attempt` until it succeeds, fails with a non-transient error, or the policy is spent.
///
/// `target` and `op` label the log lines and the `skybook_outbound_retries_total` counter.
pub(crate) async fn with_retries<T, E, F, Fut>(
    policy: &RetryPolicy,
    target: &str,
    op: &'static str,
    attempt: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: RetryClass,
{
    let started = Instant::now();
    let max_elapsed = policy.max_elapsed;
    let max_delay = policy.max_delay;
    let mut retry_no = 0usize;
    attempt
        .retry(policy.backoff())
        .sleep(tokio::time::sleep)
        .when(|e: &E| e.is_transient())
        .adjust(|e: &E, planned: Option<Duration>| {
            let planned = planned?;
            // Honour Retry-After, but never beyond the policy's largest single delay.
            let delay = match e.retry_after() {
                Some(asked) => planned.max(asked.min(max_delay)),
                None => planned,
            };
            (started.elapsed() + delay <= max_elapsed).then_some(delay)
        })
        .notify(|e: &E, delay: Duration| {
            retry_no += 1;
            tracing::warn!(
                target: "skybook_clients::retry",
                outbound = target,
                op,
                retry = retry_no,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %e,
                "transient failure, retrying"
            );
            metrics::counter!(RETRIES_METRIC, "target" => target.to_owned(), "op" => op)
                .increment(1);
        })
        .await
}

/// `Retry-After` in its delay-seconds form (the HTTP-date form is rare for APIs and is ignored).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

/// A `reqwest` error with its causes, for logs and error messages ("error sending request: connection
/// refused"). `reqwest` errors name the URL but never headers or bodies, so no credential can leak here.
pub(crate) fn describe(err: &reqwest::Error) -> String {
    let mut out = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct Flaky(bool);
    impl Display for Flaky {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(if self.0 { "transient" } else { "permanent" })
        }
    }
    impl RetryClass for Flaky {
        fn is_transient(&self) -> bool {
            self.0
        }
    }

    fn quick(max_retries: usize) -> RetryPolicy {
        RetryPolicy {
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_retries,
            max_elapsed: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_up_to_the_budget() {
        let calls = AtomicUsize::new(0);
        let out: Result<(), Flaky> = with_retries(&quick(3), "test", "op", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Flaky(true))
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicUsize::new(0);
        let out: Result<(), Flaky> = with_retries(&quick(3), "test", "op", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Flaky(false))
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn success_after_transient_failures() {
        let calls = AtomicUsize::new(0);
        let out = with_retries(&quick(3), "test", "op", || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(Flaky(true))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(out.ok(), Some(7));
    }

    #[tokio::test]
    async fn max_elapsed_bounds_wall_time_including_attempts() {
        let policy = RetryPolicy {
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
            max_retries: 100,
            max_elapsed: Duration::from_millis(250),
        };
        let calls = AtomicUsize::new(0);
        let out: Result<(), Flaky> = with_retries(&policy, "test", "op", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err(Flaky(true))
        })
        .await;
        assert!(out.is_err());
        // 100ms per attempt: a fourth attempt would start after the 250ms budget.
        assert!(
            calls.load(Ordering::SeqCst) <= 3,
            "{} attempts",
            calls.load(Ordering::SeqCst)
        );
    }

    #[test]
    fn retry_after_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
