//! The token endpoint and bearer checks.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{status_json, Harness};

#[tokio::test]
async fn form_credentials_get_a_bearer_token_with_scope_echoed() {
    let h = Harness::start().await;
    let response = h
        .http
        .post(h.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "skybook"),
            ("client_secret", "sandbox-secret"),
            ("scope", "payments"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["access_token"]
        .as_str()
        .unwrap()
        .starts_with("sbx_at_"));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "payments");

    let token = body["access_token"].as_str().unwrap();
    let (status, list) = h.get(token, "/v1/charges").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["object"], "list");
    assert_eq!(h.stats().await["tokens_issued"], 1);
}

#[tokio::test]
async fn basic_client_authentication_is_accepted() {
    let h = Harness::start().await;
    let response = h
        .http
        .post(h.url("/oauth/token"))
        .basic_auth("skybook", Some("sandbox-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("scope").is_none());
    let (status, _) = h
        .get(body["access_token"].as_str().unwrap(), "/v1/charges")
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn configured_client_replaces_the_default_one() {
    let h = Harness::start_with(|c| c.with_client("partner", "s3cr3t+/=")).await;
    let default = h
        .http
        .post(h.url("/oauth/token"))
        .basic_auth("skybook", Some("sandbox-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(default.status(), StatusCode::UNAUTHORIZED);
    let configured = h
        .http
        .post(h.url("/oauth/token"))
        .basic_auth("partner", Some("s3cr3t+/="))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(configured.status(), StatusCode::OK);
}

#[tokio::test]
async fn wrong_secret_is_401_invalid_client_and_counted() {
    let h = Harness::start().await;
    let response = h
        .http
        .post(h.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "skybook"),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    let stats = h.stats().await;
    assert_eq!(stats["tokens_issued"], 0);
    assert_eq!(stats["token_requests_failed"], 1);
}

#[tokio::test]
async fn other_grant_types_are_400_unsupported_grant_type() {
    let h = Harness::start().await;
    let response = h
        .http
        .post(h.url("/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "skybook"),
            ("client_secret", "sandbox-secret"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn missing_or_unknown_bearer_is_401_invalid_token() {
    let h = Harness::start().await;
    for request in [
        h.http.get(h.url("/v1/charges")),
        h.http
            .get(h.url("/v1/charges"))
            .bearer_auth("sbx_at_notarealtoken"),
        h.http
            .get(h.url("/v1/charges"))
            .header("Authorization", "Basic c2t5Ym9vazpzYW5kYm94LXNlY3JldA=="),
        h.http.get(h.url("/feeds/acme/flights?date=2026-05-01")),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "authentication_error");
        assert_eq!(body["error"]["code"], "invalid_token");
    }
}

#[tokio::test]
async fn expired_token_is_401() {
    let h = Harness::start_with(|c| c.with_token_ttl(Duration::from_secs(1))).await;
    let token = h.token().await;
    let (status, _) = h.get(&token, "/v1/charges").await;
    assert_eq!(status, StatusCode::OK, "a fresh token works");

    // Poll until the token expires; the deadline only bounds a broken implementation.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = h.get(&token, "/v1/charges").await;
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(body["error"]["code"], "invalid_token");
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(Instant::now() < deadline, "token never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fresh = h.token().await;
    assert_eq!(h.get(&fresh, "/v1/charges").await.0, StatusCode::OK);
}

#[tokio::test]
async fn control_endpoints_need_no_token() {
    let h = Harness::start().await;
    let health = h.http.get(h.url("/health_check")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok");
    let stats = h.stats().await;
    assert_eq!(stats["charges"], 0);
    assert_eq!(stats["faults"]["decline_all"], false);
}
