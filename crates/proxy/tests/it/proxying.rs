//! What the proxy does to requests and responses: routing, headers, 401 handling, large bodies.

use std::time::Duration;

use skybook_sandbox::SandboxConfig;

use crate::harness::{payments_route, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_prefix_is_a_404_naming_the_known_ones() {
    let setup = Setup::start("unknown", Duration::from_secs(3600), payments_route).await;
    for path in ["/nope/v1/charges", "/paymentsx/v1/charges"] {
        let (status, body) = setup.get_any(path).await;
        assert_eq!(status, 404, "{path}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_are_rewritten_for_the_upstream() {
    let setup = Setup::start("headers", Duration::from_secs(3600), payments_route).await;
    let response = setup
        .http
        .post(format!("{}/payments/v1/echo?a=1&b=two", setup.proxy_url))
        .header("authorization", "Bearer client-supplied")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "should not pass")
        .header("proxy-authorization", "Basic secret")
        .header("x-forwarded-for", "10.1.2.3")
        .header("x-partner", "client-value")
        .header("x-custom", "kept")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo: serde_json::Value = response.json().await.unwrap();
    let headers = &echo["headers"];
    assert_eq!(echo["path"], "/v1/echo", "prefix stripped");
    assert_eq!(echo["query"], "a=1&b=two", "query preserved");
    assert_eq!(echo["body_bytes"], 5);
    let authorization = headers["authorization"].as_str().unwrap();
    assert!(
        authorization.starts_with("Bearer sbx_at_"),
        "token injected, client's replaced: {authorization}"
    );
    assert!(
        headers.get("x-hop").is_none(),
        "headers named by Connection are hop-by-hop"
    );
    assert!(headers.get("proxy-authorization").is_none());
    assert_eq!(headers["x-forwarded-for"], "10.1.2.3, 127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert!(headers["x-forwarded-host"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(
        headers["x-partner"], "skybook",
        "route headers replace the client's"
    );
    assert_eq!(headers["x-custom"], "kept");
    assert_eq!(
        headers["host"].as_str().unwrap(),
        setup.sandbox.url().trim_start_matches("http://"),
        "Host is the upstream's authority"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_401_refetches_once_and_retries_only_what_is_safe() {
    let setup = Setup::start("unauthorized", Duration::from_secs(3600), payments_route).await;
    assert_eq!(setup.get("/v1/charges?limit=1").await.0, 200);
    assert_eq!(setup.tokens_issued().await, 1);

    // The provider revokes every token: the next GET gets a 401, the proxy refetches once and retries.
    setup
        .faults(serde_json::json!({"revoke_tokens": true}))
        .await;
    let (status, body) = setup.get("/v1/charges?limit=1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(setup.tokens_issued().await, 2, "one refetch");

    // A POST without an Idempotency-Key is not replayed: its 401 comes back, and nothing is sent twice.
    setup
        .faults(serde_json::json!({"revoke_tokens": true}))
        .await;
    let post = |key: Option<&str>| {
        let mut request = setup
            .http
            .post(format!("{}/payments/v1/echo", setup.proxy_url))
            .body("payload");
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send()
    };
    let refused = post(None).await.unwrap();
    assert_eq!(refused.status(), 401, "not retried");
    // The token was dropped all the same: the next request fetches a fresh one and succeeds.
    assert_eq!(post(None).await.unwrap().status(), 200);
    assert_eq!(setup.tokens_issued().await, 3);

    // With an Idempotency-Key (and a small body) the POST is safe to replay, so it is retried.
    setup
        .faults(serde_json::json!({"revoke_tokens": true}))
        .await;
    let retried = post(Some("proxy-test-key-0001")).await.unwrap();
    assert_eq!(retried.status(), 200);
    let echo: serde_json::Value = retried.json().await.unwrap();
    assert_eq!(
        echo["body_bytes"], 7,
        "the buffered body was sent again whole"
    );
    assert_eq!(setup.tokens_issued().await, 4);

    // A 401 that persists (the upstream rejects even a fresh token) is passed on after one retry, no loop.
    let (status, _) = setup.get("/v1/status/401").await;
    assert_eq!(status, 401);
    assert_eq!(setup.tokens_issued().await, 5, "exactly one refetch for it");
}

/// An upstream of our own that answers with the `X-Api-Key` it was sent (the sandbox wants bearer tokens).
async fn key_echo() -> String {
    async fn echo(headers: axum::http::HeaderMap) -> axum::Json<serde_json::Value> {
        let key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        axum::Json(serde_json::json!({ "x_api_key": key }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(echo)).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_credentials_and_several_routes_in_one_proxy() {
    let keyed = key_echo().await;
    let routes = move |url: &str| {
        format!(
            "{}\n[[route]]\nprefix = \"/keyed\"\nupstream = \"{keyed}\"\nstatic_header = \"X-Api-Key\"\nstatic_value_env = \"SECRET\"\n",
            payments_route(url)
        )
    };
    let setup = Setup::start("static", Duration::from_secs(3600), routes).await;
    let echo: serde_json::Value = setup
        .http
        .get(format!("{}/keyed/anything", setup.proxy_url))
        .header("x-api-key", "the-callers-own-value")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        echo["x_api_key"],
        SandboxConfig::DEFAULT_CLIENT_SECRET,
        "the route's static credential, not the caller's"
    );
    assert_eq!(
        setup.tokens_issued().await,
        0,
        "a static route fetches no token"
    );
    assert_eq!(setup.get("/v1/charges?limit=1").await.0, 200);
    assert_eq!(setup.tokens_issued().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_key_jwt_route_gets_its_token_with_a_signed_assertion() {
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sandbox/tests/fixtures");
    let key = fixtures.join("rsa-private.pem");
    let routes = move |url: &str| {
        format!(
            "[[route]]\nprefix = \"/payments\"\nupstream = \"{url}\"\ntoken_url = \"{url}/oauth/token\"\nclient_id = \"jwt-client\"\nprivate_key_file = \"{}\"\n",
            key.display()
        )
    };
    let setup = Setup::start_with("jwt", Duration::from_secs(3600), routes, |config| {
        let pem = std::fs::read_to_string(fixtures.join("rsa-public.pem")).unwrap();
        config.with_jwt_client("jwt-client", &pem).unwrap()
    })
    .await;
    let (status, body) = setup.get("/v1/charges?limit=1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(setup.tokens_issued().await, 1);
}

/// Current and peak resident memory of this process, from /proc (reported, not asserted).
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_megabytes_stream_through_both_ways() {
    use futures::StreamExt;
    const SIZE: usize = 50 * 1024 * 1024;
    let setup = Setup::start("large", Duration::from_secs(3600), payments_route).await;
    let before = rss_kib();

    // Upload: generated in 64 KiB chunks, never held whole by the client, the proxy or the sandbox.
    let chunks = futures::stream::iter((0..SIZE).step_by(65536).map(|start| {
        let chunk: Vec<u8> = (start..(start + 65536).min(SIZE))
            .map(|i| skybook_sandbox::blob_byte(i as u64))
            .collect();
        Ok::<_, std::io::Error>(chunk)
    }));
    let uploaded: serde_json::Value = setup
        .http
        .post(format!("{}/payments/v1/blobs", setup.proxy_url))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(uploaded["bytes"], SIZE as u64);

    // Download: every byte checked as it arrives.
    let response = setup
        .http
        .get(format!("{}/payments/v1/blobs/{SIZE}", setup.proxy_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut offset = 0usize;
    while let Some(chunk) = stream.next().await {
        for byte in chunk.unwrap() {
            assert_eq!(
                byte,
                skybook_sandbox::blob_byte(offset as u64),
                "byte {offset}"
            );
            offset += 1;
        }
    }
    assert_eq!(offset, SIZE);
    let after = rss_kib();
    println!(
        "50 MiB up and down through the proxy: RSS {} → {} MiB, peak {} → {} MiB (client, proxy and sandbox in one process)",
        before.0 / 1024, after.0 / 1024, before.1 / 1024, after.1 / 1024
    );
}
