//! The partner's feed endpoint: `GET <base>/feeds/{tenant}/{feed}?date=YYYY-MM-DD`, its body streamed into a
//! file (the importer reads it from there; nothing holds a whole feed in memory). Through the auth proxy (no
//! credentials here) or with skybook's own token manager, like the payment provider.
//!
//! Transient failures — no connection, a timeout, a cut-off body, `429`, `5xx` — are retried with the shared
//! policy, each attempt starting the file over. A `4xx` is the partner's answer and is not retried.

use std::time::Duration;

use chrono::NaiveDate;
use reqwest::header::AUTHORIZATION;
use reqwest::StatusCode;
use skybook_domain::RetryPolicy;
use tokio::io::AsyncWriteExt as _;
use url::Url;

use crate::oauth::{TokenError, TokenManager};
use crate::retry::{self, with_retries, RetryClass};

/// Why a feed could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The feed endpoint answered with a client error: the request is wrong (unknown tenant or feed, a bad
    /// date); retrying will not help.
    #[error("the feed endpoint refused the request: HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    /// Unreachable, too slow, a server error, or a body cut off — after the retries.
    #[error("the feed endpoint is unavailable: {cause}")]
    Unavailable {
        cause: String,
        /// The server's `Retry-After`, for the retry loop.
        retry_after: Option<Duration>,
    },
    #[error("the feed is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("no access token for the feed endpoint")]
    Auth(#[source] TokenError),
    #[error("writing the downloaded feed")]
    Io(#[source] std::io::Error),
}

impl RetryClass for FeedError {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Where the feeds are and how to get in.
pub struct FeedClient {
    http: reqwest::Client,
    base: Url,
    auth: Option<TokenManager>,
    retry: RetryPolicy,
    /// One whole download, body included.
    timeout: Duration,
}

impl FeedClient {
    pub fn new(
        http: reqwest::Client,
        base: Url,
        auth: Option<TokenManager>,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            http,
            base,
            auth,
            retry,
            timeout: Duration::from_secs(600),
        }
    }

    /// The URL of one day's feed.
    pub fn url(&self, tenant: &str, feed: &str, date: NaiveDate) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map(|mut segments| {
                segments.pop_if_empty().extend(["feeds", tenant, feed]);
            })
            .ok();
        url.query_pairs_mut()
            .append_pair("date", &date.format("%Y-%m-%d").to_string());
        url
    }

    /// Downloads one day's feed into the file at `path` (created, or truncated); returns the bytes written.
    pub async fn fetch(
        &self,
        tenant: &str,
        feed: &str,
        date: NaiveDate,
        path: &std::path::Path,
        max_bytes: u64,
    ) -> Result<u64, FeedError> {
        let url = self.url(tenant, feed, date);
        let target = self.base.host_str().unwrap_or("feeds").to_owned();
        with_retries(&self.retry, &target, "fetch_feed", || {
            self.attempt(&url, path, max_bytes)
        })
        .await
    }

    async fn attempt(
        &self,
        url: &Url,
        path: &std::path::Path,
        max_bytes: u64,
    ) -> Result<u64, FeedError> {
        let unavailable = |cause: String, retry_after: Option<Duration>| FeedError::Unavailable {
            cause,
            retry_after,
        };
        // A 401 to our own token: the token was revoked or the server forgot it. Once, a fresh token.
        let mut reauthed = false;
        let mut response = loop {
            let token = match &self.auth {
                Some(auth) => Some(auth.token().await.map_err(FeedError::Auth)?),
                None => None,
            };
            let mut request = self.http.get(url.clone()).timeout(self.timeout);
            if let Some(token) = &token {
                request = request.header(AUTHORIZATION, token.bearer_header());
            }
            let response = request
                .send()
                .await
                .map_err(|e| unavailable(e.to_string(), None))?;
            match (&self.auth, &token) {
                (Some(auth), Some(token))
                    if response.status() == StatusCode::UNAUTHORIZED && !reauthed =>
                {
                    auth.invalidate(token);
                    reauthed = true;
                }
                _ => break response,
            }
        };
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let after = retry::retry_after(response.headers());
            return Err(unavailable(format!("HTTP {status}"), after));
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(FeedError::Refused {
                status: status.as_u16(),
                body: body.chars().take(300).collect(),
            });
        }
        // Each attempt starts the file over.
        let mut file = tokio::fs::File::create(path).await.map_err(FeedError::Io)?;
        let mut written = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(format!("the body was cut off: {e}"), None))?
        {
            written += chunk.len() as u64;
            if written > max_bytes {
                return Err(FeedError::TooLarge { limit: max_bytes });
            }
            file.write_all(&chunk).await.map_err(FeedError::Io)?;
        }
        file.flush().await.map_err(FeedError::Io)?;
        Ok(written)
    }
}
