//! The CSV dialect of our Stream Loads, and the encoder that writes Arrow rows in it.
//!
//! Stream Load takes CSV or JSON, not Parquet, and JSON bodies are buffered whole by the BE (100
//! MB cap), so bulk loads are CSV. The dialect follows what StarRocks' BE source does with a CSV
//! field, which is also what our StarRocks test double implements (tests/doubles/src/starrocks/csv.rs
//! and types.rs, from an independent reading of the same source):
//!
//! * `column_separator` `,` and `row_delimiter` `\n` (sent as `\x0A`, the hex form StarRocks'
//!   `Delimiter.convertDelimiter` has always accepted, since a header cannot hold a newline):
//!   every string is enclosed, so separators inside values need no other care and `,` keeps rows
//!   readable in StarRocks' error logs (ErrorURL).
//! * `enclose` `"` and `escape` `\` (StarRocks 3.0+): strings are always written `"..."` with `"`
//!   and `\` escaped by `\`; tabs, newlines, commas and NUL bytes stay as they are inside the
//!   quotes. Setting `escape` explicitly also matters because, when it is unset, StarRocks' reader
//!   (`be/src/formats/csv/csv_reader.cpp`) compares bytes against escape character 0, so a NUL
//!   byte in a value would act as an escape.
//! * NULL is written `\\N`: unenclosed, three bytes (backslash, backslash, `N`). The reader
//!   (`formats/csv/csv_reader.cpp` `more_rows`, `exec/csv_scanner.cpp` `_parse_csv_v2`) first
//!   splits and unescapes a field, and only then does `formats/csv/nullable_converter.cpp`
//!   compare it with `\N`, enclosed or not: `\\N` unescapes to `\N` and is NULL, while a bare
//!   `\N` unescapes to `N` and would load as the string `N`.
//! * For the same reason the two-character string `\N` cannot be loaded at all: however it is
//!   written, it unescapes to `\N` and reads as NULL. The encoder refuses it, naming the table
//!   and column, rather than load a NULL in its place. Every other string loads as itself (`N`,
//!   `\\N`, `x\N`, ...).
//! * Binary values are standard padded base64 ([`base64_into`]), unenclosed:
//!   `formats/csv/varbinary_converter.cpp` base64-decodes VARBINARY fields (leniently, with
//!   `util/url_coding.cpp`, after skipping leading whitespace) and keeps the raw bytes of a field
//!   that does not decode, so hex would load as its ASCII text. Base64 holds no separator,
//!   enclose or escape byte. An empty value is written `""` (an enclosed empty field, read as
//!   empty): an unenclosed empty field would make the row of a one-column table an empty line,
//!   which the reader skips.
//! * Booleans `1`/`0`; integers and decimals in plain digits; floats in the shortest text that
//!   reads back to the same value; dates `YYYY-MM-DD`; timestamps `YYYY-MM-DD HH:MM:SS.ffffff`
//!   (a `timestamptz` as its UTC wall time). Values StarRocks cannot hold (dates outside
//!   0000-01-01..9999-12-31, NaN and infinities, strings over 1 MiB, the string `\N`) fail here,
//!   naming the table, column and value, rather than being filtered or altered by StarRocks.
//!
//! **This deviates on purpose from the documented contract.** StarRocks' Stream Load docs, and
//! after them docs/reference/starrocks.md and docs/reference/type-mapping.md, say NULL is
//! `\N` and VARBINARY is hex in CSV. Two independent readings of the BE source (ours, and the
//! test double's) agree that with `escape` `\` the reader does what is described above, and the
//! source is what runs, so we follow it. A StarRocks version whose reader differs (e.g. one that
//! compares with `\N` before unescaping, or decodes hex) would load NULLs as `\N` strings or
//! binaries as their base64 text: `verify = "full"` reads the rows back and fails loudly on
//! any such difference, so a load to a new version should be checked with it.

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::model::TableInfo;
use crate::model::cells::Cells;
use crate::model::codec::decimal_text;

use super::ddl::{self, MAX_VARCHAR_BYTES};
use super::names;

pub const COLUMN_SEPARATOR: u8 = b',';
pub const ROW_DELIMITER: u8 = b'\n';
pub const ENCLOSE: u8 = b'"';
pub const ESCAPE: u8 = b'\\';
/// A NULL field: `\\N`, unenclosed (the reader unescapes it to `\N`, which is NULL).
pub const NULL_FIELD: &[u8] = b"\\\\N";

/// The Stream Load headers that select this dialect.
pub fn headers() -> Vec<(&'static str, String)> {
    vec![
        ("format", "csv".to_string()),
        ("column_separator", ",".to_string()),
        ("row_delimiter", "\\x0A".to_string()),
        ("enclose", "\"".to_string()),
        ("escape", "\\".to_string()),
    ]
}

/// The `columns` header: the StarRocks names of the table's columns in the order
/// [`CsvEncoder::encode_row`] writes them, backquoted (`id`, `date`, ... may be reserved words).
pub fn columns_header(info: &TableInfo) -> Result<String> {
    Ok(names::column_names(info)?
        .iter()
        .map(|n| ddl::quote_ident(n))
        .collect::<Vec<_>>()
        .join(","))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard padded base64 of `bytes`, appended to `out`: VARBINARY values in the CSV dialect,
/// and HTTP Basic auth (stream_load.rs).
pub(crate) fn base64_into(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(B64[(n >> 18) as usize & 63]);
        out.push(B64[(n >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 {
            B64[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            B64[n as usize & 63]
        } else {
            b'='
        });
    }
}

/// Writes rows of one table in the dialect above. Reusable across batches of the same table.
#[derive(Debug, Clone)]
pub struct CsvEncoder {
    table: String,
    columns: Vec<String>,
    /// Largest value in bytes StarRocks' column holds (strings and binaries).
    limits: Vec<Option<usize>>,
    scratch: String,
}

/// Days from 0001-01-01 (chrono's day 1 is CE day 1) to 1970-01-01.
const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

impl CsvEncoder {
    pub fn new(info: &TableInfo) -> Self {
        CsvEncoder {
            table: info.name.clone(),
            columns: info.columns.iter().map(|c| c.name.clone()).collect(),
            limits: (0..info.columns.len())
                .map(|i| ddl::byte_limit(info, i).map(|l| l as usize))
                .collect(),
            scratch: String::new(),
        }
    }

    fn bad(&self, i: usize, what: String) -> Error {
        Error::data(format!(
            "table {}: column {}: {what}",
            self.table, self.columns[i]
        ))
    }

    /// Appends row `row` of `cols` (the table's columns, in order) to `out`, ending with the row
    /// delimiter. On error nothing is appended.
    pub fn encode_row(&mut self, cols: &[Cells<'_>], row: usize, out: &mut Vec<u8>) -> Result<()> {
        if cols.len() != self.columns.len() {
            return Err(Error::internal(format!(
                "table {}: {} columns in the batch, {} in the table",
                self.table,
                cols.len(),
                self.columns.len()
            )));
        }
        let start = out.len();
        let r = self.encode_fields(cols, row, out);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn encode_fields(&mut self, cols: &[Cells<'_>], row: usize, out: &mut Vec<u8>) -> Result<()> {
        for (i, cells) in cols.iter().enumerate() {
            if i > 0 {
                out.push(COLUMN_SEPARATOR);
            }
            if cells.is_null(row) {
                out.extend_from_slice(NULL_FIELD);
                continue;
            }
            self.scratch.clear();
            match cells {
                Cells::Bool(a) => out.push(if a.value(row) { b'1' } else { b'0' }),
                Cells::I32(a) => self.text(out, format_args!("{}", a.value(row))),
                Cells::I64(a) => self.text(out, format_args!("{}", a.value(row))),
                Cells::F32(a) => self.float(i, a.value(row), out)?,
                Cells::F64(a) => self.float(i, a.value(row), out)?,
                Cells::Dec(a, scale) => {
                    let v = a.value(row);
                    if *scale >= 0 {
                        out.extend_from_slice(decimal_text(v, *scale).as_bytes());
                    } else if v == 0 {
                        out.push(b'0');
                    } else {
                        let zeros = "0".repeat(usize::from(scale.unsigned_abs()));
                        self.text(out, format_args!("{v}{zeros}"));
                    }
                }
                Cells::Date(a) => {
                    let days = a.value(row);
                    let d = days
                        .checked_add(UNIX_EPOCH_CE_DAYS)
                        .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
                        .filter(|d| (0..=9999).contains(&chrono::Datelike::year(d)))
                        .ok_or_else(|| {
                            self.bad(
                                i,
                                format!(
                                    "date {} (day {days} from 1970-01-01) is outside StarRocks' \
                                     DATE range 0000-01-01..9999-12-31",
                                    date_for_message(days)
                                ),
                            )
                        })?;
                    use chrono::Datelike;
                    self.text(
                        out,
                        format_args!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
                    );
                }
                Cells::Ts(a) => {
                    let us = a.value(row);
                    let t = chrono::DateTime::from_timestamp_micros(us)
                        .map(|t| t.naive_utc())
                        .filter(|t| (0..=9999).contains(&chrono::Datelike::year(t)))
                        .ok_or_else(|| {
                            self.bad(
                                i,
                                format!(
                                    "timestamp {} ({us} us from 1970-01-01) is outside \
                                     StarRocks' DATETIME range 0000-01-01..9999-12-31",
                                    chrono::DateTime::from_timestamp_micros(us).map_or_else(
                                        || "out of range".to_string(),
                                        |t| t.naive_utc().to_string()
                                    )
                                ),
                            )
                        })?;
                    use chrono::{Datelike, Timelike};
                    self.text(
                        out,
                        format_args!(
                            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
                            t.year(),
                            t.month(),
                            t.day(),
                            t.hour(),
                            t.minute(),
                            t.second(),
                            t.nanosecond() / 1000
                        ),
                    );
                }
                Cells::Str(a) => self.string(i, a.value(row), out)?,
                Cells::LStr(a) => self.string(i, a.value(row), out)?,
                Cells::Bin(a) => self.binary(i, a.value(row), out)?,
                Cells::LBin(a) => self.binary(i, a.value(row), out)?,
            }
        }
        out.push(ROW_DELIMITER);
        Ok(())
    }

    /// A float in its own width's shortest round-trip text (exponent form outside 1e-5..1e16);
    /// NaN and infinities cannot be stored.
    fn float<F>(&mut self, i: usize, v: F, out: &mut Vec<u8>) -> Result<()>
    where
        F: Copy + Into<f64> + std::fmt::Display + std::fmt::LowerExp,
    {
        let m = v.into().abs();
        if !m.is_finite() {
            return Err(self.bad(i, format!("{v} cannot be stored in StarRocks")));
        }
        if m == 0.0 || (1e-5..1e16).contains(&m) {
            self.text(out, format_args!("{v}"));
        } else {
            self.text(out, format_args!("{v:e}"));
        }
        Ok(())
    }

    fn text(&mut self, out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
        self.scratch.clear();
        // Writing to a String cannot fail.
        let _ = self.scratch.write_fmt(args);
        out.extend_from_slice(self.scratch.as_bytes());
    }

    fn limit(&self, i: usize) -> usize {
        self.limits[i].unwrap_or(MAX_VARCHAR_BYTES as usize)
    }

    fn string(&self, i: usize, s: &str, out: &mut Vec<u8>) -> Result<()> {
        if s.len() > self.limit(i) {
            return Err(self.bad(
                i,
                format!(
                    "a value of {} bytes does not fit StarRocks' VARCHAR({}) (StarRocks holds at \
                     most {MAX_VARCHAR_BYTES} bytes per value); starts {:?}",
                    s.len(),
                    self.limit(i),
                    s.chars().take(40).collect::<String>()
                ),
            ));
        }
        if s.as_bytes() == b"\\N" {
            return Err(self.bad(
                i,
                "the string \\N cannot be loaded through Stream Load CSV: StarRocks reads a \
                 field that unescapes to \\N as NULL, however it is written"
                    .to_string(),
            ));
        }
        out.reserve(s.len() + 2);
        out.push(ENCLOSE);
        for &b in s.as_bytes() {
            if b == ENCLOSE || b == ESCAPE {
                out.push(ESCAPE);
            }
            out.push(b);
        }
        out.push(ENCLOSE);
        Ok(())
    }

    fn binary(&self, i: usize, b: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if b.len() > self.limit(i) {
            return Err(self.bad(
                i,
                format!(
                    "a value of {} bytes does not fit StarRocks' VARBINARY({})",
                    b.len(),
                    self.limit(i)
                ),
            ));
        }
        if b.is_empty() {
            // Enclosed, so that a one-column row is not an empty line (which is skipped).
            out.extend_from_slice(&[ENCLOSE, ENCLOSE]);
        } else {
            base64_into(b, out);
        }
        Ok(())
    }
}

/// `days` from 1970-01-01 as a date for messages, whatever its range.
fn date_for_message(days: i32) -> String {
    i64::from(days)
        .checked_add(i64::from(UNIX_EPOCH_CE_DAYS))
        .and_then(|d| i32::try_from(d).ok())
        .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
        .map_or_else(|| "out of range".to_string(), |d| d.to_string())
}

#[cfg(test)]
mod tests;
