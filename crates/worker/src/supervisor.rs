//! Keeps background loops running: a loop that fails or panics is restarted after a backoff.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use skybook_domain::RetryPolicy;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Runs named loops until [`Supervisor::shutdown`].
pub struct Supervisor {
    cancel: CancellationToken,
    tasks: JoinSet<()>,
    restarts: Arc<AtomicU64>,
    backoff: RetryPolicy,
}

impl Supervisor {
    /// `backoff` spaces restarts: `initial_delay` doubling up to `max_delay` (attempt limits do not apply;
    /// a supervised loop is restarted for as long as the process runs). A loop that ran for a minute before
    /// failing starts again from the initial delay.
    pub fn new(backoff: RetryPolicy) -> Self {
        Self {
            cancel: CancellationToken::new(),
            tasks: JoinSet::new(),
            restarts: Arc::new(AtomicU64::new(0)),
            backoff,
        }
    }

    /// The token loops watch to stop.
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Restarts so far, across all loops.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Starts `make()` as loop `name`, and again after every failure. The loop should return `Ok(())` only
    /// when its cancellation token fires.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, make: F)
    where
        F: Fn(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        let restarts = Arc::clone(&self.restarts);
        let backoff = self.backoff;
        self.tasks.spawn(async move {
            let mut delay = backoff.initial_delay;
            loop {
                let started = tokio::time::Instant::now();
                // A panic inside the loop is caught here and treated like an error.
                let outcome = std::panic::AssertUnwindSafe(make(cancel.clone()))
                    .catch_unwind()
                    .await;
                if cancel.is_cancelled() {
                    return;
                }
                let cause = match outcome {
                    Ok(Ok(())) => "returned while not cancelled".to_owned(),
                    Ok(Err(e)) => format!("{e:#}"),
                    Err(panic) => format!("panicked: {}", skybook_domain::panic_message(panic.as_ref())),
                };
                if started.elapsed() > Duration::from_secs(60) {
                    delay = backoff.initial_delay;
                }
                restarts.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("skybook_worker_restarts_total", "loop" => name).increment(1);
                tracing::error!(r#loop = name, %cause, restart_in_ms = delay.as_millis() as u64, "background loop failed; restarting");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = cancel.cancelled() => return,
                }
                delay = (delay * 2).min(backoff.max_delay);
            }
        });
    }

    /// Cancels every loop and waits for them to stop.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}
