//! `/v1/echo` (the request as it arrived) and `/v1/status/{code}`, the endpoints proxy tests use.

use futures::stream;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{status_json, Harness};

#[tokio::test]
async fn get_echo_reports_method_path_query_and_lowercased_headers() {
    let h = Harness::start().await;
    let token = h.token().await;
    let response = h
        .http
        .get(h.url("/v1/echo?a=1&b=x%20y"))
        .bearer_auth(&token)
        .header("X-Mixed-Case", "Value With Spaces")
        .header("X-Forwarded-For", "10.0.0.1")
        .header("X-Forwarded-For", "10.0.0.2")
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["method"], "GET");
    assert_eq!(body["path"], "/v1/echo");
    assert_eq!(body["query"], "a=1&b=x%20y");
    assert_eq!(body["body_bytes"], 0);
    let headers = &body["headers"];
    assert_eq!(headers["authorization"], format!("Bearer {token}"));
    assert_eq!(headers["x-mixed-case"], "Value With Spaces");
    assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 10.0.0.2");
    assert!(headers["host"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(headers.get("X-Mixed-Case").is_none(), "names are lowercase");

    let (_, body) = h.get(&token, "/v1/echo").await;
    assert_eq!(body["query"], Value::Null, "no query string → null");
}

#[tokio::test]
async fn post_echo_counts_a_streamed_body_larger_than_any_buffer_limit() {
    let h = Harness::start().await;
    let token = h.token().await;
    // 5 MiB, chunked (no Content-Length): past axum's 2 MiB default body limit, which a buffering
    // handler would hit.
    let chunks = (0..80).map(|i| Ok::<_, std::io::Error>(vec![i as u8; 64 * 1024]));
    let response = h
        .http
        .post(h.url("/v1/echo"))
        .bearer_auth(&token)
        .header("Content-Type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["method"], "POST");
    assert_eq!(body["body_bytes"], 80 * 64 * 1024);
    assert_eq!(body["headers"]["transfer-encoding"], "chunked");
    assert_eq!(body["headers"]["content-type"], "application/octet-stream");

    let response = h
        .http
        .post(h.url("/v1/echo"))
        .bearer_auth(&token)
        .json(&json!({ "hello": "world" }))
        .send()
        .await
        .unwrap();
    let (_, body) = status_json(response).await;
    assert_eq!(body["body_bytes"], 17);
    assert_eq!(body["headers"]["content-length"], "17");
}

#[tokio::test]
async fn proxy_test_endpoints_need_a_token() {
    let h = Harness::start().await;
    for request in [
        h.http.get(h.url("/v1/echo")),
        h.http.post(h.url("/v1/echo")).body("x"),
        h.http.get(h.url("/v1/status/200")),
        h.http.post(h.url("/v1/blobs")).body("x"),
        h.http.get(h.url("/v1/blobs/10")),
    ] {
        let (status, body) = status_json(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["code"], "invalid_token");
    }
}

#[tokio::test]
async fn status_answers_the_requested_code_with_a_small_body() {
    let h = Harness::start().await;
    let token = h.token().await;
    for code in [
        200u16, 201, 301, 400, 401, 404, 418, 429, 500, 502, 503, 599,
    ] {
        let (status, body) = h.get(&token, &format!("/v1/status/{code}")).await;
        assert_eq!(status.as_u16(), code);
        assert_eq!(body["status"], code);
    }
    let (_, body) = h.get(&token, "/v1/status/404").await;
    assert_eq!(body["reason"], "Not Found");

    for code in [204u16, 304] {
        let response = h
            .http
            .get(h.url(&format!("/v1/status/{code}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), code);
        assert!(response.bytes().await.unwrap().is_empty());
    }

    for bad in ["99", "100", "600", "abc", "-1"] {
        let (status, body) = h.get(&token, &format!("/v1/status/{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["error"]["code"], "parameter_invalid");
    }
}
