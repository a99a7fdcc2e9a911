//! From a synchronous writer to a streamed response body: the feed is produced on a blocking thread
//! into [`ChannelWriter`], whose bounded channel the body reads from. A slow client therefore
//! slows the producer instead of letting output pile up, and a client that goes away stops it
//! (the next send fails). [`Base64Writer`] encodes on the way, for the JSON envelope.

use std::io::{self, Write};

use axum::body::{Body, Bytes};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use tokio::sync::mpsc;

/// Size of the chunks sent to the body.
const CHUNK: usize = 64 * 1024;

/// Chunks waiting for the client: with `CHUNK`, at most 256 KiB queued per response.
const QUEUE: usize = 4;

/// The writing end: buffers one chunk, then hands it to the body, waiting while the queue is full.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }

    /// Ends the body with an error, so the client sees a cut-off response, not a short valid one.
    fn fail(&self, error: io::Error) {
        let _ = self.tx.blocking_send(Err(error));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A body that `produce` writes on a blocking thread (generation is CPU work: it must not hold up
/// the runtime's workers).
pub fn streamed_body(
    produce: impl FnOnce(&mut ChannelWriter) -> io::Result<()> + Send + 'static,
) -> Body {
    let (tx, mut rx) = mpsc::channel(QUEUE);
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        match produce(&mut out).and_then(|()| out.flush()) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
                tracing::debug!("feed client went away; generation stopped");
            }
            Err(error) => {
                tracing::error!(%error, "generating a feed failed");
                out.fail(error);
            }
        }
    });
    Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// Base64 (standard alphabet, padded) of what is written, in one unbroken line. With `corrupt`,
/// three characters outside the alphabet are slipped in after the first piece of output, so the
/// text is broken in the middle, where a streaming decoder has already accepted some of it.
pub struct Base64Writer<W: Write> {
    inner: W,
    carry: [u8; 3],
    carried: usize,
    encoded: Vec<u8>,
    corrupt: bool,
}

/// Input encoded per call to the engine: a multiple of 3, so no padding appears mid-stream.
const PIECE: usize = 48 * 1024;

impl<W: Write> Base64Writer<W> {
    pub fn new(inner: W, corrupt: bool) -> Self {
        Self {
            inner,
            carry: [0; 3],
            carried: 0,
            encoded: vec![0; PIECE / 3 * 4],
            corrupt,
        }
    }

    fn emit(&mut self, input: &[u8]) -> io::Result<()> {
        let n = STANDARD
            .encode_slice(input, &mut self.encoded)
            .map_err(io::Error::other)?;
        self.inner.write_all(&self.encoded[..n])?;
        if self.corrupt {
            self.corrupt = false;
            self.inner.write_all(b"#!%")?;
        }
        Ok(())
    }

    /// Writes the last bytes with their padding; answers the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if self.carried > 0 || self.corrupt {
            let carry = self.carry;
            self.emit(&carry[..self.carried])?;
        }
        Ok(self.inner)
    }
}

impl<W: Write> Write for Base64Writer<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let len = buf.len();
        if self.carried > 0 {
            let take = (3 - self.carried).min(buf.len());
            self.carry[self.carried..self.carried + take].copy_from_slice(&buf[..take]);
            self.carried += take;
            buf = &buf[take..];
            if self.carried < 3 {
                return Ok(len);
            }
            let carry = self.carry;
            self.emit(&carry)?;
            self.carried = 0;
        }
        let whole = buf.len() / 3 * 3;
        for piece in buf[..whole].chunks(PIECE) {
            self.emit(piece)?;
        }
        let rest = &buf[whole..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carried = rest.len();
        Ok(len)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_in_any_pieces_is_the_one_shot_encoding() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
        for pieces in [1usize, 2, 3, 4, 5, 1000, 65_536, 200_000] {
            for len in [0usize, 1, 2, 3, 4, 100_001, 200_000] {
                let mut writer = Base64Writer::new(Vec::new(), false);
                for piece in data[..len].chunks(pieces) {
                    writer.write_all(piece).unwrap();
                }
                let text = writer.finish().unwrap();
                assert_eq!(text, STANDARD.encode(&data[..len]).into_bytes());
            }
        }
    }

    #[test]
    fn corrupt_base64_does_not_decode() {
        for len in [0usize, 2, 3000] {
            let mut writer = Base64Writer::new(Vec::new(), true);
            writer.write_all(&vec![7u8; len]).unwrap();
            let text = writer.finish().unwrap();
            assert!(STANDARD.decode(&text).is_err(), "{len}");
        }
    }
}
