//! `/v1/blobs`: large bodies streamed in both directions.

use futures::{stream, StreamExt as _};
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};
use skybook_sandbox::{blob_byte, MAX_BLOB_BYTES};

use crate::common::{status_json, Harness};

#[tokio::test]
async fn upload_counts_and_hashes_a_streamed_body_of_any_size() {
    let h = Harness::start().await;
    let token = h.token().await;
    // 24 MiB of varied content, chunked.
    let chunk = |i: u32| -> Vec<u8> {
        (0..256 * 1024u32)
            .map(|j| (i.wrapping_mul(7919) ^ j.wrapping_mul(31)) as u8)
            .collect()
    };
    let mut expected = Sha256::new();
    for i in 0..96 {
        expected.update(chunk(i));
    }
    let chunks = (0..96).map(move |i| Ok::<_, std::io::Error>(chunk(i)));
    let response = h
        .http
        .post(h.url("/v1/blobs"))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["bytes"], 96 * 256 * 1024);
    assert_eq!(body["sha256"], hex::encode(expected.finalize()));

    let response = h
        .http
        .post(h.url("/v1/blobs"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["bytes"], 0);
    assert_eq!(body["sha256"], hex::encode(Sha256::digest(b"")));
}

#[tokio::test]
async fn download_streams_exactly_the_requested_bytes_of_the_documented_pattern() {
    let h = Harness::start().await;
    let token = h.token().await;
    for size in [0u64, 1, 250, 251, 65_536 + 1_000, 3 * 1024 * 1024 + 7] {
        let response = h
            .http
            .get(h.url(&format!("/v1/blobs/{size}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.content_length(), Some(size), "Content-Length");
        assert_eq!(
            response.headers()["content-type"],
            "application/octet-stream"
        );
        let mut offset = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            for byte in chunk.unwrap() {
                assert_eq!(byte, blob_byte(offset), "byte {offset} of {size}");
                offset += 1;
            }
        }
        assert_eq!(offset, size);
    }
    // Byte i is (i * 31 + 7) % 251.
    assert_eq!(
        (0..5).map(blob_byte).collect::<Vec<_>>(),
        [7, 38, 69, 100, 131]
    );
}

#[tokio::test]
async fn download_serves_up_to_one_gib_lazily_and_refuses_more() {
    let h = Harness::start().await;
    let token = h.token().await;
    let response = h
        .http
        .get(h.url(&format!("/v1/blobs/{MAX_BLOB_BYTES}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.content_length(), Some(1 << 30));
    let first = response.bytes_stream().next().await.unwrap().unwrap();
    assert!(!first.is_empty() && first.len() <= 64 * 1024);
    // Dropping the stream here abandons the rest: nothing was generated ahead of the reader.

    for (path, code) in [
        (
            format!("/v1/blobs/{}", MAX_BLOB_BYTES + 1),
            "blob_too_large",
        ),
        ("/v1/blobs/abc".to_owned(), "parameter_invalid"),
        ("/v1/blobs/-5".to_owned(), "parameter_invalid"),
    ] {
        let (status, body) = h.get(&token, &path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["error"]["code"], code);
    }
}
