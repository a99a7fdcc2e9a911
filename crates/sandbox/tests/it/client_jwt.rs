//! `private_key_jwt` client authentication (RFC 7523 client assertions) at `/oauth/token`.

use jsonwebtoken::{encode, get_current_timestamp, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use skybook_sandbox::{JwtClientError, SandboxConfig};

use crate::common::{status_json, Harness};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const RSA_PUBLIC: &str = include_str!("../fixtures/rsa-public.pem");
const RSA_PRIVATE: &str = include_str!("../fixtures/rsa-private.pem");
const OTHER_RSA_PRIVATE: &str = include_str!("../fixtures/other-rsa-private.pem");
const EC_PUBLIC: &str = include_str!("../fixtures/ec-public.pem");
const EC_PRIVATE: &str = include_str!("../fixtures/ec-private.pem");
const EC_P384_PUBLIC: &str = include_str!("../fixtures/ec-p384-public.pem");

async fn jwt_sandbox() -> Harness {
    Harness::start_with(|config| {
        config
            .with_jwt_client("rsa-client", RSA_PUBLIC)
            .expect("RSA public key")
            .with_jwt_client("ec-client", EC_PUBLIC)
            .expect("EC public key")
    })
    .await
}

fn claims(h: &Harness, client: &str) -> Value {
    let now = get_current_timestamp();
    json!({
        "iss": client,
        "sub": client,
        "aud": h.url("/oauth/token"),
        "iat": now,
        "exp": now + 300,
        "jti": format!("{client}-{now}"),
    })
}

fn sign_rsa(claims: &Value, private_pem: &str) -> String {
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
    encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
}

fn sign_ec(claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
    encode(&Header::new(Algorithm::ES256), claims, &key).unwrap()
}

/// `POST /oauth/token` with an assertion and any extra form fields.
async fn request_token(
    h: &Harness,
    assertion: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    let response = h
        .http
        .post(h.url("/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    status_json(response).await
}

#[tokio::test]
async fn rsa_and_ec_signed_assertions_get_working_tokens() {
    let h = jwt_sandbox().await;

    let (status, body) =
        request_token(&h, &sign_rsa(&claims(&h, "rsa-client"), RSA_PRIVATE), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(h.get(token, "/v1/charges").await.0, StatusCode::OK);

    // EC, with the client_id form field and an audience array naming the endpoint by another URL.
    let mut ec_claims = claims(&h, "ec-client");
    ec_claims["aud"] = json!([
        "https://issuer.example",
        "https://sandbox.example/oauth/token"
    ]);
    let (status, body) = request_token(
        &h,
        &sign_ec(&ec_claims),
        &[("client_id", "ec-client"), ("scope", "payments")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "payments");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(h.get(token, "/v1/charges").await.0, StatusCode::OK);

    // The secret client still works next to the JWT clients.
    h.token().await;
    assert_eq!(h.stats().await["tokens_issued"], 3);
}

#[tokio::test]
async fn invalid_assertions_are_401_invalid_client() {
    let h = jwt_sandbox().await;
    let good = claims(&h, "rsa-client");
    let with = |field: &str, value: Value| {
        let mut claims = good.clone();
        claims[field] = value;
        claims
    };
    let without = |field: &str| {
        let mut claims = good.clone();
        claims.as_object_mut().unwrap().remove(field);
        claims
    };
    let tampered = {
        let token = sign_rsa(&good, RSA_PRIVATE);
        let parts: Vec<&str> = token.split('.').collect();
        let payload = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            with("exp", json!(get_current_timestamp() + 86_400)).to_string(),
        );
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    let expired = with("exp", json!(get_current_timestamp() - 5));
    let not_yet_valid = with("nbf", json!(get_current_timestamp() + 600));
    let elsewhere = with("aud", json!("https://elsewhere.example/token"));
    let cases: Vec<(&str, String)> = vec![
        ("signed by another key", sign_rsa(&good, OTHER_RSA_PRIVATE)),
        ("payload changed after signing", tampered),
        ("expired", sign_rsa(&expired, RSA_PRIVATE)),
        ("no exp", sign_rsa(&without("exp"), RSA_PRIVATE)),
        ("not yet valid", sign_rsa(&not_yet_valid, RSA_PRIVATE)),
        ("wrong audience", sign_rsa(&elsewhere, RSA_PRIVATE)),
        ("no audience", sign_rsa(&without("aud"), RSA_PRIVATE)),
        (
            "iss differs from sub",
            sign_rsa(&with("iss", json!("ec-client")), RSA_PRIVATE),
        ),
        ("ES256 for an RSA client", sign_ec(&good)),
        (
            "unknown client",
            sign_rsa(&claims(&h, "stranger"), RSA_PRIVATE),
        ),
        ("not a JWT", "not.a.jwt".to_owned()),
    ];
    let count = cases.len();
    for (case, assertion) in cases {
        let (status, body) = request_token(&h, &assertion, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
        assert_eq!(body["error"], "invalid_client", "{case}");
    }
    let assertion = sign_rsa(&good, RSA_PRIVATE);
    let (status, body) = request_token(&h, &assertion, &[("client_id", "ec-client")]).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "client_id differs from sub"
    );
    assert_eq!(body["error"], "invalid_client");

    // An unsupported assertion type, and an assertion without its type.
    let response = h
        .http
        .post(h.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:example:other"),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    let response = h
        .http
        .post(h.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Two authentication methods at once is a malformed request (RFC 6749 §2.3).
    let (status, body) =
        request_token(&h, &assertion, &[("client_secret", "sandbox-secret")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");

    let stats = h.stats().await;
    assert_eq!(stats["tokens_issued"], 0);
    assert_eq!(stats["token_requests_failed"], count + 4);
    // The good assertion itself was fine all along.
    assert_eq!(request_token(&h, &assertion, &[]).await.0, StatusCode::OK);
}

#[tokio::test]
async fn assertions_are_refused_when_no_jwt_client_is_registered() {
    let h = Harness::start().await;
    let (status, body) =
        request_token(&h, &sign_rsa(&claims(&h, "rsa-client"), RSA_PRIVATE), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
}

#[test]
fn registering_a_jwt_client_checks_its_key() {
    let config = SandboxConfig::new("unused")
        .with_jwt_client("rsa", RSA_PUBLIC)
        .unwrap()
        .with_jwt_client("ec", EC_PUBLIC)
        .unwrap();
    assert_eq!(config.jwt_clients["rsa"].algorithm(), "RS256");
    assert_eq!(config.jwt_clients["ec"].algorithm(), "ES256");

    for (case, pem) in [
        ("RSA private key", RSA_PRIVATE),
        ("EC private key", EC_PRIVATE),
        ("EC P-384 key", EC_P384_PUBLIC),
        (
            "garbage",
            "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",
        ),
        ("empty", ""),
    ] {
        let error = SandboxConfig::new("unused")
            .with_jwt_client("c", pem)
            .unwrap_err();
        assert!(
            matches!(error, JwtClientError::BadKey(_)),
            "{case}: {error}"
        );
    }
    assert!(matches!(
        SandboxConfig::new("unused").with_jwt_client("", RSA_PUBLIC),
        Err(JwtClientError::EmptyClientId)
    ));
}

#[test]
fn the_command_line_form_is_id_colon_pem_file() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let config = SandboxConfig::new("unused")
        .with_jwt_client_arg(&format!("partner:{fixtures}/ec-public.pem"))
        .unwrap();
    assert_eq!(config.jwt_clients["partner"].algorithm(), "ES256");

    for bad in ["partner", ":key.pem", "partner:"] {
        let error = SandboxConfig::new("unused")
            .with_jwt_client_arg(bad)
            .unwrap_err();
        assert!(
            matches!(error, JwtClientError::BadArgument(_)),
            "{bad}: {error}"
        );
    }
    let error = SandboxConfig::new("unused")
        .with_jwt_client_arg(&format!("partner:{fixtures}/missing.pem"))
        .unwrap_err();
    assert!(matches!(error, JwtClientError::ReadKey { .. }), "{error}");
}
