//! A one-entry zip written front to back into any `Write`, for feeds too large to hold.
//!
//! `zip` 2.6 (the workspace's version) only writes to a `Write + Seek` target: it seeks back to
//! put the CRC and sizes into the entry's local header once the data is written. A response body
//! cannot seek, so the container is written here by hand the way streaming zippers do it (general
//! purpose flag bit 3: the local header carries zeros, a data descriptor after the data carries
//! the CRC and sizes, the central directory repeats them), and `zip`'s `ZipWriter` is used only
//! for its deflate compressor: it writes into [`Capture`], which passes on the compressed bytes
//! and drops the header and directory `zip` writes around them.
//!
//! The zip bomb is built here too, with a deflate stream written bit by bit: a compressor would
//! have to chew through the gigabyte it inflates to, while this costs what the bomb weighs.

use std::cell::Cell;
use std::io::{self, Seek, SeekFrom, Write};
use std::rc::Rc;

use chrono::{Datelike as _, NaiveDate};

use super::generate::SplitMix64;

const METHOD_DEFLATE: u16 = 8;
/// Version 2.0: deflate and data descriptors.
const VERSION: u16 = 20;
/// General purpose bit 3: CRC and sizes follow the data.
const FLAG_DATA_DESCRIPTOR: u16 = 0x0008;

/// CRC-32 (IEEE, as zip uses it), table-driven.
#[derive(Debug, Clone, Copy)]
pub struct Crc32(u32);

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

fn crc_step(state: u32, byte: u8) -> u32 {
    CRC_TABLE[((state ^ u32::from(byte)) & 0xFF) as usize] ^ (state >> 8)
}

impl Crc32 {
    pub fn new() -> Self {
        Self(0xFFFF_FFFF)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0 = bytes.iter().fold(self.0, |state, &b| crc_step(state, b));
    }

    /// As `update` with `count` copies of `byte`, in O(log count): one byte's step is an affine
    /// map over GF(2)³², so `count` steps are that map raised to the `count`-th power.
    pub fn update_run(&mut self, byte: u8, mut count: u64) {
        let mut result = Affine::identity();
        let mut power = Affine::byte(byte);
        while count > 0 {
            if count & 1 == 1 {
                result = result.then(&power);
            }
            power = power.then(&power);
            count >>= 1;
        }
        self.0 = result.apply(self.0);
    }

    pub fn value(self) -> u32 {
        !self.0
    }
}

/// `state ↦ matrix·state ⊕ constant` over GF(2); column `i` of the matrix is the image of bit `i`.
struct Affine {
    columns: [u32; 32],
    constant: u32,
}

fn multiply(columns: &[u32; 32], v: u32) -> u32 {
    (0..32)
        .filter(|i| v >> i & 1 == 1)
        .fold(0, |acc, i| acc ^ columns[i])
}

impl Affine {
    fn identity() -> Self {
        Self {
            columns: std::array::from_fn(|i| 1 << i),
            constant: 0,
        }
    }

    /// One CRC step on `byte`: the table is linear, so `step(s, b) = step(s, 0) ⊕ step(0, b)`.
    fn byte(byte: u8) -> Self {
        Self {
            columns: std::array::from_fn(|i| crc_step(1 << i, 0)),
            constant: crc_step(0, byte),
        }
    }

    fn apply(&self, state: u32) -> u32 {
        multiply(&self.columns, state) ^ self.constant
    }

    /// `self`, then `next`.
    fn then(&self, next: &Self) -> Self {
        Self {
            columns: std::array::from_fn(|i| multiply(&next.columns, self.columns[i])),
            constant: next.apply(self.constant),
        }
    }
}

/// The container around one entry: local header, the data as given, then the data descriptor,
/// central directory and end record. The entry is dated the feed's date at midnight, never "now",
/// so the same feed is the same bytes.
pub struct ZipOut<W: Write> {
    out: W,
    name: Vec<u8>,
    dos_date: u16,
    compressed: u64,
}

/// Little-endian fields, appended.
fn le(buf: &mut Vec<u8>, fields: &[(u32, usize)]) {
    for &(value, width) in fields {
        buf.extend_from_slice(&value.to_le_bytes()[..width]);
    }
}

fn too_large() -> io::Error {
    io::Error::other("the zip entry passed the 4 GiB a zip without zip64 can describe")
}

impl<W: Write> ZipOut<W> {
    pub fn begin(mut out: W, name: &str, date: NaiveDate) -> io::Result<Self> {
        let year = date.year().clamp(1980, 2107);
        let dos_date = ((year - 1980) as u16) << 9 | (date.month() as u16) << 5 | date.day() as u16;
        let name = name.as_bytes().to_vec();
        let mut header = Vec::with_capacity(30 + name.len());
        le(
            &mut header,
            &[
                (0x0403_4B50, 4),
                (VERSION.into(), 2),
                (FLAG_DATA_DESCRIPTOR.into(), 2),
                (METHOD_DEFLATE.into(), 2),
                (0, 2),
                (dos_date.into(), 2),
                (0, 4),
                (0, 4),
                (0, 4),
                (name.len() as u32, 2),
                (0, 2),
            ],
        );
        header.extend_from_slice(&name);
        out.write_all(&header)?;
        Ok(Self {
            out,
            name,
            dos_date,
            compressed: 0,
        })
    }

    /// Compressed entry data, as it comes.
    pub fn data(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.compressed += bytes.len() as u64;
        Ok(())
    }

    /// Ends the entry whose uncompressed content had `crc` and `size`, and the archive.
    pub fn finish(mut self, crc: u32, size: u64) -> io::Result<W> {
        let compressed = u32::try_from(self.compressed).map_err(|_| too_large())?;
        let size = u32::try_from(size).map_err(|_| too_large())?;
        let header_len = 30 + self.name.len() as u32;
        let central_offset = header_len
            .checked_add(compressed)
            .and_then(|n| n.checked_add(16))
            .ok_or_else(too_large)?;
        let mut tail = Vec::with_capacity(16 + 46 + self.name.len() + 22);
        le(
            &mut tail,
            &[(0x0807_4B50, 4), (crc, 4), (compressed, 4), (size, 4)],
        );
        le(
            &mut tail,
            &[
                (0x0201_4B50, 4),
                // Made by: Unix (3), so the external attributes below are read as a mode.
                ((3 << 8 | VERSION).into(), 2),
                (VERSION.into(), 2),
                (FLAG_DATA_DESCRIPTOR.into(), 2),
                (METHOD_DEFLATE.into(), 2),
                (0, 2),
                (self.dos_date.into(), 2),
                (crc, 4),
                (compressed, 4),
                (size, 4),
                (self.name.len() as u32, 2),
                (0, 2),
                (0, 2),
                (0, 2),
                (0, 2),
                (0o100_644 << 16, 4),
                (0, 4),
            ],
        );
        tail.extend_from_slice(&self.name);
        let central_size = 46 + self.name.len() as u32;
        le(
            &mut tail,
            &[
                (0x0605_4B50, 4),
                (0, 2),
                (0, 2),
                (1, 2),
                (1, 2),
                (central_size, 4),
                (central_offset, 4),
                (0, 2),
            ],
        );
        self.out.write_all(&tail)?;
        Ok(self.out)
    }
}

/// The seekable target `zip`'s writer needs: it pretends to be a file, passes on what `zip` writes
/// between the end of its local header (`data` turns true) and its first seek backwards (to patch
/// that header, once the compressor has flushed), and drops everything else — except the patch
/// itself: the CRC-32 and sizes at offsets 14..26 of the header (the zip format's layout), so the
/// checksum is `zip`'s fast one instead of a second pass here.
struct Capture<'z, W: Write> {
    zip: &'z mut ZipOut<W>,
    data: Rc<Cell<bool>>,
    done: bool,
    position: u64,
    end: u64,
    patch: [u8; 12],
}

impl<W: Write> Write for Capture<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.done {
            for (at, byte) in (self.position..).zip(buf) {
                if let Some(slot) = at
                    .checked_sub(14)
                    .and_then(|i| self.patch.get_mut(i as usize))
                {
                    *slot = *byte;
                }
            }
        } else if self.data.get() {
            self.zip.data(buf)?;
        }
        self.position += buf.len() as u64;
        self.end = self.end.max(self.position);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Seek for Capture<'_, W> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.position.checked_add_signed(d),
            SeekFrom::End(d) => self.end.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))?;
        if target < self.position && self.data.get() {
            self.done = true;
        }
        self.position = target;
        Ok(target)
    }
}

fn zip_error(error: zip::result::ZipError) -> io::Error {
    match error {
        zip::result::ZipError::Io(error) => error,
        other => io::Error::other(other),
    }
}

/// The uncompressed side: counts what the CSV writer hands the compressor.
struct Deflating<'z, W: Write> {
    zip: zip::ZipWriter<Capture<'z, W>>,
    size: u64,
}

impl<W: Write> Write for Deflating<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.zip.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A zip holding one deflated entry `name` whose content `body` writes.
pub fn write_deflated<W: Write>(
    out: W,
    name: &str,
    date: NaiveDate,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<W> {
    let mut zip = ZipOut::begin(out, name, date)?;
    let data = Rc::new(Cell::new(false));
    let (patch, size) = {
        let capture = Capture {
            zip: &mut zip,
            data: Rc::clone(&data),
            done: false,
            position: 0,
            end: 0,
            patch: [0; 12],
        };
        let mut writer = zip::ZipWriter::new(capture);
        // Level 1: ten times faster than the default for a third more bytes; a feed of twenty
        // million rows must not make the sandbox the slow end of an import benchmark.
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(1));
        writer.start_file("entry", options).map_err(zip_error)?;
        data.set(true);
        let mut deflating = Deflating {
            zip: writer,
            size: 0,
        };
        body(&mut deflating)?;
        let capture = deflating.zip.finish().map_err(zip_error)?;
        (capture.patch, deflating.size)
    };
    let field = |i: usize| u32::from_le_bytes([patch[i], patch[i + 1], patch[i + 2], patch[i + 3]]);
    // `zip` always patches its header at the end; should it ever stop (or write it elsewhere), its
    // sizes will not be ours, and a broken archive must not go out as a good one.
    if u64::from(field(4)) != zip.compressed || u64::from(field(8)) != size {
        return Err(io::Error::other(
            "the zip writer's entry header does not match the data it wrote",
        ));
    }
    zip.finish(field(0), size)
}

/// Bits packed least significant first, as deflate wants them.
struct Bits<'z, W: Write> {
    zip: &'z mut ZipOut<W>,
    acc: u64,
    count: u32,
    buf: Vec<u8>,
}

impl<W: Write> Bits<'_, W> {
    fn push(&mut self, value: u32, count: u32) -> io::Result<()> {
        self.acc |= u64::from(value) << self.count;
        self.count += count;
        while self.count >= 8 {
            self.buf.push(self.acc as u8);
            self.acc >>= 8;
            self.count -= 8;
        }
        if self.buf.len() >= 64 * 1024 {
            self.zip.data(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        if self.count > 0 {
            self.buf.push(self.acc as u8);
        }
        self.zip.data(&self.buf)
    }
}

/// Order in which deflate lists the code-length code's lengths (RFC 1951 §3.2.7).
const CODE_LENGTH_ORDER: [u32; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// Matches in the bomb: 258 bytes each, a gigabyte in all (under zip's 4 GiB without zip64).
pub const BOMB_MATCHES: u64 = (1 << 30) / 258;

/// A zip whose one entry, `header` followed by `258 × matches` newlines, inflates about 1030-fold:
/// deflate's ceiling, reached by a block whose only codes are "copy 258 bytes from 1 back" and
/// "end of block", one bit each. The sizes in the headers are the true ones.
pub fn write_bomb<W: Write>(
    out: W,
    name: &str,
    date: NaiveDate,
    header: &str,
    matches: u64,
) -> io::Result<W> {
    let mut zip = ZipOut::begin(out, name, date)?;
    // Block 1, stored and not final: the header line, whose last byte ('\n') the run copies.
    let len = u16::try_from(header.len()).map_err(|_| io::Error::other("header too long"))?;
    zip.data(&[0])?;
    zip.data(&len.to_le_bytes())?;
    zip.data(&(!len).to_le_bytes())?;
    zip.data(header.as_bytes())?;
    // Block 2, final, dynamic Huffman codes.
    let mut bits = Bits {
        zip: &mut zip,
        acc: 0,
        count: 0,
        buf: Vec::with_capacity(64 * 1024 + 8),
    };
    bits.push(1, 1)?; // BFINAL
    bits.push(2, 2)?; // BTYPE: dynamic
    bits.push(286 - 257, 5)?; // literal/length codes up to 285 (length 258)
    bits.push(2 - 1, 5)?; // two distance codes (0 and 1) of one bit each: a complete code
    bits.push(18 - 4, 4)?; // code-length code lengths, in CODE_LENGTH_ORDER up to symbol 1
    for symbol in &CODE_LENGTH_ORDER[..18] {
        bits.push(u32::from(*symbol == 1 || *symbol == 18), 3)?;
    }
    // The 288 code lengths, with the code-length code {1: "0", 18: "1"}: 256 zeros (literals),
    // 1 (end of block), 28 zeros (lengths 3..=257), 1 (length 258), 1 and 1 (distances 1 and 2).
    // Symbol 18 repeats a zero 11 + (7 extra bits) times.
    for (symbol, extra) in [
        (18, 138),
        (18, 118),
        (1, 0),
        (18, 28),
        (1, 0),
        (1, 0),
        (1, 0),
    ] {
        if symbol == 18 {
            bits.push(1, 1)?;
            bits.push(extra - 11, 7)?;
        } else {
            bits.push(0, 1)?;
        }
    }
    // Canonical codes: end of block "0", length 258 "1"; distance 1 "0". A match is the bits 1, 0.
    for _ in 0..matches / 16 {
        bits.push(0x5555_5555, 32)?;
    }
    for _ in 0..matches % 16 {
        bits.push(0b01, 2)?;
    }
    bits.push(0, 1)?; // end of block
    bits.finish()?;
    let mut crc = Crc32::new();
    crc.update(header.as_bytes());
    crc.update_run(b'\n', 258 * matches);
    zip.finish(crc.value(), header.len() as u64 + 258 * matches)
}

/// What `fault=corrupt_zip` sends: a zip's opening signature, so a reader that sniffs the first
/// bytes takes it for one, then 4 KiB of noise with no directory to find.
pub fn write_not_a_zip(out: &mut dyn Write, seed: &[&str]) -> io::Result<()> {
    let mut rng = SplitMix64::seeded(seed);
    let mut bytes = b"PK\x03\x04".to_vec();
    while bytes.len() < 4096 {
        bytes.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 5, 1).unwrap()
    }

    #[test]
    fn crc_matches_the_standard_check_value_and_runs_match_loops() {
        let mut crc = Crc32::new();
        crc.update(b"123456789");
        assert_eq!(crc.value(), 0xCBF4_3926);
        for (byte, count) in [(b'\n', 0u64), (b'a', 1), (0, 1000), (0xFF, 4097)] {
            let mut run = Crc32::new();
            run.update(b"head");
            run.update_run(byte, count);
            let mut looped = Crc32::new();
            looped.update(b"head");
            looped.update(&vec![byte; count as usize]);
            assert_eq!(run.value(), looped.value(), "{byte} x {count}");
        }
    }

    #[test]
    fn a_streamed_zip_reads_back_with_its_crc_checked() {
        let text: String = (0..20_000).map(|i| format!("row {i},x\n")).collect();
        let bytes = write_deflated(Vec::new(), "feed.csv", date(), |w| {
            for piece in text.as_bytes().chunks(7_777) {
                w.write_all(piece)?;
            }
            Ok(())
        })
        .unwrap();
        assert!(bytes.len() < text.len() / 3, "it is compressed");
        let mut archive = zip::ZipArchive::new(io::Cursor::new(&bytes)).unwrap();
        assert_eq!(archive.len(), 1);
        let mut file = archive.by_index(0).unwrap();
        assert_eq!(file.name(), "feed.csv");
        assert_eq!(file.size(), text.len() as u64);
        let mut back = String::new();
        file.read_to_string(&mut back).unwrap();
        assert_eq!(back, text);
        let empty = write_deflated(Vec::new(), "e.csv", date(), |_| Ok(())).unwrap();
        let mut archive = zip::ZipArchive::new(io::Cursor::new(&empty)).unwrap();
        assert_eq!(archive.by_index(0).unwrap().size(), 0);
    }

    #[test]
    fn a_small_bomb_inflates_to_exactly_what_it_claims() {
        for matches in [0u64, 1, 15, 16, 17, 1000] {
            let bytes = write_bomb(Vec::new(), "b.csv", date(), "a,b\n", matches).unwrap();
            let mut archive = zip::ZipArchive::new(io::Cursor::new(&bytes)).unwrap();
            let mut file = archive.by_index(0).unwrap();
            let mut back = Vec::new();
            // Reading to the end checks the CRC.
            file.read_to_end(&mut back).unwrap();
            assert_eq!(back.len() as u64, 4 + 258 * matches);
            assert!(back.starts_with(b"a,b\n"));
            assert!(back[4..].iter().all(|&b| b == b'\n'));
        }
    }

    #[test]
    fn noise_is_not_a_zip() {
        let mut bytes = Vec::new();
        write_not_a_zip(&mut bytes, &["x"]).unwrap();
        assert!(bytes.starts_with(b"PK"));
        assert!(zip::ZipArchive::new(io::Cursor::new(&bytes)).is_err());
    }
}
