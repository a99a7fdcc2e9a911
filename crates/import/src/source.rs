//! Where a feed's CSV comes from, streamed: a `.csv` file, a zip holding one, or the partner's JSON envelope
//! `{"data": "<base64 of a zip>"}`. Nothing is held in memory whole: the envelope's base64 is decoded as it is
//! read into a temporary file (a zip needs random access to its directory), and the CSV is inflated as it is
//! parsed. What a file really is, is read from its first bytes, not its name.
//!
//! Limits, each with its own error: the input's size, the CSV's size, the compression ratio (a zip bomb is
//! refused before it is inflated, and again while inflating, should its directory lie), and exactly one CSV in
//! a zip (or the entry the declaration names).

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;

/// Sizes past which a source is refused.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The file (or download) as received.
    pub max_input_bytes: u64,
    /// The CSV, inflated.
    pub max_csv_bytes: u64,
    /// CSV bytes per compressed byte; deflate rarely passes 20 on real CSV, a bomb passes 1000.
    pub max_ratio: u64,
    /// One row of the CSV (a quoted field never closed makes "one row" of the rest of the file).
    pub max_row_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 1 << 30,
            max_csv_bytes: 32 << 30,
            max_ratio: 200,
            max_row_bytes: 1 << 20,
        }
    }
}

/// Why a source cannot be read. Each names what is wrong with the file, for the run's error.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("the file is empty")]
    Empty,
    #[error("the envelope is not JSON of the form {{\"data\": \"<base64>\"}}: {0}")]
    Envelope(String),
    #[error("the envelope's data is not valid base64: {0}")]
    NotBase64(String),
    #[error("the data is not a zip archive: {0}")]
    NotZip(String),
    #[error("the zip holds no CSV file")]
    NoCsv,
    #[error("the zip holds {0} CSV files ({1}); name the one to read with `entry` in the feed's declaration")]
    SeveralCsv(usize, String),
    #[error("the zip has no entry {0:?}")]
    NoSuchEntry(String),
    #[error("the input is larger than the limit of {limit} bytes")]
    InputTooLarge { limit: u64 },
    #[error("the CSV is larger than the limit of {limit} bytes")]
    CsvTooLarge { limit: u64 },
    #[error("the zip entry inflates {ratio}-fold (limit {limit}): refused as a zip bomb")]
    Bomb { ratio: u64, limit: u64 },
    #[error("reading the input: {0}")]
    Io(#[from] io::Error),
}

/// A CSV to read, as many times as needed.
#[derive(Debug)]
pub struct Source {
    kind: Kind,
    /// The input's size as received.
    pub input_bytes: u64,
    /// The CSV's own size (a zip's entry uncompressed): what a run reads, for its progress's ETA.
    pub csv_bytes: u64,
    limits: Limits,
    /// Keeps temporary files (a download, a decoded envelope's zip) alive for as long as the source.
    _spilled: Vec<tempfile::TempPath>,
}

#[derive(Debug)]
enum Kind {
    Csv(PathBuf),
    Zip {
        path: PathBuf,
        entry: usize,
        compressed: u64,
    },
}

impl Source {
    /// The source in the file at `path`: a CSV, a zip, or an envelope. `entry` names the zip entry to read.
    pub fn from_file(
        path: &Path,
        entry: Option<&str>,
        limits: Limits,
    ) -> Result<Self, SourceError> {
        let mut file = File::open(path)?;
        let input_bytes = file.metadata()?.len();
        if input_bytes > limits.max_input_bytes {
            return Err(SourceError::InputTooLarge {
                limit: limits.max_input_bytes,
            });
        }
        let mut head = [0u8; 4];
        let n = read_up_to(&mut file, &mut head)?;
        let first = head[..n].iter().find(|b| !b.is_ascii_whitespace()).copied();
        match first {
            None if n == 0 => Err(SourceError::Empty),
            Some(b'{') => {
                file.rewind()?;
                let spilled = decode_envelope(BufReader::new(file), &limits)?;
                let mut source = Self::zip(spilled.to_path_buf(), entry, input_bytes, limits)?;
                source._spilled.push(spilled);
                Ok(source)
            }
            _ if head[..n].starts_with(b"PK") => {
                Self::zip(path.to_owned(), entry, input_bytes, limits)
            }
            _ => Ok(Self {
                kind: Kind::Csv(path.to_owned()),
                input_bytes,
                csv_bytes: input_bytes,
                limits,
                _spilled: Vec::new(),
            }),
        }
    }

    /// The source in a downloaded temporary file, which lives as long as the source.
    pub fn from_download(
        download: tempfile::TempPath,
        entry: Option<&str>,
        limits: Limits,
    ) -> Result<Self, SourceError> {
        let mut source = Self::from_file(&download, entry, limits)?;
        source._spilled.push(download);
        Ok(source)
    }

    fn zip(
        path: PathBuf,
        entry: Option<&str>,
        input_bytes: u64,
        limits: Limits,
    ) -> Result<Self, SourceError> {
        let mut archive = zip::ZipArchive::new(File::open(&path)?)
            .map_err(|e| SourceError::NotZip(e.to_string()))?;
        let index = match entry {
            Some(name) => archive
                .index_for_name(name)
                .ok_or_else(|| SourceError::NoSuchEntry(name.to_owned()))?,
            None => {
                let csvs: Vec<(usize, String)> = (0..archive.len())
                    .filter_map(|i| {
                        let name = archive.name_for_index(i)?.to_owned();
                        let is_csv = !name.ends_with('/') && name.to_lowercase().ends_with(".csv");
                        is_csv.then_some((i, name))
                    })
                    .collect();
                match csvs.as_slice() {
                    [] => return Err(SourceError::NoCsv),
                    [(i, _)] => *i,
                    several => {
                        let names: Vec<&str> = several.iter().map(|(_, n)| n.as_str()).collect();
                        return Err(SourceError::SeveralCsv(several.len(), names.join(", ")));
                    }
                }
            }
        };
        let file = archive
            .by_index_raw(index)
            .map_err(|e| SourceError::NotZip(e.to_string()))?;
        let (size, compressed) = (file.size(), file.compressed_size().max(1));
        if size > limits.max_csv_bytes {
            return Err(SourceError::CsvTooLarge {
                limit: limits.max_csv_bytes,
            });
        }
        if size / compressed > limits.max_ratio {
            return Err(SourceError::Bomb {
                ratio: size / compressed,
                limit: limits.max_ratio,
            });
        }
        drop(file);
        Ok(Self {
            kind: Kind::Zip {
                path,
                entry: index,
                compressed,
            },
            input_bytes,
            csv_bytes: size,
            limits,
            _spilled: Vec::new(),
        })
    }

    /// Runs `read` on the CSV's bytes, from the start, bounded by the limits.
    pub fn read_with<T>(&self, read: impl FnOnce(&mut dyn Read) -> T) -> Result<T, SourceError> {
        match &self.kind {
            Kind::Csv(path) => {
                let mut bounded = Bounded::new(File::open(path)?, self.limits.max_csv_bytes, None);
                Ok(read(&mut bounded))
            }
            Kind::Zip {
                path,
                entry,
                compressed,
            } => {
                let mut archive = zip::ZipArchive::new(File::open(path)?)
                    .map_err(|e| SourceError::NotZip(e.to_string()))?;
                let file = archive
                    .by_index(*entry)
                    .map_err(|e| SourceError::NotZip(e.to_string()))?;
                let ratio_limit = compressed.saturating_mul(self.limits.max_ratio);
                let mut bounded = Bounded::new(file, self.limits.max_csv_bytes, Some(ratio_limit));
                Ok(read(&mut bounded))
            }
        }
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Fails the read past `max` bytes (the CSV limit) or past `bomb` (the inflated size the compression ratio
/// allows), whatever the zip's directory claimed.
struct Bounded<R> {
    inner: R,
    read: u64,
    max: u64,
    bomb: Option<u64>,
}

impl<R> Bounded<R> {
    fn new(inner: R, max: u64, bomb: Option<u64>) -> Self {
        Self {
            inner,
            read: 0,
            max,
            bomb,
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max {
            return Err(io::Error::other(SourceError::CsvTooLarge {
                limit: self.max,
            }));
        }
        if self.bomb.is_some_and(|limit| self.read > limit) {
            return Err(io::Error::other(
                "the zip entry inflates past its compression-ratio limit: refused as a zip bomb",
            ));
        }
        Ok(n)
    }
}

/// Streams the envelope's `data` (base64) into a temporary file, decoding as it goes; other members are skipped.
fn decode_envelope(
    mut input: impl Read,
    limits: &Limits,
) -> Result<tempfile::TempPath, SourceError> {
    let mut json = JsonScanner {
        input: &mut input,
        peeked: None,
    };
    json.expect(b'{')?;
    let mut spilled = None;
    loop {
        match json.next_non_ws()? {
            Some(b'"') => {}
            Some(b'}') if spilled.is_none() => {
                return Err(SourceError::Envelope("no \"data\" member".into()))
            }
            Some(b'}') => break,
            other => {
                return Err(SourceError::Envelope(format!(
                    "expected a member name, found {}",
                    shown(other)
                )))
            }
        }
        let key = json.small_string()?;
        json.expect(b':')?;
        if key == "data" {
            if json.next_non_ws()? != Some(b'"') {
                return Err(SourceError::Envelope("\"data\" is not a string".into()));
            }
            let mut file = tempfile::NamedTempFile::new()?;
            let mut decoder = base64::read::DecoderReader::new(
                Base64Chars {
                    json: &mut json,
                    done: false,
                },
                &STANDARD,
            );
            let mut limited = (&mut decoder).take(limits.max_input_bytes + 1);
            let copied = io::copy(&mut limited, &mut file).map_err(|e| match e.kind() {
                io::ErrorKind::InvalidData => SourceError::NotBase64(e.to_string()),
                _ if e.get_ref().is_some_and(|inner| inner.is::<EnvelopeError>()) => {
                    SourceError::Envelope(e.to_string())
                }
                _ => SourceError::Io(e),
            })?;
            if copied > limits.max_input_bytes {
                return Err(SourceError::InputTooLarge {
                    limit: limits.max_input_bytes,
                });
            }
            file.flush()?;
            spilled = Some(file.into_temp_path());
        } else {
            json.skip_value()?;
        }
        match json.next_non_ws()? {
            Some(b',') => continue,
            Some(b'}') => break,
            other => {
                return Err(SourceError::Envelope(format!(
                    "expected , or }} after a member, found {}",
                    shown(other)
                )))
            }
        }
    }
    spilled.ok_or_else(|| SourceError::Envelope("no \"data\" member".into()))
}

fn shown(b: Option<u8>) -> String {
    match b {
        None => "the end of the file".into(),
        Some(b) => format!("{:?}", b as char),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct EnvelopeError(String);

/// Just enough JSON to find one string member in an object and skip the rest.
struct JsonScanner<'a, R> {
    input: &'a mut R,
    peeked: Option<u8>,
}

impl<R: Read> JsonScanner<'_, R> {
    fn next(&mut self) -> io::Result<Option<u8>> {
        if let Some(b) = self.peeked.take() {
            return Ok(Some(b));
        }
        let mut byte = [0u8];
        Ok((self.input.read(&mut byte)? == 1).then_some(byte[0]))
    }

    fn next_non_ws(&mut self) -> io::Result<Option<u8>> {
        loop {
            match self.next()? {
                Some(b) if b.is_ascii_whitespace() => continue,
                other => return Ok(other),
            }
        }
    }

    fn expect(&mut self, want: u8) -> Result<(), SourceError> {
        match self.next_non_ws()? {
            Some(b) if b == want => Ok(()),
            other => Err(SourceError::Envelope(format!(
                "expected {:?}, found {}",
                want as char,
                shown(other)
            ))),
        }
    }

    /// A member name (after its opening quote), kept only up to 64 bytes: names are short.
    fn small_string(&mut self) -> Result<String, SourceError> {
        let mut out = Vec::new();
        loop {
            match self.next()? {
                None => return Err(SourceError::Envelope("a string is never closed".into())),
                Some(b'"') => return Ok(String::from_utf8_lossy(&out).into_owned()),
                Some(b'\\') => {
                    self.next()?;
                }
                Some(b) if out.len() < 64 => out.push(b),
                Some(_) => {}
            }
        }
    }

    fn skip_value(&mut self) -> Result<(), SourceError> {
        let mut depth = 0usize;
        let mut in_string = false;
        loop {
            let Some(b) = self.next()? else {
                return Err(SourceError::Envelope("the object is never closed".into()));
            };
            if in_string {
                match b {
                    b'\\' => {
                        self.next()?;
                    }
                    b'"' => {
                        in_string = false;
                        if depth == 0 {
                            return Ok(());
                        }
                    }
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth > 0 => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                b',' | b'}' | b']' if depth == 0 => {
                    self.peeked = Some(b);
                    return Ok(());
                }
                _ => {}
            }
        }
    }
}

/// The characters of a JSON string's value, for the base64 decoder: `\/` is `/`, escaped line breaks (MIME
/// line-wrapped base64) are dropped, the closing quote ends it.
struct Base64Chars<'a, 'b, R> {
    json: &'a mut JsonScanner<'b, R>,
    done: bool,
}

impl<R: Read> Read for Base64Chars<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() && !self.done {
            match self.json.next()? {
                None => {
                    return Err(io::Error::other(EnvelopeError(
                        "the data string is never closed".into(),
                    )))
                }
                Some(b'"') => self.done = true,
                Some(b'\\') => match self.json.next()? {
                    Some(b'/') => {
                        buf[n] = b'/';
                        n += 1;
                    }
                    Some(b'n' | b'r') => {}
                    other => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("unexpected escape \\{} in base64", shown(other)),
                        ))
                    }
                },
                Some(b'\n' | b'\r') => {}
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}
