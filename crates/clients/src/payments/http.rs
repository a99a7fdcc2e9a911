//! [`HttpPaymentProvider`]: the payment provider over HTTP, with retries, idempotency keys and OAuth2.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use skybook_domain::RetryPolicy;

use super::wire::{WireCardToken, WireCharge, WireError, WireList, WireRefund};
use super::{
    CardDetails, CardToken, Charge, ChargeOutcome, ChargeRequest, ChargeStatus, PaymentError,
    PaymentProvider, Refund, TARGET,
};
use crate::oauth::{AccessToken, TokenError, TokenManager};
use crate::retry::{self, RetryClass};

/// Counter: charge outcomes, by `outcome` (`succeeded`, `declined`, `rejected`, `unknown`).
pub const CHARGES_METRIC: &str = "skybook_payment_charges_total";

/// How to reach the provider.
#[derive(Debug, Clone)]
pub struct HttpPaymentProviderConfig {
    /// The provider (or the auth proxy route in front of it), e.g. `http://127.0.0.1:7000` or
    /// `http://proxy:9000/payments`. Paths such as `v1/charges` are appended to it.
    pub base_url: url::Url,
    /// Where bearer tokens come from; `None` sends no credentials (an auth proxy injects them).
    pub auth: Option<TokenManager>,
    /// Retries of transient failures, for every operation.
    pub retry: RetryPolicy,
    /// Applies only to a client built with [`HttpPaymentProviderConfig::http_client`]: `reqwest` sets connect
    /// timeouts per client, not per request. `request_timeout` bounds connecting too, whatever the client.
    pub connect_timeout: Duration,
    /// Bound for one attempt (connect, send, whole response), set on every request.
    pub request_timeout: Duration,
}

impl HttpPaymentProviderConfig {
    /// A `reqwest::Client` carrying this config's connect timeout (rustls, connection pooling).
    pub fn http_client(&self) -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .build()
    }
}

/// The payment provider over HTTP (`docs/sandbox.md`). Cheap to share behind an `Arc`.
pub struct HttpPaymentProvider {
    http: reqwest::Client,
    /// Always ends in `/`, so relative paths append to it.
    base_url: url::Url,
    auth: Option<TokenManager>,
    retry: RetryPolicy,
    request_timeout: Duration,
}

impl fmt::Debug for HttpPaymentProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPaymentProvider")
            .field("base_url", &self.base_url.as_str())
            .field("auth", &self.auth)
            .field("retry", &self.retry)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// A response that ends the retry loop: any success, and every 4xx except those worth retrying.
struct Reply {
    status: StatusCode,
    body: Vec<u8>,
}

/// Why an attempt produced no [`Reply`].
#[derive(Debug)]
enum Failure {
    /// Worth retrying. `maybe_processed`: the provider may have acted on the request (not a connect error,
    /// not a 429).
    Transient {
        cause: String,
        retry_after: Option<Duration>,
        maybe_processed: bool,
    },
    /// No token (the token manager has already retried).
    Auth(TokenError),
    /// The request could not be built; nothing was sent.
    Invalid(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transient { cause, .. } | Self::Invalid(cause) => f.write_str(cause),
            Self::Auth(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl RetryClass for Failure {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl From<Failure> for PaymentError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Transient { cause, .. } => Self::Transient(cause),
            Failure::Auth(e) => Self::Auth(e),
            Failure::Invalid(cause) => Self::InvalidRequest(cause),
        }
    }
}

/// One operation: what to send. Rebuilt for every attempt.
struct Call<'a> {
    op: &'static str,
    method: Method,
    url: url::Url,
    idempotency_key: Option<HeaderValue>,
    json_body: Option<&'a [u8]>,
}

impl HttpPaymentProvider {
    /// Uses `http` as given: build it with [`HttpPaymentProviderConfig::http_client`] (or share the
    /// application's client) to get a connect timeout.
    pub fn new(http: reqwest::Client, config: HttpPaymentProviderConfig) -> Self {
        let mut base_url = config.base_url;
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        Self {
            http,
            base_url,
            auth: config.auth,
            retry: config.retry,
            request_timeout: config.request_timeout,
        }
    }

    fn url(&self, path: &str) -> url::Url {
        self.base_url
            .join(path)
            .expect("a relative path joins onto an http(s) base URL")
    }

    /// Sends `call`, retrying transient failures. `maybe_processed` is set when any attempt may have been
    /// acted on without us learning the outcome.
    async fn execute(
        &self,
        call: &Call<'_>,
        maybe_processed: &AtomicBool,
    ) -> Result<Reply, Failure> {
        let reauthed = AtomicBool::new(false);
        let reauthed = &reauthed;
        let result = retry::with_retries(&self.retry, TARGET, call.op, move || {
            self.attempt(call, reauthed)
        })
        .await;
        if let Err(Failure::Transient {
            maybe_processed: true,
            ..
        }) = &result
        {
            maybe_processed.store(true, Ordering::Relaxed);
        }
        result
    }

    /// One attempt; on a 401 with our own token, drops that token and tries once more with a fresh one
    /// (once per operation, never a loop).
    async fn attempt(&self, call: &Call<'_>, reauthed: &AtomicBool) -> Result<Reply, Failure> {
        loop {
            let token = match &self.auth {
                Some(manager) => Some(manager.token().await.map_err(Failure::Auth)?),
                None => None,
            };
            let reply = self.send_once(call, token.as_ref()).await?;
            if reply.status == StatusCode::UNAUTHORIZED {
                if let (Some(manager), Some(token)) = (&self.auth, &token) {
                    if !reauthed.swap(true, Ordering::Relaxed) {
                        tracing::info!(
                            op = call.op,
                            "payment provider rejected the access token, fetching a new one"
                        );
                        manager.invalidate(token);
                        continue;
                    }
                }
            }
            return Ok(reply);
        }
    }

    async fn send_once(
        &self,
        call: &Call<'_>,
        token: Option<&AccessToken>,
    ) -> Result<Reply, Failure> {
        let mut request: RequestBuilder = self
            .http
            .request(call.method.clone(), call.url.clone())
            .header(ACCEPT, "application/json")
            .timeout(self.request_timeout);
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, token.bearer_header());
        }
        if let Some(key) = &call.idempotency_key {
            request = request.header("Idempotency-Key", key.clone());
        }
        if let Some(body) = call.json_body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let response = request.send().await.map_err(|e| from_reqwest(&e))?;
        let status = response.status();
        let retry_after = retry::retry_after(response.headers());
        // A connection dropped while the body is read is as ambiguous as one dropped before the headers.
        let body = response
            .bytes()
            .await
            .map_err(|e| from_reqwest(&e))?
            .to_vec();
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            let code = WireError::parse(&body).code_or(status);
            return Err(Failure::Transient {
                cause: format!("HTTP {} {code}", status.as_u16()),
                retry_after,
                maybe_processed: true,
            });
        }
        // 429: not processed. 409 on a keyed request: the same key is still being processed (Stripe's
        // "concurrent request"); asking again returns its outcome once it is known.
        if status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::CONFLICT && call.idempotency_key.is_some())
        {
            let code = WireError::parse(&body).code_or(status);
            return Err(Failure::Transient {
                cause: format!("HTTP {} {code}", status.as_u16()),
                retry_after,
                maybe_processed: false,
            });
        }
        Ok(Reply { status, body })
    }

    /// Runs a call whose success body is `T`; 4xx become [`PaymentError::Rejected`].
    async fn json_call<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, PaymentError> {
        let reply = self.execute(&call, &AtomicBool::new(false)).await?;
        if reply.status.is_success() {
            return serde_json::from_slice(&reply.body).map_err(|e| {
                PaymentError::InvalidResponse(format!(
                    "{} answered an unreadable body: {e}",
                    call.op
                ))
            });
        }
        if reply.status.is_client_error() {
            let error = WireError::parse(&reply.body);
            return Err(PaymentError::Rejected {
                status: reply.status.as_u16(),
                code: error.code_or(reply.status),
            });
        }
        Err(PaymentError::InvalidResponse(format!(
            "{} answered HTTP {}",
            call.op,
            reply.status.as_u16()
        )))
    }

    /// The outcome of a charge call; see [`ChargeOutcome`] for what each answer promises.
    async fn charge_outcome(&self, request: &ChargeRequest) -> ChargeOutcome {
        let key = match idempotency_header(&request.idempotency_key) {
            Ok(key) => key,
            Err(e) => {
                return ChargeOutcome::Rejected {
                    reason: e.to_string(),
                }
            }
        };
        let mut body = serde_json::json!({
            "amount": request.amount_minor,
            "currency": request.currency.to_ascii_lowercase(),
            "source": request.source,
            "metadata": request.metadata,
        });
        if !request.description.is_empty() {
            body["description"] = request.description.clone().into();
        }
        let body = body.to_string().into_bytes();
        let call = Call {
            op: "charge",
            method: Method::POST,
            url: self.url("v1/charges"),
            idempotency_key: Some(key),
            json_body: Some(&body),
        };
        let maybe_processed = AtomicBool::new(false);
        let result = self.execute(&call, &maybe_processed).await;
        let maybe_processed = maybe_processed.load(Ordering::Relaxed);
        let reply = match result {
            Ok(reply) => reply,
            Err(Failure::Transient { cause, .. }) => {
                return ChargeOutcome::Unknown {
                    reason: format!("retries exhausted, last error: {cause}"),
                }
            }
            Err(Failure::Auth(e)) if e.is_transient() || maybe_processed => {
                return ChargeOutcome::Unknown {
                    reason: e.to_string(),
                }
            }
            Err(Failure::Auth(e)) => {
                return ChargeOutcome::Rejected {
                    reason: e.to_string(),
                }
            }
            Err(Failure::Invalid(cause)) if maybe_processed => {
                return ChargeOutcome::Unknown { reason: cause }
            }
            Err(Failure::Invalid(cause)) => return ChargeOutcome::Rejected { reason: cause },
        };
        let status = reply.status;
        if status.is_success() {
            return match serde_json::from_slice::<WireCharge>(&reply.body) {
                Ok(charge) => {
                    let charge = Charge::from(charge);
                    match charge.status {
                        ChargeStatus::Succeeded => ChargeOutcome::Succeeded(charge),
                        ChargeStatus::Failed => ChargeOutcome::Declined {
                            charge_id: Some(charge.id),
                            code: "card_declined".into(),
                        },
                    }
                }
                // A 2xx we cannot read: money may well have moved.
                Err(e) => ChargeOutcome::Unknown {
                    reason: format!("unreadable charge response (HTTP {status}): {e}"),
                },
            };
        }
        let error = WireError::parse(&reply.body);
        let code = error.code_or(status);
        if status == StatusCode::PAYMENT_REQUIRED {
            return ChargeOutcome::Declined {
                charge_id: error.charge,
                code,
            };
        }
        let reason = match &error.message {
            Some(message) => format!("HTTP {} {code}: {message}", status.as_u16()),
            None => format!("HTTP {} {code}", status.as_u16()),
        };
        if status.is_client_error() && !maybe_processed {
            ChargeOutcome::Rejected { reason }
        } else {
            // A refusal now does not tell us what an earlier, unanswered attempt did.
            ChargeOutcome::Unknown {
                reason: format!("{reason} after an attempt with unknown outcome"),
            }
        }
    }
}

#[async_trait]
impl PaymentProvider for HttpPaymentProvider {
    async fn tokenize(&self, card: &CardDetails) -> Result<CardToken, PaymentError> {
        // The only place the card number is exposed: straight into this request body, nowhere else.
        let body = serde_json::json!({
            "card": {
                "number": card.number.expose_secret(),
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
                "cvc": card.cvc.expose_secret(),
            }
        })
        .to_string()
        .into_bytes();
        let call = Call {
            op: "tokenize",
            method: Method::POST,
            url: self.url("v1/tokens"),
            idempotency_key: None,
            json_body: Some(&body),
        };
        let token: WireCardToken = self.json_call(call).await?;
        Ok(token.into())
    }

    async fn charge(&self, request: &ChargeRequest) -> ChargeOutcome {
        let outcome = self.charge_outcome(request).await;
        let (label, level_warn) = match &outcome {
            ChargeOutcome::Succeeded(_) => ("succeeded", false),
            ChargeOutcome::Declined { .. } => ("declined", false),
            ChargeOutcome::Rejected { .. } => ("rejected", true),
            ChargeOutcome::Unknown { .. } => ("unknown", true),
        };
        metrics::counter!(CHARGES_METRIC, "outcome" => label).increment(1);
        if level_warn {
            tracing::warn!(idempotency_key = %request.idempotency_key, amount_minor = request.amount_minor,
                currency = %request.currency, outcome = ?outcome, "charge not completed");
        } else {
            tracing::info!(idempotency_key = %request.idempotency_key, amount_minor = request.amount_minor,
                currency = %request.currency, outcome = label, "charge answered");
        }
        outcome
    }

    async fn find_charge(&self, idempotency_key: &str) -> Result<Option<Charge>, PaymentError> {
        let mut url = self.url("v1/charges");
        url.query_pairs_mut()
            .append_pair("idempotency_key", idempotency_key);
        let call = Call {
            op: "find_charge",
            method: Method::GET,
            url,
            idempotency_key: None,
            json_body: None,
        };
        let list: WireList<WireCharge> = self.json_call(call).await?;
        // The provider answers 0 or 1 charge; be strict about which one we take.
        Ok(list.data.into_iter().map(Charge::from).find(|c| {
            c.idempotency_key
                .as_deref()
                .is_none_or(|k| k == idempotency_key)
        }))
    }

    async fn list_charges(&self) -> Result<Vec<Charge>, PaymentError> {
        let call = Call {
            op: "list_charges",
            method: Method::GET,
            url: self.url("v1/charges"),
            idempotency_key: None,
            json_body: None,
        };
        let list: WireList<WireCharge> = self.json_call(call).await?;
        Ok(list.data.into_iter().map(Charge::from).collect())
    }

    async fn refund(
        &self,
        charge_id: &str,
        amount_minor: Option<i64>,
        idempotency_key: &str,
    ) -> Result<Refund, PaymentError> {
        let key = idempotency_header(idempotency_key)?;
        let mut body = serde_json::json!({ "charge": charge_id });
        if let Some(amount) = amount_minor {
            body["amount"] = amount.into();
        }
        let body = body.to_string().into_bytes();
        let call = Call {
            op: "refund",
            method: Method::POST,
            url: self.url("v1/refunds"),
            idempotency_key: Some(key),
            json_body: Some(&body),
        };
        let refund: WireRefund = self.json_call(call).await?;
        let refund = Refund::from(refund);
        tracing::info!(charge_id, refund_id = %refund.id, amount_minor = refund.amount_minor, "refund made");
        Ok(refund)
    }
}

/// `Idempotency-Key`: 1..=255 visible ASCII characters.
fn idempotency_header(key: &str) -> Result<HeaderValue, PaymentError> {
    let valid = (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(PaymentError::InvalidRequest(
            "idempotency key must be 1..=255 visible ASCII characters".into(),
        ));
    }
    HeaderValue::from_str(key)
        .map_err(|_| PaymentError::InvalidRequest("idempotency key is not a valid header".into()))
}

fn from_reqwest(err: &reqwest::Error) -> Failure {
    let cause = retry::describe(err);
    if err.is_builder() {
        Failure::Invalid(cause)
    } else {
        // A refused connection never reached the provider; anything later (timeouts, dropped connections)
        // may have been acted on.
        Failure::Transient {
            cause,
            retry_after: None,
            maybe_processed: !err.is_connect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys() {
        assert!(idempotency_header("booking-0123456789abcdef").is_ok());
        assert!(idempotency_header("").is_err());
        assert!(idempotency_header("has space").is_err());
        assert!(idempotency_header(&"k".repeat(256)).is_err());
    }

    #[test]
    fn base_url_keeps_its_path() {
        let provider = HttpPaymentProvider::new(
            reqwest::Client::new(),
            HttpPaymentProviderConfig {
                base_url: "http://proxy:9000/payments".parse().unwrap(),
                auth: None,
                retry: RetryPolicy::none(),
                connect_timeout: Duration::from_secs(1),
                request_timeout: Duration::from_secs(1),
            },
        );
        assert_eq!(
            provider.url("v1/charges").as_str(),
            "http://proxy:9000/payments/v1/charges"
        );
    }
}
