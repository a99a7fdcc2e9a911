//! The feed client against the sandbox's real feed endpoint: a failing endpoint is retried with the shared
//! policy until it answers (or the retries run out), a refusal is not retried, and a revoked token is renewed.

use std::io::Read as _;

use chrono::NaiveDate;
use serde_json::json;
use skybook_clients::{FeedClient, FeedError};

use crate::support::{quick_retry, Sandbox, TestResult};

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 5, 1).expect("date")
}

fn client(sandbox: &Sandbox) -> FeedClient {
    FeedClient::new(
        reqwest::Client::new(),
        sandbox.url.parse().expect("base url"),
        Some(sandbox.token_manager()),
        quick_retry(),
    )
}

/// Fetches acme's flights for the test's date into a temp file: its bytes, or the error.
async fn fetch(client: &FeedClient) -> Result<Vec<u8>, FeedError> {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let written = client
        .fetch("acme", "flights", date(), file.path(), 1 << 20)
        .await?;
    let mut body = Vec::new();
    std::fs::File::open(file.path())
        .and_then(|mut f| f.read_to_end(&mut body))
        .expect("read the download");
    assert_eq!(
        written,
        body.len() as u64,
        "the bytes reported are the bytes written"
    );
    Ok(body)
}

#[tokio::test]
async fn a_failing_feed_endpoint_is_retried_until_it_answers() -> TestResult {
    let sandbox = Sandbox::start().await;
    let client = client(&sandbox);
    let clean = fetch(&client).await?;
    assert!(clean.starts_with(b"{\"filename\":\"flights-2026-05-01.csv\""));
    assert_eq!(sandbox.stat("feed_requests").await, 1);

    sandbox.faults(json!({ "fail_next_feeds": 2 })).await;
    let body = fetch(&client).await?;
    assert_eq!(body, clean, "the file that finally came is the whole file");
    assert_eq!(
        sandbox.stat("feed_requests").await,
        1 + 3,
        "two 503s, then the file"
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_feed_endpoint_that_stays_down_is_unavailable_after_the_retries() -> TestResult {
    let sandbox = Sandbox::start().await;
    let client = client(&sandbox);
    sandbox.faults(json!({ "fail_next_feeds": 100 })).await;
    let error = fetch(&client).await.expect_err("the endpoint is down");
    assert!(
        matches!(&error, FeedError::Unavailable { cause, .. } if cause.contains("503")),
        "{error:?}"
    );
    let retries = quick_retry().max_retries as u64;
    assert_eq!(sandbox.stat("feed_requests").await, 1 + retries);
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_refused_feed_is_not_retried() -> TestResult {
    let sandbox = Sandbox::start().await;
    let client = client(&sandbox);
    sandbox
        .faults(json!({ "feed_query": "fault=status_404" }))
        .await;
    let error = fetch(&client)
        .await
        .expect_err("the partner has no such file");
    match &error {
        FeedError::Refused { status, body } => {
            assert_eq!(*status, 404);
            assert!(body.contains("resource_missing"), "{body}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(sandbox.stat("feed_requests").await, 1, "asked once");
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_revoked_token_is_renewed_once_and_the_feed_fetched() -> TestResult {
    let sandbox = Sandbox::start().await;
    let client = client(&sandbox);
    fetch(&client).await?;
    let issued = sandbox.stat("tokens_issued").await;
    sandbox.faults(json!({ "revoke_tokens": true })).await;
    fetch(&client).await?;
    assert_eq!(
        sandbox.stat("tokens_issued").await,
        issued + 1,
        "one fresh token"
    );
    assert_eq!(
        sandbox.stat("feed_requests").await,
        2,
        "the 401 never reached the feed"
    );
    sandbox.shutdown().await;
    Ok(())
}
