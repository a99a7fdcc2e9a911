//! Card tokens, charges (idempotency, declines) and refunds.

use std::collections::HashSet;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{card_body, status_json, Harness, DECLINED_CARD, GOOD_CARD};

#[tokio::test]
async fn tokenising_keeps_last4_and_brand_and_rejects_bad_numbers() {
    let h = Harness::start().await;
    let token = h.token().await;
    let response = h
        .http
        .post(h.url("/v1/tokens"))
        .bearer_auth(&token)
        .json(&card_body("5555 5555 5555 4444"))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["id"].as_str().unwrap().starts_with("tok_"));
    assert_eq!(
        body["card"],
        json!({ "last4": "4444", "brand": "mastercard", "exp_month": 7, "exp_year": 2031 })
    );
    assert!(!body.to_string().contains("5555555555554444"));

    for number in ["4242424242424241", "42424242", "4242x24242424242"] {
        let response = h
            .http
            .post(h.url("/v1/tokens"))
            .bearer_auth(&token)
            .json(&card_body(number))
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{number}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "invalid_number");
    }
    assert_eq!(h.stats().await["card_tokens"], 1);
}

#[tokio::test]
async fn malformed_json_is_400_with_the_error_shape() {
    let h = Harness::start().await;
    let token = h.token().await;
    for path in ["/v1/tokens", "/v1/charges", "/v1/refunds"] {
        let response = h
            .http
            .post(h.url(path))
            .bearer_auth(&token)
            .header("Idempotency-Key", "k-malformed")
            .header("Content-Type", "application/json")
            .body("{\"amount\": ")
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{path}");
        assert!(body["error"]["message"].is_string(), "{path}");
    }
}

#[tokio::test]
async fn charge_then_replay_returns_the_same_charge() {
    let h = Harness::start().await;
    let token = h.token().await;
    let card = h.tokenise(&token, GOOD_CARD).await;

    let (status, first) = status_json(h.charge(&token, "order-1", 12_500, &card).await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(first["id"].as_str().unwrap().starts_with("ch_"));
    assert_eq!(first["object"], "charge");
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["amount"], 12_500);
    assert_eq!(first["currency"], "eur");
    assert_eq!(first["source"], card.as_str());
    assert_eq!(first["metadata"], json!({ "booking": "b1" }));
    assert_eq!(first["idempotency_key"], "order-1");
    assert_eq!(first["refunded"], false);

    let (status, replay) = status_json(h.charge(&token, "order-1", 12_500, &card).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replay, first);

    let id = first["id"].as_str().unwrap();
    let (status, fetched) = h.get(&token, &format!("/v1/charges/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, first);
    let (_, by_key) = h.get(&token, "/v1/charges?idempotency_key=order-1").await;
    assert_eq!(by_key["data"], json!([first]));
    let (_, none) = h.get(&token, "/v1/charges?idempotency_key=nope").await;
    assert_eq!(none["data"], json!([]));

    let stats = h.stats().await;
    assert_eq!(stats["charges"], 1);
    assert_eq!(stats["charge_requests"], 2);
    assert_eq!(stats["idempotent_replays"], 1);
}

#[tokio::test]
async fn listing_is_newest_first_with_limit_and_status() {
    let h = Harness::start().await;
    let token = h.token().await;
    let card = h.tokenise(&token, GOOD_CARD).await;
    let declined = h.tokenise(&token, DECLINED_CARD).await;
    let mut ids = Vec::new();
    for key in ["a", "b", "c"] {
        let (_, charge) = status_json(h.charge(&token, key, 1_000, &card).await).await;
        ids.push(charge["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        h.charge(&token, "d", 1_000, &declined).await.status(),
        StatusCode::PAYMENT_REQUIRED
    );

    let (_, all) = h.get(&token, "/v1/charges").await;
    let listed: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["idempotency_key"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["d", "c", "b", "a"]);
    let (_, succeeded) = h.get(&token, "/v1/charges?status=succeeded&limit=2").await;
    let listed: Vec<&str> = succeeded["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str()]);
    let (status, body) = h.get(&token, "/v1/charges?limit=zero").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn fifty_concurrent_identical_requests_make_exactly_one_charge() {
    let h = Harness::start().await;
    let token = h.token().await;
    let card = h.tokenise(&token, GOOD_CARD).await;
    let responses = join_all((0..50).map(|_| h.charge(&token, "same-key", 4_200, &card))).await;
    let mut ids = HashSet::new();
    for response in responses {
        let (status, body) = status_json(response).await;
        assert_eq!(status, StatusCode::OK);
        ids.insert(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "every request got the same charge");
    let stats = h.stats().await;
    assert_eq!(stats["charges"], 1);
    assert_eq!(stats["charge_requests"], 50);
    assert_eq!(stats["idempotent_replays"], 49);
    let (_, all) = h.get(&token, "/v1/charges").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn declined_card_is_402_recorded_once_and_replays_as_402() {
    let h = Harness::start().await;
    let token = h.token().await;
    let card = h.tokenise(&token, DECLINED_CARD).await;
    let (status, first) = status_json(h.charge(&token, "decline-1", 9_900, &card).await).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(first["error"]["type"], "card_error");
    assert_eq!(first["error"]["code"], "card_declined");
    let charge_id = first["error"]["charge"].as_str().unwrap();
    assert!(charge_id.starts_with("ch_"));

    let (status, replay) = status_json(h.charge(&token, "decline-1", 9_900, &card).await).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(replay["error"]["charge"], charge_id);

    let (_, charge) = h.get(&token, &format!("/v1/charges/{charge_id}")).await;
    assert_eq!(charge["status"], "failed");
    let stats = h.stats().await;
    assert_eq!(stats["declines"], 1);
    assert_eq!(stats["charges"], 0);
}

#[tokio::test]
async fn same_key_with_other_parameters_is_idempotency_key_reused() {
    let h = Harness::start().await;
    let token = h.token().await;
    let card = h.tokenise(&token, GOOD_CARD).await;
    let other_card = h.tokenise(&token, GOOD_CARD).await;
    assert_eq!(
        h.charge(&token, "reuse", 1_000, &card).await.status(),
        StatusCode::OK
    );
    for (amount, source) in [(1_001, card.as_str()), (1_000, other_card.as_str())] {
        let (status, body) = status_json(h.charge(&token, "reuse", amount, source).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["type"], "idempotency_error");
        assert_eq!(body["error"]["code"], "idempotency_key_reused");
    }
    assert_eq!(h.stats().await["charges"], 1);
}

#[tokio::test]
async fn charges_need_an_idempotency_key_and_a_known_source() {
    let h = Harness::start().await;
    let token = h.token().await;
    let card = h.tokenise(&token, GOOD_CARD).await;
    let response = h
        .http
        .post(h.url("/v1/charges"))
        .bearer_auth(&token)
        .json(&json!({ "amount": 100, "currency": "eur", "source": card }))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "missing_idempotency_key");

    let (status, body) = status_json(h.charge(&token, "k", 100, "tok_doesnotexist").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "resource_missing");
    let (status, body) = h.get(&token, "/v1/charges/ch_doesnotexist").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "resource_missing");
}

async fn refund(h: &Harness, token: &str, key: &str, body: Value) -> (StatusCode, Value) {
    let response = h
        .http
        .post(h.url("/v1/refunds"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    status_json(response).await
}

#[tokio::test]
async fn refunds_are_idempotent_and_never_exceed_the_charge() {
    let h = Harness::start().await;
    let token = h.token().await;
    let card = h.tokenise(&token, GOOD_CARD).await;
    let (_, charge) = status_json(h.charge(&token, "to-refund", 10_000, &card).await).await;
    let charge_id = charge["id"].as_str().unwrap();

    let (status, partial) = refund(
        &h,
        &token,
        "r1",
        json!({ "charge": charge_id, "amount": 4_000 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(partial["id"].as_str().unwrap().starts_with("re_"));
    assert_eq!(partial["object"], "refund");
    assert_eq!(partial["charge"], charge_id);
    assert_eq!(partial["amount"], 4_000);
    assert_eq!(partial["status"], "succeeded");
    let (_, replay) = refund(
        &h,
        &token,
        "r1",
        json!({ "charge": charge_id, "amount": 4_000 }),
    )
    .await;
    assert_eq!(replay, partial);

    let (status, too_much) = refund(
        &h,
        &token,
        "r2",
        json!({ "charge": charge_id, "amount": 6_001 }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(too_much["error"]["code"], "amount_too_large");

    let (status, rest) = refund(&h, &token, "r3", json!({ "charge": charge_id })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rest["amount"], 6_000);
    let (status, _) = refund(
        &h,
        &token,
        "r4",
        json!({ "charge": charge_id, "amount": 1 }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, charge) = h.get(&token, &format!("/v1/charges/{charge_id}")).await;
    assert_eq!(charge["amount_refunded"], 10_000);
    assert_eq!(charge["refunded"], true);
    assert_eq!(h.stats().await["refunds"], 2);
}
