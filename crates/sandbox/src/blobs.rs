//! Large bodies in both directions, for checking that whatever sits between a client and the
//! sandbox (an auth proxy) streams instead of buffering: `POST /v1/blobs` reads a request body of
//! any size chunk by chunk, hashing as it goes; `GET /v1/blobs/{bytes}` writes up to 1 GiB of
//! reproducible content in 64 KiB chunks cut, without copying, from one shared buffer. Memory per
//! request stays flat whatever the size.
//!
//! Content of a served blob: byte `i` is `(i * 31 + 7) % 251`, the same for every size, so a client
//! can check what it received (or hash the expected content) without the sandbox hashing a
//! gigabyte up front.

use std::convert::Infallible;
use std::sync::OnceLock;

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt as _;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Largest blob `GET /v1/blobs/{bytes}` serves: 1 GiB.
pub const MAX_BLOB_BYTES: u64 = 1 << 30;

/// Size of the chunks a served blob is written in.
const CHUNK: usize = 64 * 1024;

/// The content repeats every 251 bytes (a prime, so it never lines up with a power-of-two chunk).
const PERIOD: usize = 251;

/// Byte `i` of every served blob.
pub fn blob_byte(i: u64) -> u8 {
    // `i % 251 < 251`, so the arithmetic cannot overflow and the result fits a byte.
    (((i % PERIOD as u64) * 31 + 7) % PERIOD as u64) as u8
}

/// `CHUNK + PERIOD` bytes of the pattern from offset 0: the chunk starting at offset `o` is the
/// slice starting at `o % PERIOD`.
fn template() -> &'static Bytes {
    static TEMPLATE: OnceLock<Bytes> = OnceLock::new();
    TEMPLATE.get_or_init(|| (0..(CHUNK + PERIOD) as u64).map(blob_byte).collect())
}

/// Reads `body` to its end one chunk at a time, handing each chunk to `on_chunk` and dropping it;
/// answers the number of bytes read.
pub async fn consume(body: Body, mut on_chunk: impl FnMut(&[u8])) -> Result<u64, ApiError> {
    let mut stream = body.into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| {
            tracing::info!(%error, "reading a request body failed");
            ApiError::invalid_request("body_read_failed", "the request body could not be read")
        })?;
        total = total.saturating_add(chunk.len() as u64);
        on_chunk(&chunk);
    }
    Ok(total)
}

/// `POST /v1/blobs`: `{"bytes": n, "sha256": "<hex>"}` of the request body.
pub async fn upload(body: Body) -> Result<Response, ApiError> {
    let mut hasher = Sha256::new();
    let bytes = consume(body, |chunk| hasher.update(chunk)).await?;
    let sha256 = hex::encode(hasher.finalize());
    tracing::debug!(bytes, "blob received");
    Ok(Json(json!({ "bytes": bytes, "sha256": sha256 })).into_response())
}

/// `GET /v1/blobs/{bytes}`: exactly `bytes` bytes of the pattern, streamed.
pub async fn download(Path(bytes): Path<String>) -> Result<Response, ApiError> {
    let total: u64 = bytes.parse().map_err(|_| {
        ApiError::invalid_request(
            "parameter_invalid",
            "the blob size must be a whole number of bytes",
        )
    })?;
    if total > MAX_BLOB_BYTES {
        return Err(ApiError::invalid_request(
            "blob_too_large",
            format!("blobs are at most {MAX_BLOB_BYTES} bytes"),
        ));
    }
    let chunks = (0..total).step_by(CHUNK).map(move |offset| {
        // Both casts are bounded by CHUNK.
        let len = (total - offset).min(CHUNK as u64) as usize;
        let start = (offset % PERIOD as u64) as usize;
        Ok::<_, Infallible>(template().slice(start..start + len))
    });
    let mut response = Body::from_stream(futures::stream::iter(chunks)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(total));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_holds_the_pattern_at_every_offset() {
        let template = template();
        assert_eq!(template.len(), CHUNK + PERIOD);
        assert_eq!(blob_byte(0), 7);
        assert_eq!(blob_byte(1), 38);
        assert_eq!(blob_byte(251), 7);
        for offset in [0u64, 65_536, 131_072, 1 << 30] {
            let start = (offset % PERIOD as u64) as usize;
            for k in [0usize, 1, 250, CHUNK - 1] {
                assert_eq!(template[start + k], blob_byte(offset + k as u64));
            }
        }
    }
}
