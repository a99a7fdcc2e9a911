//! Injected faults, one test each, plus how settings combine and clear.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{status_json, Harness, GOOD_CARD};

#[tokio::test]
async fn settings_apply_on_top_and_empty_object_clears_them() {
    let h = Harness::start().await;
    let after_first = h.faults(json!({ "fail_next_charges": 2 })).await;
    assert_eq!(after_first["fail_next_charges"], 2);
    let combined = h
        .faults(json!({ "decline_all": true, "latency_ms": 5 }))
        .await;
    assert_eq!(
        combined,
        json!({
            "fail_next_charges": 2,
            "lose_next_charge_responses": 0,
            "decline_all": true,
            "latency_ms": 5,
            "token_endpoint_down": false,
            "fail_next_feeds": 0,
            "feed_query": "",
            "revoke_tokens": false,
        })
    );
    let cleared = h.faults(json!({})).await;
    assert_eq!(cleared["fail_next_charges"], 0);
    assert_eq!(cleared["decline_all"], false);
    assert_eq!(cleared["latency_ms"], 0);

    let response = h
        .http
        .post(h.url("/sandbox/faults"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn fail_next_charges_answers_500_without_charging() {
    let h = Harness::start().await;
    let token = h.token().await;
    let card = h.tokenise(&token, GOOD_CARD).await;
    h.faults(json!({ "fail_next_charges": 1 })).await;

    let (status, body) = status_json(h.charge(&token, "flaky", 2_000, &card).await).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["type"], "api_error");
    let (_, by_key) = h.get(&token, "/v1/charges?idempotency_key=flaky").await;
    assert_eq!(by_key["data"], json!([]), "nothing was charged");
    assert_eq!(h.stats().await["faults"]["fail_next_charges"], 0);

    let (status, charge) = status_json(h.charge(&token, "flaky", 2_000, &card).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(charge["status"], "succeeded");
    let stats = h.stats().await;
    assert_eq!(stats["charges"], 1);
    assert_eq!(stats["charge_requests"], 2);
    assert_eq!(stats["idempotent_replays"], 0);
}

#[tokio::test]
async fn lost_charge_response_drops_the_connection_after_committing() {
    let h = Harness::start().await;
    let token = h.token().await;
    let card = h.tokenise(&token, GOOD_CARD).await;
    h.faults(json!({ "lose_next_charge_responses": 1 })).await;

    let lost = h.try_charge(&token, "lost-1", 3_000, &card).await;
    let error = lost.expect_err("the response must be lost, not answered");
    assert!(
        !error.is_timeout(),
        "the connection is dropped, not left hanging: {error}"
    );

    let (status, by_key) = h.get(&token, "/v1/charges?idempotency_key=lost-1").await;
    assert_eq!(status, StatusCode::OK);
    let stored = by_key["data"][0].clone();
    assert_eq!(stored["status"], "succeeded", "the charge was committed");

    let (status, retry) = status_json(h.charge(&token, "lost-1", 3_000, &card).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retry["id"], stored["id"]);
    let stats = h.stats().await;
    assert_eq!(stats["charges"], 1);
    assert_eq!(stats["idempotent_replays"], 1);
    assert_eq!(stats["faults"]["lose_next_charge_responses"], 0);
}

#[tokio::test]
async fn decline_all_declines_good_cards_until_cleared() {
    let h = Harness::start().await;
    let token = h.token().await;
    let card = h.tokenise(&token, GOOD_CARD).await;
    h.faults(json!({ "decline_all": true })).await;
    let (status, body) = status_json(h.charge(&token, "d-1", 500, &card).await).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body["error"]["code"], "card_declined");

    h.faults(json!({})).await;
    let (status, body) = status_json(h.charge(&token, "d-2", 500, &card).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "succeeded");
    let stats = h.stats().await;
    assert_eq!(stats["declines"], 1);
    assert_eq!(stats["charges"], 1);
}

#[tokio::test]
async fn token_endpoint_down_answers_503_until_cleared() {
    let h = Harness::start().await;
    h.faults(json!({ "token_endpoint_down": true })).await;
    let response = h
        .http
        .post(h.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "skybook"),
            ("client_secret", "sandbox-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let stats = h.stats().await;
    assert_eq!(stats["tokens_issued"], 0);
    assert_eq!(stats["token_requests_failed"], 1);

    h.faults(json!({ "token_endpoint_down": false })).await;
    let token = h.token().await;
    assert!(token.starts_with("sbx_at_"));
}

#[tokio::test]
async fn latency_fault_is_reported_and_requests_still_succeed() {
    let h = Harness::start().await;
    let token = h.token().await;
    let settings = h.faults(json!({ "latency_ms": 50 })).await;
    assert_eq!(settings["latency_ms"], 50);
    assert_eq!(h.stats().await["faults"]["latency_ms"], 50);
    let card = h.tokenise(&token, GOOD_CARD).await;
    let (status, charge) = status_json(h.charge(&token, "slow", 700, &card).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(charge["status"], "succeeded");
}

#[tokio::test]
async fn revoke_tokens_revokes_every_token_issued_so_far_durably_and_only_once() {
    let mut h = Harness::start().await;
    let first = h.token().await;
    let second = h.token().await;
    assert_eq!(h.get(&first, "/v1/charges").await.0, StatusCode::OK);

    let settings = h.faults(json!({ "revoke_tokens": true })).await;
    assert_eq!(
        settings["revoke_tokens"], false,
        "a one-shot action, not a setting"
    );
    for token in [&first, &second] {
        let (status, body) = h.get(token, "/v1/charges").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["code"], "invalid_token");
    }
    let after = h.token().await;
    assert_eq!(h.get(&after, "/v1/charges").await.0, StatusCode::OK);
    let stats = h.stats().await;
    assert_eq!(stats["token_revocations"], 1);
    assert_eq!(stats["tokens_issued"], 3);
    assert_eq!(stats["faults"]["revoke_tokens"], false);

    // Other settings are kept; `{"revoke_tokens": false}` does nothing.
    h.faults(json!({ "decline_all": true })).await;
    let settings = h.faults(json!({ "revoke_tokens": false })).await;
    assert_eq!(settings["decline_all"], true);
    assert_eq!(h.get(&after, "/v1/charges").await.0, StatusCode::OK);
    assert_eq!(h.stats().await["token_revocations"], 1);

    h.restart().await;
    assert_eq!(
        h.get(&first, "/v1/charges").await.0,
        StatusCode::UNAUTHORIZED,
        "a restart does not bring revoked tokens back"
    );
    assert_eq!(h.get(&after, "/v1/charges").await.0, StatusCode::OK);

    h.faults(json!({ "revoke_tokens": true })).await;
    assert_eq!(
        h.get(&after, "/v1/charges").await.0,
        StatusCode::UNAUTHORIZED
    );
    let newest = h.token().await;
    assert_eq!(h.get(&newest, "/v1/charges").await.0, StatusCode::OK);
    assert_eq!(h.stats().await["token_revocations"], 2);
}
