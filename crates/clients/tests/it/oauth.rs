//! The token manager against the sandbox's real OAuth2 endpoint.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use skybook_clients::{TokenError, TokenManager};
use skybook_domain::RetryPolicy;

use crate::support::{eventually, quick_retry, Sandbox, TestResult};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_callers_share_exactly_one_token_request() -> TestResult {
    let sandbox = Sandbox::start().await;
    let manager = sandbox.token_manager();

    let calls = (0..300).map(|_| {
        let manager = manager.clone();
        tokio::spawn(async move { manager.token().await })
    });
    let tokens = futures::future::join_all(calls).await;

    let first = tokens[0]
        .as_ref()
        .expect("join")
        .as_ref()
        .expect("token")
        .bearer_header();
    for token in &tokens {
        let token = token
            .as_ref()
            .expect("join")
            .as_ref()
            .expect("every caller gets the token");
        assert!(token.is_valid());
        assert_eq!(
            token.bearer_header(),
            first,
            "every caller gets the same token"
        );
    }
    assert_eq!(sandbox.stat("tokens_issued").await, 1);
    let stats = manager.stats();
    assert_eq!(
        (stats.fetches_ok, stats.fetches_failed, stats.refreshes),
        (1, 0, 0)
    );
    // Callers scheduled before the token arrived waited on the one request; any scheduled after it were
    // served from the cache. Which is timing, so only the bounds are asserted.
    assert!(
        (1..=300).contains(&stats.waits),
        "cold callers wait on the one request: {}",
        stats.waits
    );

    // Warm now: served from the cache without another request.
    manager.token().await?;
    assert_eq!(sandbox.stat("tokens_issued").await, 1);
    assert_eq!(
        manager.stats().waits,
        stats.waits,
        "a warm call waits for nothing"
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_life_triggers_one_background_refresh_and_no_caller_waits() -> TestResult {
    let sandbox = Sandbox::start_with(|c| c.with_token_ttl(Duration::from_secs(2))).await;
    let manager = sandbox.token_manager();
    let first = manager.token().await?;
    assert_eq!(manager.stats().waits, 1);

    // Keep calling, ten at a time, across the half-life until the refreshed token has arrived.
    let served = AtomicUsize::new(0);
    let served = &served;
    eventually(Duration::from_secs(10), "the background refresh", || {
        let manager = manager.clone();
        async move {
            let batch = (0..10).map(|_| manager.token());
            for token in futures::future::join_all(batch).await {
                let token = token.expect("no caller sees an error");
                assert!(token.is_valid());
                served.fetch_add(1, Ordering::Relaxed);
            }
            (manager.stats().fetches_ok == 2).then_some(())
        }
    })
    .await;
    let served = served.load(Ordering::Relaxed);

    let stats = manager.stats();
    assert_eq!(stats.refreshes, 1, "exactly one refresh");
    assert_eq!(stats.fetches_failed, 0);
    assert_eq!(
        stats.waits, 1,
        "after the first call nobody waited: {served} calls served from the cache"
    );
    assert_eq!(sandbox.stat("tokens_issued").await, 2);

    let refreshed = manager.token().await?;
    assert_ne!(
        refreshed.bearer_header(),
        first.bearer_header(),
        "the refreshed token is served"
    );
    assert!(refreshed.expires_at() > first.expires_at());
    assert_eq!(manager.stats().waits, 1);
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_down_serves_the_cache_then_fails_fast_then_recovers() -> TestResult {
    let sandbox = Sandbox::start_with(|c| c.with_token_ttl(Duration::from_secs(2))).await;
    let manager = sandbox.token_manager();
    let first = manager.token().await?;

    sandbox.faults(json!({"token_endpoint_down": true})).await;
    let cached = manager.token().await?;
    assert_eq!(
        cached.bearer_header(),
        first.bearer_header(),
        "served from the cache while the endpoint is down"
    );

    // Across the half-life (refresh fails in the background) the old token keeps serving; once it has
    // expired, the caller gets an error once the retry policy is spent.
    let error = eventually(Duration::from_secs(20), "an error after expiry", || {
        let manager = manager.clone();
        let first = first.clone();
        async move {
            match manager.token().await {
                Ok(token) => {
                    assert_eq!(
                        token.bearer_header(),
                        first.bearer_header(),
                        "no new token can be had"
                    );
                    None
                }
                Err(error) => Some(error),
            }
        }
    })
    .await;
    // Right after a failed cold fetch, the next caller gets that failure at once: no new fetch, no waiting.
    let fetches_before = manager.stats().fetches_failed + manager.stats().fetches_ok;
    let started = tokio::time::Instant::now();
    assert!(manager.token().await.is_err());
    assert!(started.elapsed() < Duration::from_millis(50), "fails fast");
    let stats = manager.stats();
    assert_eq!(
        stats.fetches_failed + stats.fetches_ok,
        fetches_before,
        "no new fetch"
    );
    assert!(matches!(error, TokenError::Unavailable { .. }), "{error:?}");
    assert!(error.is_transient());
    assert!(
        error.to_string().contains("payments"),
        "the error names the target: {error}"
    );
    assert!(manager.cached().is_none());
    let stats = manager.stats();
    assert!(
        stats.refreshes >= 1,
        "a background refresh was tried: {stats:?}"
    );
    assert!(stats.fetches_failed >= 1, "{stats:?}");
    assert!(sandbox.stat("token_requests_failed").await >= 1);

    // Back up: the first call after that short window fetches a new token.
    sandbox.faults(json!({})).await;
    let recovered = eventually(Duration::from_secs(5), "recovery", || {
        let manager = manager.clone();
        async move { manager.token().await.ok() }
    })
    .await;
    assert!(recovered.is_valid());
    assert_ne!(recovered.bearer_header(), first.bearer_header());
    assert_eq!(sandbox.stat("tokens_issued").await, 2);
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_not_retried_and_never_shown() -> TestResult {
    let sandbox = Sandbox::start().await;
    let wrong_secret = "definitely-wrong-secret";
    let manager = sandbox.token_manager_with(wrong_secret, quick_retry());

    let error = manager.token().await.expect_err("wrong secret");
    match &error {
        TokenError::Rejected {
            name,
            status,
            error,
            ..
        } => {
            assert_eq!(name, "payments");
            assert_eq!(*status, 401);
            assert_eq!(error, "invalid_client");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(!error.is_transient());
    assert_eq!(
        sandbox.stat("token_requests_failed").await,
        1,
        "a refused client is not retried"
    );
    assert_eq!(sandbox.stat("tokens_issued").await, 0);
    for shown in [
        error.to_string(),
        format!("{error:?}"),
        format!("{manager:?}"),
    ] {
        assert!(!shown.contains(wrong_secret), "secret leaked: {shown}");
    }
    let credentials = sandbox.credentials(wrong_secret);
    assert!(!format!("{credentials:?}").contains(wrong_secret));
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_token_endpoint_errors_within_the_retry_policy() -> TestResult {
    // Start and stop a sandbox to get a port nobody listens on.
    let sandbox = Sandbox::start().await;
    let manager = sandbox.token_manager_with(
        "sandbox-secret",
        RetryPolicy {
            max_retries: 2,
            ..quick_retry()
        },
    );
    sandbox.shutdown().await;

    let error = manager.token().await.expect_err("nobody listens");
    assert!(matches!(error, TokenError::Unavailable { .. }), "{error:?}");
    assert_eq!(
        manager.stats().fetches_failed,
        1,
        "retries of one request count as one fetch"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_hide_their_secret_and_invalidate_only_drops_the_same_token() -> TestResult {
    let sandbox = Sandbox::start().await;
    let manager: TokenManager = sandbox.token_manager();
    let first = manager.token().await?;

    let header = first.bearer_header();
    assert!(header.is_sensitive());
    assert!(header.to_str()?.starts_with("Bearer sbx_at_"));
    let raw = header.to_str()?.trim_start_matches("Bearer ").to_owned();
    assert!(
        !format!("{first:?}").contains(&raw),
        "Debug shows the token"
    );
    assert!(!format!("{manager:?}").contains(&raw));

    assert!(manager.cached().is_some());
    manager.invalidate(&first);
    assert!(
        manager.cached().is_none(),
        "invalidating the cached token drops it"
    );

    let second = manager.token().await?;
    assert_ne!(second.bearer_header(), first.bearer_header());
    manager.invalidate(&first);
    let still = manager
        .cached()
        .expect("a stale invalidate leaves the new token alone");
    assert_eq!(still.bearer_header(), second.bearer_header());
    assert_eq!(sandbox.stat("tokens_issued").await, 2);
    sandbox.shutdown().await;
    Ok(())
}
