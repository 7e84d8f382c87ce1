//! Reading pairs from TSV, CSV and JSONL files into a [`Builder`].
//!
//! TSV and JSONL are split at line boundaries into chunks parsed on all
//! cores; CSV (whose quoted fields may hold newlines) is parsed in one
//! stream by the `csv` crate. Fields become stored bytes through the
//! store's codecs: "bytes" and "str" keep the text (str checks UTF-8),
//! "int" parses a signed 64-bit integer, "json" stores canonical JSON.

use super::build::{encode_pair, Builder};
use super::lines::MappedTsv;
use crate::error::{Error, IoContext, Result};
use rayon::prelude::*;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Tsv,
    Csv,
    Jsonl,
}

/// Which column (or JSON field) holds the key or the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Column {
    Index(usize),
    Name(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldCodec {
    Bytes,
    Str,
    Int,
    Json,
}

impl FieldCodec {
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "bytes" => FieldCodec::Bytes,
            "str" => FieldCodec::Str,
            "int" => FieldCodec::Int,
            "json" => FieldCodec::Json,
            other => {
                return Err(Error::Invalid(format!(
                    "the {other:?} codec cannot be read from a file; use \"bytes\", \"str\", \"int\" or \"json\", or pass Python objects"
                )))
            }
        })
    }
}

#[derive(Clone, Debug)]
pub struct FileSource {
    pub path: PathBuf,
    pub format: FileFormat,
    /// Field separator for TSV and CSV.
    pub delimiter: u8,
    /// The first line names the columns (TSV and CSV).
    pub header: bool,
    pub key: Column,
    pub value: Column,
    pub key_codec: FieldCodec,
    pub value_codec: FieldCodec,
    /// Skip bad lines (counting them) instead of failing.
    pub skip_errors: bool,
}

impl FileSource {
    /// Defaults for a format: first and second column, or the fields
    /// "key" and "value" of each JSON object.
    pub fn new(path: &Path, format: FileFormat) -> Self {
        let (key, value) = match format {
            FileFormat::Jsonl => (Column::Name("key".into()), Column::Name("value".into())),
            _ => (Column::Index(0), Column::Index(1)),
        };
        FileSource {
            path: path.to_path_buf(),
            format,
            delimiter: if format == FileFormat::Csv {
                b','
            } else {
                b'\t'
            },
            header: false,
            key,
            value,
            key_codec: FieldCodec::Bytes,
            value_codec: FieldCodec::Bytes,
            skip_errors: false,
        }
    }
}

/// What reading a file did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    pub pairs: u64,
    pub skipped: u64,
    /// The pairs were read where they lie in a mapping of the file (see
    /// [`super::lines`]) rather than copied into memory.
    pub read_in_place: bool,
}

/// Bytes of input parsed per chunk, per thread.
const CHUNK: usize = 8 << 20;

/// Parse `src` into `builder`; `bytes_done` counts input bytes consumed.
pub fn add_file(
    builder: &mut Builder,
    src: &FileSource,
    bytes_done: &AtomicU64,
) -> Result<FileStats> {
    let file = crate::files::open_existing(&src.path)?;
    if src.format == FileFormat::Csv {
        return add_csv(builder, src, file, bytes_done);
    }
    if MappedTsv::applies(src) && builder.is_empty() {
        let before = bytes_done.load(Ordering::Relaxed);
        let limit = builder.pairs_limit();
        if let Some(p) = super::lines::parse(src, &file, limit, bytes_done, builder.options())? {
            let stats = FileStats {
                pairs: p.entries.len() as u64,
                skipped: p.skipped,
                read_in_place: true,
            };
            builder.use_lines(p.lines, p.entries);
            return Ok(stats);
        }
        // Too large to hold mapped: read it into the arena from the start.
        bytes_done.store(before, Ordering::Relaxed);
    }
    // Otherwise read (not mapped), so the input's pages never count as the
    // build's memory; blocks of whole lines are parsed on all cores.
    let threads = rayon::current_num_threads().max(1);
    let block = CHUNK * threads * 2;
    let mut file = file;
    let mut buf: Vec<u8> = Vec::new();
    let mut want = block;
    let mut line_no = 0u64;
    let mut stats = FileStats::default();
    let mut columns: Option<(usize, usize)> = None;
    let mut first_block = true;
    loop {
        let eof = fill(&mut file, &mut buf, want).at(&src.path)?;
        let end = match memchr::memrchr(b'\n', &buf) {
            _ if eof => buf.len(),
            Some(e) => e + 1,
            None => {
                // One line longer than a block: read more of it.
                want = buf.len() * 2;
                continue;
            }
        };
        want = block;
        let mut data = &buf[..end];
        if first_block && src.format == FileFormat::Tsv {
            let (cols, header_len) = tsv_columns(data, src)?;
            columns = Some(cols);
            if header_len > 0 {
                data = &data[header_len..];
                line_no = 1;
                bytes_done.fetch_add(header_len as u64, Ordering::Relaxed);
            }
        }
        first_block = false;
        let mut chunks = Vec::with_capacity(threads * 2);
        let mut at = 0;
        while at < data.len() {
            let cut = chunk_end(data, at);
            chunks.push(&data[at..cut]);
            at = cut;
        }
        let parsed: Vec<Parsed> = chunks
            .par_iter()
            .map(|c| parse_chunk(c, src, columns))
            .collect();
        for p in parsed {
            if let Some((line, reason)) = p.error {
                return Err(Error::Input {
                    path: src.path.clone(),
                    line: line_no + line,
                    reason,
                });
            }
            builder.add_encoded(p.records, p.pairs)?;
            stats.pairs += p.pairs;
            stats.skipped += p.skipped;
            line_no += p.lines;
            bytes_done.fetch_add(p.bytes, Ordering::Relaxed);
        }
        buf.drain(..end);
        if eof && buf.is_empty() {
            return Ok(stats);
        }
    }
}

/// The end of the chunk of whole lines that starts at `at` of `data`: the
/// end of the line running past [`CHUNK`] bytes on, or of the data.
pub(super) fn chunk_end(data: &[u8], at: usize) -> usize {
    let cut = (at + CHUNK).min(data.len());
    memchr::memchr(b'\n', &data[cut..]).map_or(data.len(), |e| cut + e + 1)
}

/// Each line of `chunk` with its offset, without its line ending (empty
/// lines included, so that callers count them).
pub(super) fn lines(chunk: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        (at < chunk.len()).then(|| {
            let end = memchr::memchr(b'\n', &chunk[at..]).map_or(chunk.len(), |e| at + e + 1);
            let line = (at, trim_eol(&chunk[at..end]));
            at = end;
            line
        })
    })
}

/// The key and value columns of a TSV file from its first line, and the
/// bytes of that line if it is a header to skip (0 otherwise).
pub(super) fn tsv_columns(data: &[u8], src: &FileSource) -> Result<((usize, usize), usize)> {
    let first_end = memchr::memchr(b'\n', data).map_or(data.len(), |e| e + 1);
    let names: Vec<&[u8]> = trim_eol(&data[..first_end])
        .split(|&b| b == src.delimiter)
        .collect();
    let columns = (
        column_index(&src.key, &names, src.header, &src.path)?,
        column_index(&src.value, &names, src.header, &src.path)?,
    );
    Ok((columns, if src.header { first_end } else { 0 }))
}

/// Read into `buf` until it holds `want` bytes or the input ends; true at
/// the end of the input.
fn fill(r: &mut impl std::io::Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    while buf.len() < want {
        let have = buf.len();
        buf.resize(want, 0);
        match r.read(&mut buf[have..]) {
            Ok(0) => {
                buf.truncate(have);
                return Ok(true);
            }
            Ok(n) => buf.truncate(have + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(have),
            Err(e) => {
                buf.truncate(have);
                return Err(e);
            }
        }
    }
    Ok(false)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn column_index(col: &Column, names: &[&[u8]], header: bool, path: &Path) -> Result<usize> {
    match col {
        Column::Index(i) => Ok(*i),
        Column::Name(n) if header => {
            names
                .iter()
                .position(|h| *h == n.as_bytes())
                .ok_or_else(|| Error::Input {
                    path: path.to_path_buf(),
                    line: 1,
                    reason: format!("no column named {n:?} in the header"),
                })
        }
        Column::Name(n) => Err(Error::Invalid(format!(
            "column {n:?} is named, but the file has no header; pass header=True or a column number"
        ))),
    }
}

/// One chunk's pairs, encoded as the builder's arena records.
#[derive(Default)]
struct Parsed {
    records: Vec<u8>,
    pairs: u64,
    skipped: u64,
    lines: u64,
    bytes: u64,
    /// First bad line (1-based within the chunk) and why.
    error: Option<(u64, String)>,
}

fn parse_chunk(chunk: &[u8], src: &FileSource, columns: Option<(usize, usize)>) -> Parsed {
    let mut p = Parsed {
        records: super::arena::record_buffer(chunk.len() + chunk.len() / 16),
        bytes: chunk.len() as u64,
        ..Parsed::default()
    };
    for (_, line) in lines(chunk) {
        p.lines += 1;
        if line.is_empty() {
            continue;
        }
        let pair = match (src.format, columns) {
            (FileFormat::Jsonl, _) => json_pair(line, src),
            (_, Some((k, v))) => tsv_pair(line, src, k, v),
            _ => Err("no columns chosen".to_string()),
        };
        match pair {
            Ok((k, v)) => {
                encode_pair(&mut p.records, &k, &v);
                p.pairs += 1;
            }
            Err(_) if src.skip_errors => p.skipped += 1,
            Err(reason) => {
                p.error = Some((p.lines, reason));
                return p;
            }
        }
    }
    p
}

type Pair<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

pub(super) fn tsv_pair<'a>(
    line: &'a [u8],
    src: &FileSource,
    k: usize,
    v: usize,
) -> std::result::Result<Pair<'a>, String> {
    let (key, value) = split_fields(line, src.delimiter, k, v)
        .map_err(|have| format!("{have} column(s), need at least {}", k.max(v) + 1))?;
    Ok((
        convert_text(key, src.key_codec, "key")?,
        convert_text(value, src.value_codec, "value")?,
    ))
}

/// Fields `k` and `v` of a line; `Err(n)` when it has only `n` fields.
pub(super) fn split_fields(
    line: &[u8],
    delimiter: u8,
    k: usize,
    v: usize,
) -> std::result::Result<(&[u8], &[u8]), usize> {
    let want = k.max(v) + 1;
    let mut fields: [&[u8]; 2] = [b"", b""];
    let mut start = 0;
    // Only the fields up to the last one wanted are looked at.
    for i in 0..want {
        let end = match memchr::memchr(delimiter, &line[start..]) {
            Some(e) => start + e,
            None if i + 1 == want => line.len(),
            None => return Err(i + 1),
        };
        if i == k {
            fields[0] = &line[start..end];
        }
        if i == v {
            fields[1] = &line[start..end];
        }
        start = end + 1;
    }
    Ok((fields[0], fields[1]))
}

/// Stored bytes of a text field under a codec.
fn convert_text<'a>(
    text: &'a [u8],
    codec: FieldCodec,
    what: &str,
) -> std::result::Result<Cow<'a, [u8]>, String> {
    match codec {
        FieldCodec::Bytes => Ok(Cow::Borrowed(text)),
        FieldCodec::Str => std::str::from_utf8(text)
            .map(|_| Cow::Borrowed(text))
            .map_err(|e| format!("{what} is not valid UTF-8 ({e})")),
        FieldCodec::Int => std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .map(|i| Cow::Owned(i.to_le_bytes().to_vec()))
            .ok_or_else(|| {
                format!(
                    "{what} {:?} is not a 64-bit integer",
                    String::from_utf8_lossy(text)
                )
            }),
        FieldCodec::Json => {
            let v: serde_json::Value = serde_json::from_slice(text)
                .map_err(|e| format!("{what} is not valid JSON ({e})"))?;
            Ok(Cow::Owned(canonical_json(&v)))
        }
    }
}

/// The JSON text the Python json codec writes for the same value
/// (sorted keys, no spaces).
fn canonical_json(v: &serde_json::Value) -> Vec<u8> {
    // serde_json's map is ordered by key and it writes no spaces.
    serde_json::to_vec(v).unwrap_or_default()
}

fn json_pair<'a>(line: &'a [u8], src: &FileSource) -> std::result::Result<Pair<'a>, String> {
    let obj: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("not valid JSON ({e})"))?;
    let field = |c: &Column| -> std::result::Result<serde_json::Value, String> {
        let found = match c {
            Column::Name(n) => obj.get(n.as_str()),
            Column::Index(i) => obj.get(*i),
        };
        found.cloned().ok_or_else(|| match c {
            Column::Name(n) => format!("no field {n:?}"),
            Column::Index(i) => format!("no element {i}"),
        })
    };
    Ok((
        convert_json(field(&src.key)?, src.key_codec, "key")?,
        convert_json(field(&src.value)?, src.value_codec, "value")?,
    ))
}

fn convert_json(
    v: serde_json::Value,
    codec: FieldCodec,
    what: &str,
) -> std::result::Result<Cow<'static, [u8]>, String> {
    match (codec, v) {
        (FieldCodec::Json, v) => Ok(Cow::Owned(canonical_json(&v))),
        (FieldCodec::Bytes | FieldCodec::Str, serde_json::Value::String(s)) => {
            Ok(Cow::Owned(s.into_bytes()))
        }
        (FieldCodec::Int, serde_json::Value::Number(n)) => n
            .as_i64()
            .map(|i| Cow::Owned(i.to_le_bytes().to_vec()))
            .ok_or_else(|| format!("{what} {n} is not a 64-bit integer")),
        (FieldCodec::Int, serde_json::Value::String(s)) => {
            convert_text(s.as_bytes(), FieldCodec::Int, what).map(|c| Cow::Owned(c.into_owned()))
        }
        (_, other) => Err(format!(
            "{what} is {other}, not a string; use the \"json\" codec to store any JSON"
        )),
    }
}

fn add_csv(
    builder: &mut Builder,
    src: &FileSource,
    file: std::fs::File,
    bytes_done: &AtomicU64,
) -> Result<FileStats> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(src.delimiter)
        .has_headers(src.header)
        .flexible(true)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let input_err = |line: u64, reason: String| Error::Input {
        path: src.path.clone(),
        line,
        reason,
    };
    let (k, v) = if src.header {
        let names: Vec<Vec<u8>> = rdr
            .byte_headers()
            .map_err(|e| input_err(1, e.to_string()))?
            .iter()
            .map(|h| h.to_vec())
            .collect();
        let names: Vec<&[u8]> = names.iter().map(|n| &n[..]).collect();
        (
            column_index(&src.key, &names, true, &src.path)?,
            column_index(&src.value, &names, true, &src.path)?,
        )
    } else {
        (
            column_index(&src.key, &[], false, &src.path)?,
            column_index(&src.value, &[], false, &src.path)?,
        )
    };
    let mut stats = FileStats::default();
    let mut record = csv::ByteRecord::new();
    let mut batch = Vec::new();
    let mut in_batch = 0u64;
    let mut last_pos = 0u64;
    loop {
        let more = match rdr.read_byte_record(&mut record) {
            Ok(more) => more,
            // With byte records and flexible rows, only reading can fail.
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(input_err(line, e.to_string()));
            }
        };
        if !more {
            break;
        }
        let line = record.position().map_or(0, |p| p.line());
        let pair = match (record.get(k), record.get(v)) {
            (Some(kf), Some(vf)) => convert_text(kf, src.key_codec, "key").and_then(|kc| {
                Ok((
                    kc.into_owned(),
                    convert_text(vf, src.value_codec, "value")?.into_owned(),
                ))
            }),
            _ => Err(format!(
                "{} column(s), need at least {}",
                record.len(),
                k.max(v) + 1
            )),
        };
        match pair {
            Ok((kb, vb)) => {
                encode_pair(&mut batch, &kb, &vb);
                in_batch += 1;
            }
            Err(_) if src.skip_errors => stats.skipped += 1,
            Err(reason) => return Err(input_err(line, reason)),
        }
        if batch.len() >= 1 << 20 {
            builder.add_encoded(std::mem::take(&mut batch), in_batch)?;
            stats.pairs += in_batch;
            in_batch = 0;
            let pos = record.position().map_or(last_pos, |p| p.byte());
            bytes_done.fetch_add(pos - last_pos, Ordering::Relaxed);
            last_pos = pos;
        }
    }
    builder.add_encoded(batch, in_batch)?;
    stats.pairs += in_batch;
    Ok(stats)
}
