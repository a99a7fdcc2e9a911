//! Token behaviour through the proxy: one fetch for a cold stampede, one refresh at half-life, outages.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::json;

use crate::harness::{payments_route, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cold_stampede_makes_one_token_fetch() {
    let setup = Setup::start("stampede", Duration::from_secs(3600), payments_route).await;
    let statuses = join_all((0..300).map(|_| setup.get("/v1/charges?limit=1"))).await;
    let failed: Vec<_> = statuses.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of 300 failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    assert_eq!(setup.tokens_issued().await, 1, "exactly one token fetch");
    let route = &setup.proxy.routes()[0];
    assert!(route.has_valid_credentials());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn traffic_across_the_half_life_refreshes_once_and_never_fails() {
    // Tokens live 4 s: refreshed after 2 s, while the first is still valid.
    let setup = Setup::start("refresh", Duration::from_secs(4), payments_route).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut requests = 0;
    // Keep traffic flowing until the refresh has happened (a second token issued), or give up at the deadline.
    while setup.tokens_issued().await < 2 {
        assert!(Instant::now() < deadline, "no refresh within 15 s");
        let batch = join_all((0..10).map(|_| setup.get("/v1/charges?limit=1"))).await;
        for (status, body) in batch {
            assert_eq!(status, 200, "request {requests} failed: {body}");
            requests += 1;
        }
    }
    // More traffic after the refresh: served from the new token.
    for (status, body) in join_all((0..20).map(|_| setup.get("/v1/charges?limit=1"))).await {
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        setup.tokens_issued().await,
        2,
        "one initial fetch, one refresh"
    );
    let metrics = setup.metrics().await;
    let refreshes = metrics
        .lines()
        .find(|l| {
            l.starts_with("skybook_token_refreshes_total") && l.contains(r#"target="/payments""#)
        })
        .unwrap_or_else(|| panic!("no refresh metric in\n{metrics}"));
    assert!(refreshes.ends_with(" 1"), "{refreshes}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_endpoint_outage_is_invisible_until_expiry_then_fast_503s_then_recovery() {
    let setup = Setup::start("outage", Duration::from_secs(3), payments_route).await;
    assert_eq!(setup.get("/v1/charges?limit=1").await.0, 200);
    setup.faults(json!({"token_endpoint_down": true})).await;

    // While the token is valid (past half-life too, when refreshes start failing), nothing fails.
    let first_token_at = Instant::now();
    while first_token_at.elapsed() < Duration::from_secs(2) {
        let (status, body) = setup.get("/v1/charges?limit=1").await;
        assert_eq!(status, 200, "{body}");
    }
    // After expiry: 503 naming the route, fast.
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = setup.get("/v1/charges?limit=1").await;
        if status == 503 {
            break body;
        }
        assert_eq!(status, 200, "{body}");
        assert!(Instant::now() < deadline, "the token never expired");
    };
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"], "token_unavailable");
    assert_eq!(error["route"], "/payments");
    assert!(
        error["cause"].as_str().unwrap().contains("token endpoint"),
        "{body}"
    );
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(setup.get("/v1/charges?limit=1").await.0, 503);
    }
    let per_request = started.elapsed() / 20;
    assert!(
        per_request < Duration::from_millis(1500),
        "503s are fast: {per_request:?} each"
    );
    let ready = setup
        .http
        .get(format!("{}/ready", setup.proxy_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "not ready without a token");

    // The endpoint comes back: the next requests get a token and succeed.
    setup.faults(json!({"token_endpoint_down": false})).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = setup.get("/v1/charges?limit=1").await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery");
    }
    let ready = setup
        .http
        .get(format!("{}/ready", setup.proxy_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}
