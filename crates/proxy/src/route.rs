//! One configured route: where it forwards and how it authenticates (its connections are in `upstream.rs`).

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use skybook_clients::{
    AccessToken, ClientCredentials, TokenError, TokenManager, TokenManagerConfig, TokenSource,
};
use skybook_domain::RetryPolicy;

use crate::config::{RouteAuth, RouteConfig};

/// How a route authenticates its forwarded requests.
pub(crate) enum Credentials {
    Token(TokenManager),
    Static {
        header: HeaderName,
        value: HeaderValue,
    },
}

/// What goes on one forwarded request: the header to set, and the token (to drop it on a `401`).
pub(crate) struct Credential {
    pub header: HeaderName,
    pub value: HeaderValue,
    pub token: Option<AccessToken>,
}

pub struct Route {
    pub(crate) config: RouteConfig,
    pub(crate) credentials: Credentials,
    pub(crate) metrics: RouteMetrics,
}

/// Metric handles registered once per route, so the request path does no label lookups or allocations.
pub(crate) struct RouteMetrics {
    /// Requests by status class: 1xx..5xx.
    pub requests: [metrics::Counter; 5],
    pub upstream_seconds: metrics::Histogram,
    pub unauthorized_retries: metrics::Counter,
}

impl RouteMetrics {
    fn new(prefix: &str) -> Self {
        let class = |c: &'static str| metrics::counter!("skybook_proxy_requests_total", "route" => prefix.to_owned(), "class" => c);
        Self {
            requests: [
                class("1xx"),
                class("2xx"),
                class("3xx"),
                class("4xx"),
                class("5xx"),
            ],
            upstream_seconds: metrics::histogram!("skybook_proxy_upstream_duration_seconds", "route" => prefix.to_owned()),
            unauthorized_retries: metrics::counter!("skybook_proxy_unauthorized_retries_total", "route" => prefix.to_owned()),
        }
    }
}

/// The longest a request waits for its route's token (see [`Route::credential`]).
const TOKEN_WAIT: Duration = Duration::from_secs(2);

/// Token endpoint retries: enough to ride out a blip, short enough that a request waiting on a cold fetch gets
/// its `503` in about a second rather than hanging.
fn token_retry() -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
        max_retries: 3,
        max_elapsed: Duration::from_secs(1),
    }
}

impl Route {
    pub fn new(config: &RouteConfig, http: &reqwest::Client) -> Self {
        let manager = |source: TokenSource, default_ttl: Duration| {
            Credentials::Token(TokenManager::new(
                http.clone(),
                TokenManagerConfig {
                    name: config.prefix.clone(),
                    source,
                    default_ttl,
                    retry: token_retry(),
                },
            ))
        };
        let credentials = match &config.auth {
            RouteAuth::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
                audience,
                params,
                default_ttl,
            } => manager(
                TokenSource::ClientCredentials(ClientCredentials {
                    token_url: token_url.clone(),
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                    scope: scope.clone(),
                    audience: audience.clone(),
                    extra_params: params.clone(),
                }),
                *default_ttl,
            ),
            RouteAuth::PrivateKeyJwt {
                client,
                default_ttl,
            } => manager(TokenSource::PrivateKeyJwt(client.clone()), *default_ttl),
            RouteAuth::Static { header, value } => Credentials::Static {
                header: header.clone(),
                value: value.clone(),
            },
        };
        Self {
            config: config.clone(),
            credentials,
            metrics: RouteMetrics::new(&config.prefix),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.config.prefix
    }

    /// Whether `path` is this route's: the prefix itself or below it (`/pay` does not match `/payments`).
    pub(crate) fn matches(&self, path: &str) -> bool {
        path.strip_prefix(self.config.prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// Static credentials are always there; a token route needs a valid cached token (no fetch).
    pub fn has_valid_credentials(&self) -> bool {
        match &self.credentials {
            Credentials::Token(manager) => manager.cached().is_some(),
            Credentials::Static { .. } => true,
        }
    }

    pub(crate) async fn credential(&self) -> Result<Credential, TokenError> {
        match &self.credentials {
            Credentials::Token(manager) => {
                // However the token endpoint misbehaves (hanging, dropping packets), a request waits at most
                // this long for a token, then gets its 503. The fetch itself carries on for the next request.
                let token = tokio::time::timeout(TOKEN_WAIT, manager.token())
                    .await
                    .map_err(|_| TokenError::Unavailable {
                        name: self.prefix().to_owned(),
                        cause: format!("the token endpoint did not answer within {TOKEN_WAIT:?}"),
                    })??;
                Ok(Credential {
                    header: axum::http::header::AUTHORIZATION,
                    value: token.bearer_header(),
                    token: Some(token),
                })
            }
            Credentials::Static { header, value } => Ok(Credential {
                header: header.clone(),
                value: value.clone(),
                token: None,
            }),
        }
    }

    /// After an upstream `401`: drop the token it rejected (a static credential cannot be refreshed).
    pub(crate) fn reject(&self, credential: &Credential) -> bool {
        match (&self.credentials, &credential.token) {
            (Credentials::Token(manager), Some(token)) => {
                manager.invalidate(token);
                true
            }
            _ => false,
        }
    }

    /// The upstream request target (origin form) for an incoming path and query: `<prefix>/rest?q` →
    /// `<upstream base path>/rest?q`.
    pub(crate) fn upstream_uri(&self, path: &str, query: Option<&str>) -> String {
        let rest = &path[self.config.prefix.len()..];
        let base = self.config.upstream.path().trim_end_matches('/');
        let mut uri = String::with_capacity(base.len() + rest.len() + 32);
        uri.push_str(base);
        uri.push_str(if rest.is_empty() { "/" } else { rest });
        if let Some(q) = query {
            uri.push('?');
            uri.push_str(q);
        }
        uri
    }
}
