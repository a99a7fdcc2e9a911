//! Test harness: a spawned sandbox plus helpers for the requests every test makes.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use skybook_sandbox::{spawn, RunningSandbox, SandboxConfig};
use tempfile::TempDir;

pub const GOOD_CARD: &str = "4242424242424242";
pub const DECLINED_CARD: &str = "4000000000000002";

pub struct Harness {
    pub dir: TempDir,
    sandbox: Option<RunningSandbox>,
    pub base: String,
    pub http: reqwest::Client,
    config: SandboxConfig,
}

impl Harness {
    /// A sandbox with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(|config| config).await
    }

    /// A sandbox whose default configuration is adjusted by `configure`.
    pub async fn start_with(configure: impl FnOnce(SandboxConfig) -> SandboxConfig) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = configure(SandboxConfig::new(dir.path()));
        let sandbox = spawn(config.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .expect("spawn sandbox");
        let base = sandbox.url();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            dir,
            sandbox: Some(sandbox),
            base,
            http,
            config,
        }
    }

    /// Shuts the sandbox down and spawns a new one on the same data dir.
    pub async fn restart(&mut self) {
        self.sandbox.take().expect("running").shutdown().await;
        let sandbox = spawn(self.config.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .expect("respawn sandbox");
        self.base = sandbox.url();
        self.sandbox = Some(sandbox);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A fresh access token for the default client.
    pub async fn token(&self) -> String {
        let response = self
            .http
            .post(self.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "skybook"),
                ("client_secret", "sandbox-secret"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Tokenises `number`, answering the card token id.
    pub async fn tokenise(&self, token: &str, number: &str) -> String {
        let response = self
            .http
            .post(self.url("/v1/tokens"))
            .bearer_auth(token)
            .json(&card_body(number))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().expect("token id").to_owned()
    }

    /// `POST /v1/charges` with an Idempotency-Key; answers the raw response.
    pub async fn charge(&self, token: &str, key: &str, amount: i64, source: &str) -> Response {
        self.try_charge(token, key, amount, source)
            .await
            .expect("charge request")
    }

    pub async fn try_charge(
        &self,
        token: &str,
        key: &str,
        amount: i64,
        source: &str,
    ) -> reqwest::Result<Response> {
        self.http
            .post(self.url("/v1/charges"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({
                "amount": amount,
                "currency": "eur",
                "source": source,
                "metadata": { "booking": "b1" },
            }))
            .send()
            .await
    }

    /// `GET` with a bearer token, answering status and JSON body.
    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn stats(&self) -> Value {
        let response = self
            .http
            .get(self.url("/sandbox/stats"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// `POST /sandbox/faults`, answering the resulting settings.
    pub async fn faults(&self, patch: Value) -> Value {
        let response = self
            .http
            .post(self.url("/sandbox/faults"))
            .json(&patch)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

/// A `POST /v1/tokens` body for `number`, expiring 07/2031.
pub fn card_body(number: &str) -> Value {
    json!({ "card": { "number": number, "exp_month": 7, "exp_year": 2031, "cvc": "123" } })
}

/// Status and JSON body of a response.
pub async fn status_json(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}
