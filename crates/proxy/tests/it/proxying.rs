//! What the proxy does to requests and responses: routing, headers, 401 handling, large bodies.

use std::time::Duration;

use crate::harness::{payments_route, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_prefix_is_a_404_naming_the_known_ones() {
    let setup = Setup::start("unknown", Duration::from_secs(3600), payments_route).await;
    for path in ["/nope/v1/charges", "/paymentsx/v1/charges"] {
        let response = setup
            .http
            .get(format!("{}{path}", setup.proxy_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unknown_route");
        assert_eq!(body["known_prefixes"], serde_json::json!(["/payments"]));
    }
    assert_eq!(
        setup.tokens_issued().await,
        0,
        "no token fetched for nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_only_once_every_route_holds_a_token() {
    let setup = Setup::start("ready", Duration::from_secs(3600), payments_route).await;
    let ready = |s: &Setup| {
        let url = format!("{}/ready", s.proxy_url);
        let http = s.http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(ready(&setup).await, 503);
    assert_eq!(setup.get("/v1/charges?limit=1").await.0, 200);
    assert_eq!(ready(&setup).await, 200);
    let health = setup
        .http
        .get(format!("{}/health_check", setup.proxy_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
}
