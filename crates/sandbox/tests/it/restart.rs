//! A restart on the same data dir keeps tokens, card tokens, charges and refunds.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{status_json, Harness, GOOD_CARD};

#[tokio::test]
async fn restart_keeps_charges_card_tokens_and_access_tokens() {
    let mut h = Harness::start().await;
    let token = h.token().await;
    let card = h.tokenise(&token, GOOD_CARD).await;
    let (_, charge) = status_json(h.charge(&token, "survives", 15_000, &card).await).await;
    let charge_id = charge["id"].as_str().unwrap().to_owned();
    h.faults(json!({ "decline_all": true })).await;

    h.restart().await;

    let (status, fetched) = h.get(&token, &format!("/v1/charges/{charge_id}")).await;
    assert_eq!(status, StatusCode::OK, "the access token still works");
    assert_eq!(fetched, charge);
    let (status, replay) = status_json(h.charge(&token, "survives", 15_000, &card).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replay["id"], charge_id.as_str());
    let (status, second) = status_json(h.charge(&token, "after-restart", 1_000, &card).await).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "faults are memory only: decline_all is gone"
    );
    assert_eq!(second["status"], "succeeded");

    let stats = h.stats().await;
    assert_eq!(stats["tokens_issued"], 1);
    assert_eq!(stats["card_tokens"], 1);
    assert_eq!(stats["charges"], 2);
    assert_eq!(stats["faults"]["decline_all"], false);
}
