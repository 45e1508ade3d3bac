//! Values across the MySQL wire protocol, both ways.
//!
//! The MySQL/MariaDB target and StarRocks (whose frontend speaks the MySQL protocol) both have to
//! write Arrow values as SQL literals and read table contents back into Arrow for verification.
//! Verification compares [`crate::model::fingerprint::Digest128`]s, so reading back must rebuild exactly
//! the canonical values the lake holds (dates as days, timestamps as microseconds, floats bit for
//! bit): this module is the one place that knows how each server spells them, in the binary
//! protocol (typed values) and in the text protocol (every value as text).

use std::fmt::Write as _;

use mysql_async::Value;

use crate::error::{Error, Result};
use crate::model::ColType;
use crate::model::builders::ColBuilder;
use crate::model::cells::Cells;
use crate::model::codec::{self as reader, decimal_text};

/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Appends one value read back from MySQL, MariaDB or StarRocks to `b`, a builder for `ty`.
///
/// Accepts the binary protocol's typed values and the text protocol's `Value::Bytes` for every
/// type; `table` and `column` only name the place in errors.
pub fn append_value(
    b: &mut ColBuilder,
    ty: ColType,
    v: Value,
    table: &str,
    column: &str,
) -> Result<()> {
    if matches!(v, Value::NULL) {
        b.append_null();
        return Ok(());
    }
    let bad = |why: String| {
        Error::data(format!(
            "table {table}, column {column}: cannot read {} back as {ty}: {why}",
            show(&v)
        ))
    };
    match (b, ty) {
        (ColBuilder::Bool(b), ColType::Bool) => b.append_value(match &v {
            Value::Int(0) | Value::UInt(0) => false,
            Value::Int(1) | Value::UInt(1) => true,
            Value::Bytes(t) => match t.as_slice() {
                b"0" | b"false" | b"FALSE" => false,
                b"1" | b"true" | b"TRUE" => true,
                _ => return Err(bad("not 0, 1, true or false".into())),
            },
            _ => return Err(bad("not 0 or 1".into())),
        }),
        (ColBuilder::I32(b), ColType::Int32) => {
            let i = integer(&v).map_err(&bad)?;
            b.append_value(i32::try_from(i).map_err(|_| bad("out of range for int32".into()))?)
        }
        (ColBuilder::I64(b), ColType::Int64) => {
            let i = integer(&v).map_err(&bad)?;
            b.append_value(i64::try_from(i).map_err(|_| bad("out of range for int64".into()))?)
        }
        (ColBuilder::F32(b), ColType::Float32) => b.append_value(match &v {
            Value::Float(f) => *f,
            // Only when no digit is lost: a double that is not a float32 is a different value.
            Value::Double(d) if (*d as f32) as f64 == *d || d.is_nan() => *d as f32,
            Value::Bytes(t) => text(t)
                .map_err(&bad)?
                .trim()
                .parse::<f32>()
                .map_err(|e| bad(e.to_string()))?,
            _ => return Err(bad("not a float32".into())),
        }),
        (ColBuilder::F64(b), ColType::Float64) => b.append_value(match &v {
            Value::Double(d) => *d,
            Value::Float(f) => f64::from(*f),
            Value::Bytes(t) => text(t)
                .map_err(&bad)?
                .trim()
                .parse::<f64>()
                .map_err(|e| bad(e.to_string()))?,
            _ => return Err(bad("not a float64".into())),
        }),
        (ColBuilder::Dec(b, p, s), ColType::Decimal { .. }) => {
            let (p, s) = (*p, *s);
            let unscaled = match &v {
                Value::Bytes(t) => {
                    reader::parse_decimal(text(t).map_err(&bad)?, p, s).ok_or_else(|| {
                        bad(format!(
                            "not a decimal({p},{s}) value: not a number, more integer digits \
                             than {p} - {s}, or fraction digits more than the scale allows"
                        ))
                    })?
                }
                Value::Int(_) | Value::UInt(_) => {
                    let i = integer(&v).map_err(&bad)?;
                    10i128
                        .checked_pow(s.max(0) as u32)
                        .and_then(|f| i.checked_mul(f))
                        .filter(|u| fits_precision(*u, p))
                        .ok_or_else(|| bad(format!("does not fit decimal({p},{s})")))?
                }
                _ => return Err(bad("not a decimal".into())),
            };
            b.append_value(unscaled)
        }
        (ColBuilder::Date(b), ColType::Date) => b.append_value(match &v {
            Value::Date(y, m, d, 0, 0, 0, 0) => days(i32::from(*y), u32::from(*m), u32::from(*d))
                .ok_or_else(|| bad("not a valid date".into()))?,
            Value::Bytes(t) => reader::parse_date(text(t).map_err(&bad)?.trim())
                .ok_or_else(|| bad("not a valid date (YYYY-MM-DD)".into()))?,
            _ => return Err(bad("not a date".into())),
        }),
        (ColBuilder::Ts(b), ColType::Timestamp | ColType::TimestampTz) => {
            b.append_value(match &v {
                Value::Date(y, mo, d, h, mi, s, us) => {
                    let day = days(i32::from(*y), u32::from(*mo), u32::from(*d))
                        .ok_or_else(|| bad("not a valid date".into()))?;
                    micros(day, u32::from(*h), u32::from(*mi), u32::from(*s), *us)
                        .ok_or_else(|| bad("not a valid time of day".into()))?
                }
                Value::Bytes(t) => reader::parse_timestamp(text(t).map_err(&bad)?.trim())
                    .ok_or_else(|| {
                        bad("not a valid datetime (YYYY-MM-DD HH:MM:SS[.ffffff])".into())
                    })?,
                _ => return Err(bad("not a datetime".into())),
            })
        }
        (ColBuilder::Str(b), ColType::String) => match &v {
            Value::Bytes(t) => b.append_value(text(t).map_err(&bad)?),
            // A TIME column read with the binary protocol (time of day kept as text).
            Value::Time(neg, d, h, m, s, us) => {
                let hours = u64::from(*d) * 24 + u64::from(*h);
                let mut out = format!("{}{hours:02}:{m:02}:{s:02}", if *neg { "-" } else { "" });
                if *us > 0 {
                    let _ = write!(out, ".{us:06}");
                }
                b.append_value(out)
            }
            _ => return Err(bad("not text".into())),
        },
        (ColBuilder::Bin(b), ColType::Binary) => match &v {
            Value::Bytes(t) => b.append_value(t),
            _ => return Err(bad("not binary".into())),
        },
        _ => {
            return Err(Error::internal(format!(
                "table {table}, column {column}: the Arrow builder does not match type {ty}"
            )));
        }
    }
    Ok(())
}

/// A short printable form of a value for error messages (long texts are cut).
fn show(v: &Value) -> String {
    let s = match v {
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(t) => format!("'{t}'"),
            Err(_) => format!("0x{}", hex(&b[..b.len().min(32)])),
        },
        other => format!("{other:?}"),
    };
    cut(s, 100)
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02X}");
    }
    s
}

fn text(b: &[u8]) -> std::result::Result<&str, String> {
    std::str::from_utf8(b).map_err(|e| format!("not valid UTF-8 ({e})"))
}

fn integer(v: &Value) -> std::result::Result<i128, String> {
    match v {
        Value::Int(i) => Ok(i128::from(*i)),
        Value::UInt(u) => Ok(i128::from(*u)),
        Value::Bytes(t) => text(t)?
            .trim()
            .parse::<i128>()
            .map_err(|e| format!("not an integer ({e})")),
        _ => Err("not an integer".into()),
    }
}

fn fits_precision(unscaled: i128, precision: u8) -> bool {
    10i128
        .checked_pow(u32::from(precision))
        .is_none_or(|limit| unscaled.unsigned_abs() < limit.unsigned_abs())
}

/// Days since 1970-01-01 of a calendar date, `None` when the date does not exist.
fn days(y: i32, m: u32, d: u32) -> Option<i32> {
    chrono::NaiveDate::from_ymd_opt(y, m, d)
        .map(|date| chrono::Datelike::num_days_from_ce(&date) - EPOCH_DAYS_FROM_CE)
}

fn micros(day: i32, h: u32, mi: u32, s: u32, us: u32) -> Option<i64> {
    if h > 23 || mi > 59 || s > 59 || us > 999_999 {
        return None;
    }
    let secs = i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s);
    i64::from(day)
        .checked_mul(MICROS_PER_DAY)?
        .checked_add(secs * 1_000_000 + i64::from(us))
}

/// Writes cell `row` of `col` as a MySQL literal for a multi-row `INSERT`.
///
/// Every form is read the same way whatever the session's `sql_mode` (`ANSI_QUOTES`,
/// `NO_BACKSLASH_ESCAPES`) and connection character set:
/// - strings are quoted with `'` doubled when they hold no backslash and no NUL; those two are
///   the only characters whose meaning inside quotes depends on `NO_BACKSLASH_ESCAPES` (or on
///   client tooling), so such strings are sent as `_utf8mb4 X'<hex>'` instead. Hex-encoding every
///   string would also be safe but doubles the bytes of text-heavy tables;
/// - floats in the shortest form that round-trips their **f64** value. A float32 is written as
///   its exact f64 widening, not its shortest f32 text: MariaDB parses a literal as a double and
///   rejects `3.4028235e38` (f32::MAX's shortest text, slightly above f32::MAX as a double) as out
///   of range for FLOAT, while the exact widening converts back to the same f32 without rounding;
/// - dates `'YYYY-MM-DD'` and timestamps `'YYYY-MM-DD HH:MM:SS.ffffff'` for years 1 to 9999
///   (MariaDB 10.11 stores `0001-01-01` in DATE and DATETIME(6) although its documented range
///   starts at 1000; MySQL's does too);
/// - binaries `X'<hex>'`.
///
/// Errors (the caller adds table and column): NaN and infinite floats, which MySQL cannot store,
/// and dates outside years 1 to 9999.
pub fn sql_literal(
    col: &Cells<'_>,
    row: usize,
    out: &mut String,
) -> std::result::Result<(), String> {
    if col.is_null(row) {
        out.push_str("NULL");
        return Ok(());
    }
    match col {
        Cells::Bool(a) => out.push(if a.value(row) { '1' } else { '0' }),
        Cells::I32(a) => {
            let _ = write!(out, "{}", a.value(row));
        }
        Cells::I64(a) => {
            let _ = write!(out, "{}", a.value(row));
        }
        Cells::Dec(a, s) => out.push_str(&decimal_text(a.value(row), *s)),
        Cells::F32(a) => float(f64::from(a.value(row)), out)?,
        Cells::F64(a) => float(a.value(row), out)?,
        Cells::Date(a) => {
            let d = date_of(a.value(row))?;
            let _ = write!(out, "'{}'", d.format("%Y-%m-%d"));
        }
        Cells::Ts(a) => {
            let v = a.value(row);
            let t = chrono::DateTime::from_timestamp_micros(v)
                .map(|t| t.naive_utc())
                .filter(|t| (1..=9999).contains(&chrono::Datelike::year(t)))
                .ok_or_else(|| format!("timestamp {v} µs since 1970 is outside years 1 to 9999"))?;
            let _ = write!(out, "'{}'", t.format("%Y-%m-%d %H:%M:%S%.6f"));
        }
        Cells::Str(a) => string(a.value(row), out),
        Cells::LStr(a) => string(a.value(row), out),
        Cells::Bin(a) => binary(a.value(row), out),
        Cells::LBin(a) => binary(a.value(row), out),
    }
    Ok(())
}

fn float(v: f64, out: &mut String) -> std::result::Result<(), String> {
    if !v.is_finite() {
        return Err(format!(
            "value {v} cannot be stored: MySQL has no NaN or infinite floats"
        ));
    }
    // `{:e}` is Rust's shortest round-trip form with an exponent (`1e300`, `5e-324`, `-0e0`):
    // short for huge and tiny values alike, and MySQL reads it as a double literal.
    let _ = write!(out, "{v:e}");
    Ok(())
}

fn date_of(days: i32) -> std::result::Result<chrono::NaiveDate, String> {
    days.checked_add(EPOCH_DAYS_FROM_CE)
        .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
        .filter(|d| (1..=9999).contains(&chrono::Datelike::year(d)))
        .ok_or_else(|| format!("date {days} days since 1970 is outside years 1 to 9999"))
}

fn string(s: &str, out: &mut String) {
    if s.contains(['\\', '\0']) {
        out.push_str("_utf8mb4 X'");
        push_hex(s.as_bytes(), out);
        out.push('\'');
    } else {
        out.reserve(s.len() + 2);
        out.push('\'');
        for piece in s.split_inclusive('\'') {
            out.push_str(piece);
            if piece.ends_with('\'') {
                out.push('\'');
            }
        }
        out.push('\'');
    }
}

fn binary(b: &[u8], out: &mut String) {
    out.push_str("X'");
    push_hex(b, out);
    out.push('\'');
}

fn push_hex(b: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(b.len() * 2);
    for x in b {
        out.push(DIGITS[usize::from(x >> 4)] as char);
        out.push(DIGITS[usize::from(x & 15)] as char);
    }
}

/// Maps a driver error to ours: broken connections, timeouts, deadlocks and lock waits are
/// `Unavailable` (retryable); values the server refuses are `Data`; refused logins, unknown
/// databases and oversized packets are `Config`. The server's message is kept (it names the
/// column); connection URLs never appear in driver errors built this way.
pub fn map_error(e: mysql_async::Error) -> Error {
    use mysql_async::Error as E;
    match e {
        E::Server(s) => {
            let msg = format!("ERROR {} ({}): {}", s.code, s.state, s.message);
            match s.code {
                // Lock wait timeout, deadlock, too many connections, shutdown, aborted or killed
                // connections, interrupted or timed-out statements, read-only (failover).
                1205
                | 1213
                | 1040
                | 1203
                | 1053
                | 1077
                | 1152
                | 1158..=1161
                | 1317
                | 1290
                | 1836
                | 1927
                | 1969
                | 3024
                | 2002
                | 2003
                | 2006
                | 2013 => Error::unavailable(msg),
                1044 | 1045 | 1049 | 1142 | 1143 | 1227 => Error::config(msg),
                1153 => Error::config(format!(
                    "{msg} (lower the target's insert_bytes or raise the server's max_allowed_packet)"
                )),
                1048 | 1062 | 1264 | 1265 | 1292 | 1300 | 1366 | 1367 | 1406 | 1411 | 1416
                | 1451 | 1452 | 1690 | 3140 | 4025 => Error::data(msg),
                _ => Error::internal(msg),
            }
        }
        E::Io(io) => Error::unavailable(format!("connection to the server failed: {io}")),
        E::Driver(d) => {
            use mysql_async::DriverError as D;
            let msg = format!("MySQL driver: {d}");
            match d {
                D::ConnectionClosed
                | D::PoolDisconnected
                | D::PacketOutOfOrder
                | D::UnexpectedPacket { .. } => Error::unavailable(msg),
                D::PacketTooLarge => Error::config(format!(
                    "{msg} (lower the target's insert_bytes or raise the server's max_allowed_packet)"
                )),
                _ => Error::internal(msg),
            }
        }
        E::Other(o) => Error::unavailable(format!("MySQL connection: {o}")),
        // Never printed: the driver's URL errors may quote parts of the URL.
        E::Url(_) => Error::config("the MySQL connection URL is not valid"),
    }
}

#[cfg(test)]
mod tests;
