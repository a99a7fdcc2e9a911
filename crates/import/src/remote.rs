//! The partner's feed over HTTP as a source: one day's file downloaded (streamed to a temporary file, retried
//! while the endpoint is unavailable), then read like any file.

use chrono::NaiveDate;
use skybook_clients::{FeedClient, FeedError};

use crate::declaration::FeedType;
use crate::source::{Limits, Source, SourceError};

/// Why a day's feed could not be made a source.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    Fetch(#[from] FeedError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("creating a temporary file for the download")]
    Io(#[from] std::io::Error),
}

impl DownloadError {
    /// Worth another try later: the endpoint was unavailable (after the client's own retries).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Fetch(FeedError::Unavailable { .. }) | Self::Fetch(FeedError::Auth(_))
        )
    }
}

/// Downloads `tenant`'s `feed` for `date`; returns the source and its URL (the run's label).
pub async fn download(
    client: &FeedClient,
    tenant: &str,
    feed: &FeedType,
    date: NaiveDate,
    limits: Limits,
) -> Result<(Source, String), DownloadError> {
    let url = client.url(tenant, feed.name(), date).to_string();
    let file = tempfile::NamedTempFile::new()?.into_temp_path();
    client
        .fetch(tenant, feed.name(), date, &file, limits.max_input_bytes)
        .await?;
    let entry = feed.entry.clone();
    let source =
        tokio::task::spawn_blocking(move || Source::from_download(file, entry.as_deref(), limits))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
    Ok((source, url))
}
