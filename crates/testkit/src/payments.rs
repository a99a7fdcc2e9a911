//! The payment provider client as `serve` builds it, pointed at a test's sandbox.

use std::sync::Arc;
use std::time::Duration;

use skybook_clients::{
    ClientCredentials, HttpPaymentProvider, HttpPaymentProviderConfig, TokenManager,
    TokenManagerConfig, TokenSource,
};
use skybook_domain::RetryPolicy;
use skybook_sandbox::RunningSandbox;

/// Quick retries so fault tests stay fast; the same shape as production's policy.
pub fn test_retry() -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retries: 4,
        max_elapsed: Duration::from_secs(5),
    }
}

/// A payment provider client for `sandbox`, fetching its own tokens like `serve` with credentials does.
pub fn payments_for(sandbox: &RunningSandbox) -> Arc<HttpPaymentProvider> {
    let http = reqwest::Client::new();
    let auth = TokenManager::new(
        http.clone(),
        TokenManagerConfig {
            name: "payments".into(),
            source: TokenSource::ClientCredentials(ClientCredentials {
                token_url: format!("{}/oauth/token", sandbox.url()).parse().unwrap(),
                client_id: "skybook".into(),
                client_secret: crate::sandbox_client_secret(),
                scope: None,
                audience: None,
                extra_params: vec![],
            }),
            default_ttl: Duration::from_secs(300),
            retry: test_retry(),
        },
    );
    Arc::new(HttpPaymentProvider::new(
        http,
        HttpPaymentProviderConfig {
            base_url: sandbox.url().parse().unwrap(),
            auth: Some(auth),
            retry: test_retry(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
        },
    ))
}

/// A client for a provider nobody answers at: every call fails to connect.
pub fn unreachable_payments() -> Arc<HttpPaymentProvider> {
    Arc::new(HttpPaymentProvider::new(
        reqwest::Client::new(),
        HttpPaymentProviderConfig {
            base_url: "http://127.0.0.1:9".parse().unwrap(),
            auth: None,
            retry: test_retry(),
            connect_timeout: Duration::from_millis(200),
            request_timeout: Duration::from_millis(500),
        },
    ))
}
