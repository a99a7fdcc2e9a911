//! Reading a feed's CSV row by row, keeping for each row the physical line it starts on (right across quoted
//! newlines) and its text exactly as in the file, so a rejected row can be sent back as it came.
//!
//! The header is checked first: a missing required column, or two headers naming one column, fail the run
//! before any row is read. Every row is then parsed into its declared types (`validate.rs`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read};
use std::rc::Rc;

use sha2::{Digest, Sha256};
use skybook_domain::feed::FeedValue;
use skybook_storage::ImportReject;

use crate::declaration::{Encoding, FeedType};
use crate::validate::{parse_row, truncate};

/// Rows handed to the loader at a time.
const BATCH: usize = 2_000;

/// What the reader reports, in order: batches, then one `Done` or `Failed`.
#[derive(Debug)]
pub enum Event {
    Batch {
        rows: Vec<(u64, Vec<FeedValue>)>,
        rejects: Vec<ImportReject>,
        /// Rows read so far (the header not counted) and CSV bytes so far.
        read: u64,
        bytes: u64,
    },
    Done {
        read: u64,
        bytes: u64,
        sha256: String,
        /// The header row as it was in the file.
        header: String,
    },
    /// The file cannot be imported at all (its header, a limit, a broken file): the run fails with this.
    Failed(String),
}

/// Copies what the CSV parser reads into a window from the current row's start, and hashes it all.
struct Tee<R> {
    inner: R,
    window: Rc<RefCell<Window>>,
    max_row_bytes: usize,
}

#[derive(Default)]
struct Window {
    /// The file's bytes from offset `start`.
    bytes: Vec<u8>,
    start: u64,
    hasher: Sha256,
    total: u64,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut window = self.window.borrow_mut();
        window.bytes.extend_from_slice(&buf[..n]);
        window.hasher.update(&buf[..n]);
        window.total += n as u64;
        // A row longer than the limit (an unclosed quote makes the rest of the file one row) would grow the window
        // without bound: stop here.
        if window.bytes.len() > self.max_row_bytes + (64 << 10) {
            return Err(io::Error::other(format!(
                "a row is longer than {} bytes (a quoted field never closed?)",
                self.max_row_bytes
            )));
        }
        Ok(n)
    }
}

impl Window {
    /// The text of `[from, to)` of the file, then forgets everything before `to`.
    fn take(&mut self, from: u64, to: u64) -> Vec<u8> {
        let a = (from.saturating_sub(self.start) as usize).min(self.bytes.len());
        let b = (to.saturating_sub(self.start) as usize).min(self.bytes.len());
        let raw = self.bytes[a..b].to_vec();
        self.bytes.drain(..b);
        self.start += b as u64;
        raw
    }
}

/// Decodes field or row bytes in the feed's encoding; `None` for invalid UTF-8 in a UTF-8 feed.
pub(crate) fn decode(bytes: &[u8], encoding: Encoding) -> Option<String> {
    match encoding {
        Encoding::Utf8 => std::str::from_utf8(bytes).ok().map(str::to_owned),
        Encoding::Windows1252 => Some(
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
        ),
    }
}

/// A row's text for a reject record: decoded (lossily where it is not valid), without its line break.
fn raw_text(bytes: &[u8], encoding: Encoding) -> String {
    let text =
        decode(bytes, encoding).unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned());
    let text = text.strip_suffix('\n').unwrap_or(&text);
    text.strip_suffix('\r').unwrap_or(text).to_owned()
}

fn csv_reader<R: Read>(input: R, feed: &FeedType) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(feed.dialect.delimiter)
        .quote(feed.dialect.quote)
        .from_reader(input)
}

/// Reads the whole CSV in `input`, reporting through `send` (which returns `false` to stop early).
pub fn read_rows(
    input: &mut dyn Read,
    feed: &FeedType,
    max_row_bytes: usize,
    send: &mut dyn FnMut(Event) -> bool,
) {
    let window = Rc::new(RefCell::new(Window::default()));
    let tee = Tee {
        inner: input,
        window: Rc::clone(&window),
        max_row_bytes,
    };
    let mut csv = csv_reader(tee, feed);
    let encoding = feed.dialect.encoding;
    let mut record = csv::ByteRecord::new();

    // The header.
    match csv.read_byte_record(&mut record) {
        Ok(true) => {}
        Ok(false) => {
            send(Event::Failed("the file is empty: no header row".into()));
            return;
        }
        Err(e) => {
            send(Event::Failed(format!("line 1: {}", csv_error(&e))));
            return;
        }
    }
    let end = csv.position().byte();
    let header_raw = window.borrow_mut().take(0, end);
    let header_text = raw_text(
        header_raw
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(&header_raw),
        encoding,
    );
    let mapping = match header(&record, feed) {
        Ok(mapping) => mapping,
        Err(message) => {
            send(Event::Failed(message));
            return;
        }
    };

    let (mut rows, mut rejects, mut read) = (Vec::with_capacity(BATCH), Vec::new(), 0u64);
    let mut unbalanced: Option<ImportReject> = None;
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                send(Event::Failed(format!("line {line}: {}", csv_error(&e))));
                return;
            }
        }
        let position = record
            .position()
            .cloned()
            .unwrap_or_else(csv::Position::new);
        let (line, start, end) = (position.line(), position.byte(), csv.position().byte());
        let raw = window.borrow_mut().take(start, end);
        if end - start > max_row_bytes as u64 {
            send(Event::Failed(format!(
                "line {line}: the row is longer than {max_row_bytes} bytes"
            )));
            return;
        }
        // A blank line between rows is no row.
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        read += 1;
        // Well-formed CSV has an even number of quote characters in every row. An odd count in the last row is
        // a quoted field never closed: that "row" is the rest of the file, and the run fails rather than drop it
        // as one reject. Anywhere else it is one malformed row — known only once another row follows, so its
        // reject waits until then.
        if let Some(reject) = unbalanced.take() {
            rejects.push(reject);
        }
        let quotes = raw.iter().filter(|&&b| b == feed.dialect.quote).count();
        if quotes % 2 == 1 {
            unbalanced = Some(ImportReject {
                line: line as i64,
                column_name: None,
                value: None,
                reason: "an unbalanced quote character".into(),
                raw: raw_text(&raw, encoding),
            });
            continue;
        }
        let parsed = parse_row(&record, &mapping, feed);
        match parsed {
            Ok(values) => rows.push((line, values)),
            Err(problems) => {
                let raw = raw_text(&raw, encoding);
                rejects.extend(problems.into_iter().map(|p| ImportReject {
                    line: line as i64,
                    column_name: p.column,
                    value: p.value.map(|v| truncate(&v)),
                    reason: p.reason,
                    raw: raw.clone(),
                }));
            }
        }
        if rows.len() >= BATCH || rejects.len() >= BATCH {
            let bytes = window.borrow().total;
            let batch = Event::Batch {
                rows: std::mem::replace(&mut rows, Vec::with_capacity(BATCH)),
                rejects: std::mem::take(&mut rejects),
                read,
                bytes,
            };
            if !send(batch) {
                return;
            }
        }
    }
    if let Some(reject) = unbalanced {
        send(Event::Failed(format!(
            "line {}: a quoted field opened in this row is never closed",
            reject.line
        )));
        return;
    }
    let window = window.borrow();
    let bytes = window.total;
    let sha256 = hex::encode(window.hasher.clone().finalize());
    let pending = !rows.is_empty() || !rejects.is_empty();
    if pending
        && !send(Event::Batch {
            rows,
            rejects,
            read,
            bytes,
        })
    {
        return;
    }
    send(Event::Done {
        read,
        bytes,
        sha256,
        header: header_text,
    });
}

fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    }
}

/// Which field holds which declared column: `mapping[column] = Some(field index)`.
pub(crate) type Mapping = Vec<Option<usize>>;

fn header(record: &csv::ByteRecord, feed: &FeedType) -> Result<Mapping, String> {
    let mut mapping: Mapping = vec![None; feed.table.columns.len()];
    for (field, bytes) in record.iter().enumerate() {
        let bytes = if field == 0 {
            bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
        } else {
            bytes
        };
        let Some(text) = decode(bytes, feed.dialect.encoding) else {
            return Err(format!(
                "line 1: header field {} is not valid UTF-8",
                field + 1
            ));
        };
        let Some(&column) = feed.headers.get(&text.trim().to_lowercase()) else {
            continue; // A column the feed does not declare: ignored.
        };
        if let Some(first) = mapping[column] {
            return Err(format!(
                "line 1: the header names column {:?} twice (fields {} and {})",
                feed.table.columns[column].name.as_str(),
                first + 1,
                field + 1
            ));
        }
        mapping[column] = Some(field);
    }
    let missing: Vec<&str> = feed
        .table
        .columns
        .iter()
        .zip(&mapping)
        .filter(|(c, m)| c.required && m.is_none())
        .map(|(c, _)| c.name.as_str())
        .collect();
    if !missing.is_empty() {
        let hint = if record.len() == 1 {
            format!(
                "; the header is one field — is the file delimited by something other than {:?}?",
                feed.dialect.delimiter as char
            )
        } else {
            String::new()
        };
        return Err(format!(
            "line 1: the header lacks required column(s) {}{hint}",
            missing.join(", ")
        ));
    }
    Ok(mapping)
}

/// The text of the rows starting on `lines` (sorted), read again from the file: a duplicate is found only once
/// the whole file is staged, and its reject record carries its text too.
pub fn raw_rows(
    input: &mut dyn Read,
    feed: &FeedType,
    max_row_bytes: usize,
    lines: &[u64],
) -> io::Result<HashMap<u64, String>> {
    let window = Rc::new(RefCell::new(Window::default()));
    let tee = Tee {
        inner: input,
        window: Rc::clone(&window),
        max_row_bytes,
    };
    let mut csv = csv_reader(tee, feed);
    let mut record = csv::ByteRecord::new();
    let mut found = HashMap::new();
    let mut wanted = lines.iter().peekable();
    while wanted.peek().is_some()
        && csv
            .read_byte_record(&mut record)
            .map_err(io::Error::other)?
    {
        let position = record
            .position()
            .cloned()
            .unwrap_or_else(csv::Position::new);
        let raw = window
            .borrow_mut()
            .take(position.byte(), csv.position().byte());
        while wanted.peek().is_some_and(|&&l| l < position.line()) {
            wanted.next();
        }
        if wanted.peek() == Some(&&position.line()) {
            found.insert(position.line(), raw_text(&raw, feed.dialect.encoding));
            wanted.next();
        }
    }
    Ok(found)
}
