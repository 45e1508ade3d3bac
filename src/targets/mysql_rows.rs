//! Values across the MySQL wire protocol, both ways.
//!
//! The MySQL/MariaDB target and StarRocks (whose frontend speaks the MySQL protocol) both have to
//! write Arrow values as SQL literals and read table contents back into Arrow for verification.
//! Verification compares [`crate::model::fingerprint::Digest128`]s, so reading back must rebuild exactly
//! the canonical values the lake holds (dates as days, timestamps as microseconds, floats bit for
//! bit): this module is the one place that knows how each server spells them, in the binary
//! protocol (typed values) and in the text protocol (every value as text).

use std::fmt::Write as _;

use arrow_array::RecordBatch;
use mysql_async::prelude::{Protocol, Queryable};
use mysql_async::{QueryResult, Value};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::model::builders::ColBuilder;
use crate::model::cells::Cells;
use crate::model::codec::{self as reader, decimal_text};
use crate::model::{ColType, TableInfo};

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

/// Streams the rows of `sql` as Arrow batches of up to `batch_rows` rows typed exactly like
/// `info.arrow_schema()`. `binary`: run it as a prepared statement (typed values, exact floats),
/// else as a text query. Rows are converted as they arrive and at most two batches wait in the
/// channel, so memory stays at a few batches whatever the table's size. An error is the last
/// item sent.
pub fn scan(
    pool: mysql_async::Pool,
    sql: String,
    info: TableInfo,
    batch_rows: usize,
    binary: bool,
) -> mpsc::Receiver<Result<RecordBatch>> {
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        if let Err(e) = scan_into(&pool, &sql, &info, batch_rows.max(1), binary, &tx).await {
            let _ = tx
                .send(Err(e.context(format!("reading table {} back", info.name))))
                .await;
        }
    });
    rx
}

async fn scan_into(
    pool: &mysql_async::Pool,
    sql: &str,
    info: &TableInfo,
    batch_rows: usize,
    binary: bool,
    tx: &mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    let mut conn = pool.get_conn().await.map_err(map_error)?;
    let id = conn.id();
    let gave_up = if binary {
        let mut res = conn.exec_iter(sql, ()).await.map_err(map_error)?;
        drain(&mut res, info, batch_rows, tx).await?
    } else {
        let mut res = conn.query_iter(sql).await.map_err(map_error)?;
        drain(&mut res, info, batch_rows, tx).await?
    };
    if gave_up {
        // The driver would read the rest of the result before reusing or even closing the
        // connection: stop the query on the server, then drop the connection (a kill that
        // arrives after the result ended must not hit the next user of a pooled connection).
        if let Ok(mut k) = pool.get_conn().await {
            let _ = k.query_drop(format!("KILL QUERY {id}")).await;
        }
        let _ = conn.disconnect().await;
    }
    Ok(())
}

/// Reads rows into batches until the result ends (`false`) or the receiver is gone (`true`).
async fn drain<P: Protocol>(
    res: &mut QueryResult<'_, '_, P>,
    info: &TableInfo,
    batch_rows: usize,
    tx: &mpsc::Sender<Result<RecordBatch>>,
) -> Result<bool> {
    let width = info.columns.len();
    if res.columns_ref().len() != width {
        return Err(Error::internal(format!(
            "the query returned {} columns, table {} has {width}",
            res.columns_ref().len(),
            info.name
        )));
    }
    let schema = info.arrow_schema();
    let types = info.types();
    let new_builders = || {
        types
            .iter()
            .map(|t| ColBuilder::new(*t, batch_rows))
            .collect::<Vec<_>>()
    };
    let mut builders = new_builders();
    let mut rows = 0usize;
    while let Some(row) = res.next().await.map_err(map_error)? {
        for (i, v) in row.unwrap_raw().into_iter().enumerate() {
            let col = &info.columns[i];
            let v = v.ok_or_else(|| {
                Error::internal(format!(
                    "column {} of table {} missing",
                    col.name, info.name
                ))
            })?;
            append_value(&mut builders[i], col.ty, v, &info.name, &col.name)?;
        }
        rows += 1;
        if rows == batch_rows {
            let arrays = builders.iter_mut().map(|b| b.finish()).collect();
            if tx
                .send(Ok(RecordBatch::try_new(schema.clone(), arrays)?))
                .await
                .is_err()
            {
                return Ok(true);
            }
            builders = new_builders();
            rows = 0;
        }
    }
    if rows > 0 {
        let arrays = builders.iter_mut().map(|b| b.finish()).collect();
        let _ = tx.send(Ok(RecordBatch::try_new(schema, arrays)?)).await;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
        Float64Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use std::sync::Arc;

    fn lit(a: ArrayRef) -> Vec<std::result::Result<String, String>> {
        let cells = Cells::new(&a).unwrap();
        (0..a.len())
            .map(|r| {
                let mut s = String::new();
                sql_literal(&cells, r, &mut s).map(|_| s)
            })
            .collect()
    }

    fn ok(v: Vec<std::result::Result<String, String>>) -> Vec<String> {
        v.into_iter().map(|r| r.unwrap()).collect()
    }

    #[test]
    fn literals_of_every_type() {
        assert_eq!(
            ok(lit(Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None
            ])))),
            ["1", "0", "NULL"]
        );
        assert_eq!(
            ok(lit(Arc::new(Int32Array::from(vec![i32::MIN, 0, i32::MAX])))),
            ["-2147483648", "0", "2147483647"]
        );
        assert_eq!(
            ok(lit(Arc::new(Int64Array::from(vec![i64::MIN])))),
            ["-9223372036854775808"]
        );
        let d = Decimal128Array::from(vec![
            Some(-99_999_999_999_999_999_999_999_999_999_999_999_999i128),
            Some(5),
            None,
        ])
        .with_precision_and_scale(38, 10)
        .unwrap();
        assert_eq!(
            ok(lit(Arc::new(d))),
            [
                "-9999999999999999999999999999.9999999999",
                "0.0000000005",
                "NULL"
            ]
        );
        assert_eq!(
            ok(lit(Arc::new(Float64Array::from(vec![
                0.1,
                -0.0,
                5e-324,
                f64::MAX,
                1e20
            ])))),
            ["1e-1", "-0e0", "5e-324", "1.7976931348623157e308", "1e20"]
        );
        // float32: the exact f64 widening, never above f32::MAX as a double.
        let f = ok(lit(Arc::new(Float32Array::from(vec![
            0.1f32,
            f32::MAX,
            f32::from_bits(1),
            -0.0,
        ]))));
        assert_eq!(f[0], "1.0000000149011612e-1");
        assert_eq!(f[1], "3.4028234663852886e38");
        assert_eq!(f[2].parse::<f64>().unwrap() as f32, f32::from_bits(1));
        assert_eq!(f[3], "-0e0");
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = lit(Arc::new(Float64Array::from(vec![bad])))
                .remove(0)
                .unwrap_err();
            assert!(e.contains("NaN or infinite"), "{e}");
        }
        assert_eq!(
            ok(lit(Arc::new(Date32Array::from(vec![
                -719_162, 0, 2_932_896
            ])))),
            ["'0001-01-01'", "'1970-01-01'", "'9999-12-31'"]
        );
        assert!(lit(Arc::new(Date32Array::from(vec![-719_163])))[0].is_err());
        assert!(lit(Arc::new(Date32Array::from(vec![2_932_897])))[0].is_err());
        assert_eq!(
            ok(lit(Arc::new(TimestampMicrosecondArray::from(vec![
                -62_135_596_800_000_000,
                1,
                253_402_300_799_999_999
            ])))),
            [
                "'0001-01-01 00:00:00.000000'",
                "'1970-01-01 00:00:00.000001'",
                "'9999-12-31 23:59:59.999999'"
            ]
        );
        assert!(lit(Arc::new(TimestampMicrosecondArray::from(vec![i64::MIN])))[0].is_err());
        assert_eq!(
            ok(lit(Arc::new(StringArray::from(vec![
                Some(""),
                None,
                Some("it's"),
                Some("''"),
                Some("a\\b"),
                Some("nul\0"),
                Some("line\nbreak 😀"),
            ])))),
            [
                "''",
                "NULL",
                "'it''s'",
                "''''''",
                "_utf8mb4 X'615C62'",
                "_utf8mb4 X'6E756C00'",
                "'line\nbreak 😀'"
            ]
        );
        assert_eq!(
            ok(lit(Arc::new(BinaryArray::from(vec![
                Some(&[0u8, 0xFF][..]),
                Some(&[][..]),
                None
            ])))),
            ["X'00FF'", "X''", "NULL"]
        );
    }

    fn read(ty: ColType, vals: Vec<Value>) -> Result<ArrayRef> {
        let mut b = ColBuilder::new(ty, vals.len());
        for v in vals {
            append_value(&mut b, ty, v, "T", "C")?;
        }
        Ok(b.finish())
    }

    fn bytes(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    #[test]
    fn reads_text_and_binary_forms_of_every_type() {
        let a = read(
            ColType::Bool,
            vec![bytes("1"), bytes("false"), Value::Int(1), Value::NULL],
        )
        .unwrap();
        assert_eq!(
            a.as_ref(),
            &BooleanArray::from(vec![Some(true), Some(false), Some(true), None])
                as &dyn arrow_array::Array
        );
        let a = read(
            ColType::Int32,
            vec![bytes("-2147483648"), Value::UInt(255), Value::Int(-7)],
        )
        .unwrap();
        assert_eq!(
            a.as_ref(),
            &Int32Array::from(vec![i32::MIN, 255, -7]) as &dyn arrow_array::Array
        );
        assert!(read(ColType::Int32, vec![bytes("2147483648")]).is_err());
        assert!(read(ColType::Int64, vec![Value::UInt(u64::MAX)]).is_err());
        let a = read(ColType::Int64, vec![bytes("9223372036854775807")]).unwrap();
        assert_eq!(
            a.as_ref(),
            &Int64Array::from(vec![i64::MAX]) as &dyn arrow_array::Array
        );

        let a = read(
            ColType::Float32,
            vec![
                Value::Float(f32::MAX),
                bytes("1e+20"),
                bytes("-0"),
                Value::Double(0.5),
                bytes("inf"),
            ],
        )
        .unwrap();
        let f = a.as_any().downcast_ref::<Float32Array>().unwrap();
        assert_eq!(f.value(0), f32::MAX);
        assert_eq!(f.value(1), 1e20f32);
        assert_eq!(f.value(2).to_bits(), (-0.0f32).to_bits());
        assert_eq!(f.value(3), 0.5);
        assert_eq!(f.value(4), f32::INFINITY);
        assert!(read(ColType::Float32, vec![Value::Double(0.1)]).is_err());
        let a = read(
            ColType::Float64,
            vec![
                bytes("5e-324"),
                bytes("NaN"),
                Value::Float(0.1),
                Value::Double(-0.0),
            ],
        )
        .unwrap();
        let f = a.as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(f.value(0).to_bits(), 1);
        assert!(f.value(1).is_nan());
        assert_eq!(f.value(2), f64::from(0.1f32));
        assert_eq!(f.value(3).to_bits(), (-0.0f64).to_bits());

        let dec = ColType::Decimal {
            precision: 38,
            scale: 4,
        };
        let a = read(
            dec,
            vec![
                bytes("1.23"),
                bytes("-0.0005"),
                bytes("12"),
                bytes("-9999999999999999999999999999999999.9999"),
                Value::Int(-3),
            ],
        )
        .unwrap();
        let d = a.as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!(
            d.values().to_vec(),
            vec![
                12_300,
                -5,
                120_000,
                -99_999_999_999_999_999_999_999_999_999_999_999_999,
                -30_000
            ]
        );
        assert_eq!(d.precision(), 38);
        let e = read(dec, vec![bytes("1.23456")]).unwrap_err();
        assert!(e.message.contains("more than the scale"), "{e}");
        assert!(
            e.message.contains("column C") && e.message.contains("table T"),
            "{e}"
        );
        assert!(read(dec, vec![bytes("abc")]).is_err());
        assert!(
            read(
                ColType::Decimal {
                    precision: 5,
                    scale: 2
                },
                vec![bytes("1000.00")]
            )
            .is_err()
        );

        let a = read(
            ColType::Date,
            vec![
                bytes("0001-01-01"),
                bytes("9999-12-31"),
                Value::Date(1970, 1, 2, 0, 0, 0, 0),
            ],
        )
        .unwrap();
        assert_eq!(
            a.as_ref(),
            &Date32Array::from(vec![-719_162, 2_932_896, 1]) as &dyn arrow_array::Array
        );
        assert!(read(ColType::Date, vec![bytes("0000-00-00")]).is_err());
        assert!(read(ColType::Date, vec![bytes("2024-02-30")]).is_err());

        for ty in [ColType::Timestamp, ColType::TimestampTz] {
            let a = read(
                ty,
                vec![
                    bytes("1970-01-01 00:00:00.000001"),
                    bytes("1970-01-01 00:00:01.5"),
                    bytes("0001-01-01 00:00:00"),
                    Value::Date(9999, 12, 31, 23, 59, 59, 999_999),
                ],
            )
            .unwrap();
            assert_eq!(a.data_type(), &ty.arrow());
            let t = a
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .unwrap();
            assert_eq!(
                t.values().to_vec(),
                vec![
                    1,
                    1_500_000,
                    -62_135_596_800_000_000,
                    253_402_300_799_999_999
                ]
            );
            assert!(read(ty, vec![bytes("1970-01-01 00:00:00.1234567")]).is_err());
            assert!(read(ty, vec![bytes("1970-01-01 24:00:00")]).is_err());
        }

        let a = read(
            ColType::String,
            vec![
                bytes(""),
                Value::NULL,
                bytes("é😀"),
                Value::Time(false, 1, 2, 3, 4, 5),
            ],
        )
        .unwrap();
        assert_eq!(
            a.as_ref(),
            &StringArray::from(vec![Some(""), None, Some("é😀"), Some("26:03:04.000005")])
                as &dyn arrow_array::Array
        );
        let e = read(ColType::String, vec![Value::Bytes(vec![0xFF, 0xFE])]).unwrap_err();
        assert!(e.message.contains("UTF-8"), "{e}");
        let a = read(ColType::Binary, vec![Value::Bytes(vec![0, 0xFF])]).unwrap();
        assert_eq!(
            a.as_any()
                .downcast_ref::<arrow_array::LargeBinaryArray>()
                .unwrap()
                .value(0),
            &[0, 0xFF]
        );
        // A builder of another type is a programming error, reported, not a panic.
        let mut b = ColBuilder::new(ColType::Int32, 1);
        assert!(append_value(&mut b, ColType::String, bytes("x"), "T", "C").is_err());
    }

    #[test]
    fn errors_are_classified() {
        let server = |code| {
            map_error(mysql_async::Error::Server(mysql_async::ServerError {
                code,
                message: "m".into(),
                state: "HY000".into(),
            }))
        };
        assert!(server(1213).retryable);
        assert!(server(1205).retryable);
        assert_eq!(server(1406).kind, crate::error::ErrorKind::Data);
        assert!(!server(1406).retryable);
        assert_eq!(server(1045).kind, crate::error::ErrorKind::Config);
        assert_eq!(server(1064).kind, crate::error::ErrorKind::Internal);
        let io = map_error(mysql_async::Error::Io(mysql_async::IoError::Io(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        )));
        assert!(io.retryable);
    }
}
