//! The payments client against the sandbox's real payment API: idempotent charges under faults.

use std::collections::BTreeMap;

use serde_json::json;
use skybook_clients::{
    CardDetails, ChargeOutcome, ChargeRequest, ChargeStatus, HttpPaymentProvider, PaymentError,
    PaymentProvider,
};

use crate::support::{Sandbox, TestResult};

const GOOD_CARD: &str = "4242424242424242";
const DECLINED_CARD: &str = "4000000000000002";

fn card(number: &str) -> CardDetails {
    CardDetails {
        number: number.into(),
        exp_month: 12,
        exp_year: 2031,
        cvc: "123".into(),
    }
}

fn charge_request(key: &str, source: &str, amount_minor: i64) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: key.into(),
        amount_minor,
        currency: "eur".into(),
        source: source.into(),
        description: "DUB-LHR".into(),
        metadata: BTreeMap::from([("booking".to_owned(), key.to_owned())]),
    }
}

/// A sandbox, a provider holding its own token manager, and a tokenized good card.
async fn setup() -> (Sandbox, HttpPaymentProvider, String) {
    let sandbox = Sandbox::start().await;
    let provider = sandbox.provider(Some(sandbox.token_manager()));
    let token = provider.tokenize(&card(GOOD_CARD)).await.expect("tokenize");
    assert_eq!(token.last4, "4242");
    assert!(token.id.starts_with("tok_"), "{token:?}");
    (sandbox, provider, token.id)
}

fn succeeded(outcome: ChargeOutcome) -> skybook_clients::Charge {
    match outcome {
        ChargeOutcome::Succeeded(charge) => charge,
        other => panic!("expected a successful charge, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charge_and_replay_return_the_same_charge() -> TestResult {
    let (sandbox, provider, source) = setup().await;
    let request = charge_request("booking-replay-0001", &source, 9599);

    let first = succeeded(provider.charge(&request).await);
    assert_eq!((first.amount_minor, first.currency.as_str()), (9599, "eur"));
    assert_eq!(first.status, ChargeStatus::Succeeded);
    assert_eq!(
        first.idempotency_key.as_deref(),
        Some("booking-replay-0001")
    );
    assert_eq!(
        first.metadata.get("booking").map(String::as_str),
        Some("booking-replay-0001")
    );

    let replay = succeeded(provider.charge(&request).await);
    assert_eq!(replay.id, first.id);
    assert_eq!(sandbox.stat("charges").await, 1);
    assert_eq!(sandbox.stat("idempotent_replays").await, 1);
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_charge_requests_are_retried_into_exactly_one_charge() -> TestResult {
    let (sandbox, provider, source) = setup().await;
    sandbox.faults(json!({"fail_next_charges": 2})).await;

    succeeded(
        provider
            .charge(&charge_request("booking-fail-twice-01", &source, 1000))
            .await,
    );
    assert_eq!(sandbox.stat("charges").await, 1);
    assert_eq!(
        sandbox.stat("charge_requests").await,
        3,
        "two 500s, then the charge"
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_response_is_retried_to_the_same_charge() -> TestResult {
    let (sandbox, provider, source) = setup().await;
    sandbox
        .faults(json!({"lose_next_charge_responses": 1}))
        .await;
    let key = "booking-lost-reply-01";

    let charge = succeeded(provider.charge(&charge_request(key, &source, 2500)).await);
    assert_eq!(
        sandbox.stat("charges").await,
        1,
        "the retry found the charge the lost reply was about"
    );
    assert_eq!(sandbox.stat("charge_requests").await, 2);
    assert_eq!(sandbox.stat("idempotent_replays").await, 1);
    let found = provider
        .find_charge(key)
        .await?
        .expect("the charge is findable by key");
    assert_eq!(found.id, charge.id);
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_retry_budget_is_unknown_not_declined() -> TestResult {
    let (sandbox, provider, source) = setup().await;
    sandbox.faults(json!({"fail_next_charges": 100})).await;
    let key = "booking-outage-00001";

    let outcome = provider.charge(&charge_request(key, &source, 4200)).await;
    assert!(
        matches!(outcome, ChargeOutcome::Unknown { .. }),
        "{outcome:?}"
    );
    assert_eq!(sandbox.stat("charges").await, 0);
    assert_eq!(
        sandbox.stat("charge_requests").await,
        4,
        "one attempt and three retries"
    );

    // The caller's later check: nothing happened under that key, and once the provider is back the same
    // key charges exactly once.
    sandbox.faults(json!({})).await;
    assert_eq!(provider.find_charge(key).await?, None);
    succeeded(provider.charge(&charge_request(key, &source, 4200)).await);
    assert_eq!(sandbox.stat("charges").await, 1);
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_is_declined_once() -> TestResult {
    let (sandbox, provider, _) = setup().await;
    let token = provider.tokenize(&card(DECLINED_CARD)).await?;
    let request = charge_request("booking-declined-001", &token.id, 9599);

    let outcome = provider.charge(&request).await;
    let ChargeOutcome::Declined { charge_id, code } = outcome else {
        panic!("expected Declined, got {outcome:?}")
    };
    assert_eq!(code, "card_declined");
    let charge_id = charge_id.expect("the failed charge's id");
    assert!(matches!(
        provider.charge(&request).await,
        ChargeOutcome::Declined { .. }
    ));
    assert_eq!(
        sandbox.stat("declines").await,
        1,
        "a replay does not decline twice"
    );
    assert_eq!(sandbox.stat("charges").await, 0);
    let failed = provider
        .find_charge("booking-declined-001")
        .await?
        .expect("the failed charge");
    assert_eq!(
        (failed.id, failed.status),
        (charge_id, ChargeStatus::Failed)
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charges_are_found_by_key_and_listed() -> TestResult {
    let (sandbox, provider, source) = setup().await;
    let one = succeeded(
        provider
            .charge(&charge_request("booking-find-000001", &source, 100))
            .await,
    );
    let two = succeeded(
        provider
            .charge(&charge_request("booking-find-000002", &source, 200))
            .await,
    );

    let found = provider
        .find_charge("booking-find-000001")
        .await?
        .expect("found by key");
    assert_eq!(found, one);
    assert_eq!(provider.find_charge("booking-never-charged").await?, None);

    let listed = provider.list_charges().await?;
    let ids: Vec<&str> = listed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(listed.len(), 2, "{ids:?}");
    assert!(
        ids.contains(&one.id.as_str()) && ids.contains(&two.id.as_str()),
        "{ids:?}"
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_are_idempotent_and_bounded() -> TestResult {
    let (sandbox, provider, source) = setup().await;
    let charge = succeeded(
        provider
            .charge(&charge_request("booking-refund-00001", &source, 1000))
            .await,
    );

    let partial = provider
        .refund(&charge.id, Some(300), "refund-0001-partial")
        .await?;
    assert_eq!(
        (partial.charge_id.as_str(), partial.amount_minor),
        (charge.id.as_str(), 300)
    );
    let again = provider
        .refund(&charge.id, Some(300), "refund-0001-partial")
        .await?;
    assert_eq!(again, partial, "the same key returns the same refund");
    assert_eq!(sandbox.stat("refunds").await, 1);

    let too_much = provider
        .refund(&charge.id, Some(800), "refund-0002-toomuch")
        .await;
    assert!(
        matches!(&too_much, Err(PaymentError::Rejected { status: 400, code }) if code == "amount_too_large"),
        "{too_much:?}"
    );

    let rest = provider
        .refund(&charge.id, None, "refund-0003-rest")
        .await?;
    assert_eq!(rest.amount_minor, 700, "the default refunds what is left");
    let after = provider
        .find_charge("booking-refund-00001")
        .await?
        .expect("charge");
    assert_eq!((after.amount_refunded, after.refunded), (1000, true));
    assert_eq!(sandbox.stat("refunds").await, 2);
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definitive_refusal_is_rejected_without_retrying() -> TestResult {
    let (sandbox, provider, source) = setup().await;
    let key = "booking-reused-key01";
    succeeded(provider.charge(&charge_request(key, &source, 1000)).await);

    let outcome = provider.charge(&charge_request(key, &source, 2000)).await;
    let ChargeOutcome::Rejected { reason } = outcome else {
        panic!("expected Rejected, got {outcome:?}")
    };
    assert!(reason.contains("idempotency_key_reused"), "{reason}");
    assert_eq!(
        sandbox.stat("charge_requests").await,
        2,
        "a 400 is not retried"
    );
    assert_eq!(sandbox.stat("charges").await, 1);

    let bad_key = provider
        .charge(&charge_request("has spaces", &source, 1000))
        .await;
    assert!(
        matches!(bad_key, ChargeOutcome::Rejected { .. }),
        "{bad_key:?}"
    );
    assert_eq!(
        sandbox.stat("charge_requests").await,
        2,
        "an invalid key is never sent"
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_card_number_is_rejected_and_never_shown() -> TestResult {
    let (sandbox, provider, _) = setup().await;
    let number = "4242424242424241";
    let result = provider.tokenize(&card(number)).await;
    let error = result.expect_err("fails Luhn");
    assert!(
        matches!(&error, PaymentError::Rejected { status: 400, code } if code == "invalid_number"),
        "{error:?}"
    );
    for shown in [
        error.to_string(),
        format!("{error:?}"),
        format!("{:?}", card(number)),
    ] {
        assert!(!shown.contains(number), "card number leaked: {shown}");
    }
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_invalidates_the_token_and_refetches_once() -> TestResult {
    // The manager caches a token from one sandbox; a fresh sandbox on the same address (new data dir) does
    // not know it, so its first request answers 401.
    let first = Sandbox::start().await;
    let manager = first.token_manager();
    let provider = first.provider(Some(manager.clone()));
    provider.tokenize(&card(GOOD_CARD)).await?;
    assert_eq!(manager.stats().fetches_ok, 1);
    let addr = first.addr();
    first.shutdown().await;

    let second = Sandbox::start_at(addr, |c| c).await;
    let token = provider.tokenize(&card(GOOD_CARD)).await?;
    assert_eq!(
        manager.stats().fetches_ok,
        2,
        "exactly one refetch after the 401"
    );
    assert_eq!(second.stat("tokens_issued").await, 1);
    succeeded(
        provider
            .charge(&charge_request("booking-after-401-01", &token.id, 500))
            .await,
    );
    assert_eq!(manager.stats().fetches_ok, 2);
    second.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_401_is_not_a_loop_and_charges_nothing() -> TestResult {
    // Tokens from one sandbox, payments at another that never accepts them.
    let issuer = Sandbox::start().await;
    let provider_side = Sandbox::start().await;
    let manager = issuer.token_manager();
    let provider = provider_side.provider(Some(manager.clone()));

    let error = provider
        .tokenize(&card(GOOD_CARD))
        .await
        .expect_err("foreign token");
    assert!(
        matches!(&error, PaymentError::Rejected { status: 401, code } if code == "invalid_token"),
        "{error:?}"
    );
    assert_eq!(
        manager.stats().fetches_ok,
        2,
        "the first token and one refetch, no more"
    );
    assert_eq!(issuer.stat("tokens_issued").await, 2);

    let outcome = provider
        .charge(&charge_request("booking-foreign-tok1", "tok_unknown", 500))
        .await;
    assert!(
        matches!(outcome, ChargeOutcome::Rejected { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        manager.stats().fetches_ok,
        3,
        "again one refetch for the charge"
    );
    assert_eq!(provider_side.stat("charges").await, 0);
    issuer.shutdown().await;
    provider_side.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_manager_no_credentials_are_sent() -> TestResult {
    let sandbox = Sandbox::start().await;
    let bare = sandbox.provider(None);
    let error = bare.list_charges().await.expect_err("no credentials");
    assert!(
        matches!(&error, PaymentError::Rejected { status: 401, .. }),
        "{error:?}"
    );

    // What an auth proxy in front does: inject the header. A client carrying it works unchanged.
    let token = sandbox.token_manager().token().await?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, token.bearer_header());
    let injecting = reqwest::Client::builder()
        .default_headers(headers)
        .build()?;
    let behind_proxy = sandbox.provider_with(None, crate::support::quick_retry(), injecting);
    assert!(behind_proxy.list_charges().await?.is_empty());
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_down_with_no_token_leaves_the_charge_unknown_not_rejected() -> TestResult {
    let sandbox = Sandbox::start().await;
    let provider = sandbox.provider(Some(sandbox.token_manager()));
    sandbox.faults(json!({"token_endpoint_down": true})).await;

    let outcome = provider
        .charge(&charge_request("booking-no-token-001", "tok_x", 500))
        .await;
    assert!(
        matches!(outcome, ChargeOutcome::Unknown { .. }),
        "{outcome:?}"
    );
    let error = provider.list_charges().await.expect_err("no token");
    assert!(error.is_transient(), "{error:?}");
    assert_eq!(sandbox.stat("charge_requests").await, 0);
    sandbox.shutdown().await;
    Ok(())
}
