//! A real sandbox per test, over real HTTP, and clients pointed at it.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;
use skybook_clients::{
    ClientCredentials, HttpPaymentProvider, HttpPaymentProviderConfig, TokenManager,
    TokenManagerConfig, TokenSource,
};
use skybook_domain::RetryPolicy;
use skybook_sandbox::{RunningSandbox, SandboxConfig};
use tempfile::TempDir;

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Small delays so retry tests stay quick; 3 retries (4 attempts).
pub fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retries: 3,
        max_elapsed: Duration::from_secs(5),
    }
}

pub struct Sandbox {
    running: Option<RunningSandbox>,
    _dir: TempDir,
    addr: SocketAddr,
    pub url: String,
    http: reqwest::Client,
}

impl Sandbox {
    pub async fn start() -> Self {
        Self::start_with(|config| config).await
    }

    pub async fn start_with(configure: impl FnOnce(SandboxConfig) -> SandboxConfig) -> Self {
        Self::start_at("127.0.0.1:0".parse().expect("address"), configure).await
    }

    /// A sandbox on `addr` with a fresh data dir (so it knows none of the tokens an earlier one issued).
    /// Retries binding for a while, in case the port is still being released.
    pub async fn start_at(
        addr: SocketAddr,
        configure: impl FnOnce(SandboxConfig) -> SandboxConfig,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = configure(SandboxConfig::new(dir.path()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let running = loop {
            match skybook_sandbox::spawn(config.clone(), addr).await {
                Ok(running) => break running,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!("sandbox did not start yet ({e:#}), retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("sandbox did not start: {e:#}"),
            }
        };
        let url = running.url();
        Self {
            addr: running.addr(),
            running: Some(running),
            _dir: dir,
            url,
            http: reqwest::Client::new(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }

    pub async fn stats(&self) -> Value {
        let response = self
            .http
            .get(format!("{}/sandbox/stats", self.url))
            .send()
            .await
            .expect("stats");
        assert!(
            response.status().is_success(),
            "stats: {}",
            response.status()
        );
        response.json().await.expect("stats json")
    }

    /// One counter from `/sandbox/stats`.
    pub async fn stat(&self, name: &str) -> u64 {
        let stats = self.stats().await;
        stats[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {name} in {stats}"))
    }

    pub async fn faults(&self, faults: Value) {
        let response = self
            .http
            .post(format!("{}/sandbox/faults", self.url))
            .json(&faults)
            .send()
            .await
            .expect("faults");
        assert!(
            response.status().is_success(),
            "faults: {}",
            response.status()
        );
    }

    pub fn credentials(&self, secret: &str) -> ClientCredentials {
        ClientCredentials {
            token_url: format!("{}/oauth/token", self.url)
                .parse()
                .expect("token url"),
            client_id: SandboxConfig::DEFAULT_CLIENT_ID.into(),
            client_secret: SecretString::from(secret),
            scope: Some("payments".into()),
            audience: None,
            extra_params: Vec::new(),
        }
    }

    pub fn token_manager(&self) -> TokenManager {
        self.token_manager_with(SandboxConfig::DEFAULT_CLIENT_SECRET, quick_retry())
    }

    pub fn token_manager_with(&self, secret: &str, retry: RetryPolicy) -> TokenManager {
        TokenManager::new(
            reqwest::Client::new(),
            TokenManagerConfig {
                name: "payments".into(),
                source: TokenSource::ClientCredentials(self.credentials(secret)),
                default_ttl: Duration::from_secs(60),
                retry,
            },
        )
    }

    pub fn provider(&self, auth: Option<TokenManager>) -> HttpPaymentProvider {
        self.provider_with(auth, quick_retry(), reqwest::Client::new())
    }

    pub fn provider_with(
        &self,
        auth: Option<TokenManager>,
        retry: RetryPolicy,
        http: reqwest::Client,
    ) -> HttpPaymentProvider {
        let config = HttpPaymentProviderConfig {
            base_url: self.url.parse().expect("base url"),
            auth,
            retry,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
        };
        HttpPaymentProvider::new(http, config)
    }
}

/// Polls `check` every 20 ms until it yields a value; panics after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
