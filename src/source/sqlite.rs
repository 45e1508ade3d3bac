//! SQLite as a source (the embedded demo) and the reader shared with the SQLite target.
//!
//! SQLite has storage classes, not column types, so a column's logical type comes from its
//! declared type (see [`decl_type`]) and values are parsed from their stored form: decimals,
//! dates and timestamps as text. Reading goes straight into Arrow builders, one bounded batch at
//! a time, and every value that does not fit its declared type fails with table, column, key and
//! value named.

use std::path::Path;

use arrow_array::{ArrayRef, RecordBatch};
use rusqlite::types::ValueRef;

use crate::error::{Error, Result};
use crate::store::ChunkRange;
use crate::types::{ColType, Column, TableInfo};

/// Maps a declared SQLite column type to a logical type.
pub fn decl_type(decl: &str) -> Option<ColType> {
    let d = decl.trim().to_ascii_uppercase();
    let (base, args) = match d.find('(') {
        Some(i) => (d[..i].trim(), Some(d[i + 1..].trim_end_matches(')'))),
        None => (d.as_str(), None),
    };
    // `TEXT DECIMAL(p,s)` / `TEXT MONEY`: a decimal whose declared type gives the column TEXT
    // affinity. With plain `DECIMAL(p,s)` SQLite converts '12345678901234567.1234' to a REAL
    // and loses digits; with TEXT affinity the exact text is kept.
    let base = match base.strip_prefix("TEXT ") {
        Some(rest @ ("DECIMAL" | "NUMERIC" | "MONEY")) => rest,
        _ => base,
    };
    Some(match base {
        "BOOLEAN" | "BIT" | "BOOL" => ColType::Bool,
        "INT" | "SMALLINT" | "TINYINT" | "MEDIUMINT" => ColType::Int32,
        "INTEGER" | "BIGINT" => ColType::Int64,
        "FLOAT4" => ColType::Float32,
        "REAL" | "FLOAT" | "DOUBLE" | "DOUBLE PRECISION" => ColType::Float64,
        "MONEY" => ColType::Decimal {
            precision: 19,
            scale: 4,
        },
        "DECIMAL" | "NUMERIC" => {
            let mut it = args?.split(',').map(|s| s.trim().parse::<i64>());
            let p = it.next()?.ok()?;
            let s = it.next().unwrap_or(Ok(0)).ok()?;
            if !(1..=38).contains(&p) || s < 0 || s > p {
                return None;
            }
            ColType::Decimal {
                precision: p as u8,
                scale: s as i8,
            }
        }
        "DATE" => ColType::Date,
        "DATETIME" | "TIMESTAMP" => ColType::Timestamp,
        "TIMESTAMPTZ" => ColType::TimestampTz,
        "TEXT" | "VARCHAR" | "NVARCHAR" | "CHAR" | "NCHAR" | "CLOB" | "STRING" => ColType::String,
        "BLOB" | "VARBINARY" | "BINARY" => ColType::Binary,
        _ => return None,
    })
}

pub fn open(path: &Path, write: bool) -> Result<rusqlite::Connection> {
    use rusqlite::OpenFlags as F;
    let flags = if write {
        F::SQLITE_OPEN_READ_WRITE | F::SQLITE_OPEN_CREATE | F::SQLITE_OPEN_NO_MUTEX
    } else {
        F::SQLITE_OPEN_READ_ONLY | F::SQLITE_OPEN_NO_MUTEX
    };
    let c = rusqlite::Connection::open_with_flags(path, flags).map_err(|e| {
        Error::unavailable(format!(
            "cannot open SQLite database {}: {e}",
            path.display()
        ))
    })?;
    c.busy_timeout(std::time::Duration::from_secs(60))?;
    Ok(c)
}

pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Describes a table from the database's own catalog.
pub fn describe(
    c: &rusqlite::Connection,
    table: &str,
    key_override: Option<&str>,
) -> Result<TableInfo> {
    let mut st = c.prepare(&format!("PRAGMA table_info({})", quote(table)))?;
    let mut columns = Vec::new();
    let mut pk = Vec::new();
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, bool>(3)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    for row in rows {
        let (name, decl, notnull, pk_pos) = row?;
        let ty = decl_type(&decl).ok_or_else(|| {
            Error::data(format!(
                "table {table}, column {name}: unsupported declared type `{decl}`"
            ))
        })?;
        if pk_pos > 0 {
            pk.push((pk_pos, name.clone(), ty));
        }
        columns.push(Column {
            name,
            ty,
            nullable: !notnull && pk_pos == 0,
        });
    }
    if columns.is_empty() {
        return Err(Error::data(format!(
            "table {table} does not exist or has no columns"
        )));
    }
    let key = match key_override {
        Some(k) => {
            let col = columns
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(k))
                .ok_or_else(|| {
                    Error::data(format!(
                        "table {table}: chunk_key column `{k}` does not exist"
                    ))
                })?;
            if !matches!(col.ty, ColType::Int32 | ColType::Int64) {
                return Err(Error::data(format!(
                    "table {table}: chunk_key column `{k}` is {}, not an integer",
                    col.ty
                )));
            }
            Some(col.name.clone())
        }
        None if pk.len() == 1 && matches!(pk[0].2, ColType::Int32 | ColType::Int64) => {
            Some(pk[0].1.clone())
        }
        None => None,
    };
    let rows: i64 = c.query_row(&format!("SELECT COUNT(*) FROM {}", quote(table)), [], |r| {
        r.get(0)
    })?;
    let mut info = TableInfo::new(table, columns, key, rows as u64);
    pk.sort_by_key(|p| p.0);
    info.primary_key = pk.into_iter().map(|p| p.1).collect();
    Ok(info)
}

/// User tables, skipping SQLite's and ours.
pub fn list_tables(c: &rusqlite::Connection) -> Result<Vec<String>> {
    let mut st = c.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
         AND name NOT LIKE '\\_dag%' ESCAPE '\\' ORDER BY name",
    )?;
    let names = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names)
}

/// Splits a table into key ranges of about `chunk_rows` rows. The first and last ranges are open
/// so that rows outside the bounds seen now are never missed.
pub fn plan_chunks(
    c: &rusqlite::Connection,
    info: &TableInfo,
    chunk_rows: u64,
) -> Result<Vec<ChunkRange>> {
    let Some(key) = &info.key else {
        return Ok(vec![ChunkRange::whole()]);
    };
    let (min, max, count): (Option<i64>, Option<i64>, i64) = c.query_row(
        &format!(
            "SELECT MIN({k}), MAX({k}), COUNT(*) FROM {t}",
            k = quote(key),
            t = quote(&info.name)
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let (Some(min), Some(max)) = (min, max) else {
        return Ok(vec![ChunkRange::whole()]);
    };
    Ok(ChunkRange::split_int(min, max, count as u64, chunk_rows))
}

/// The `WHERE` and `ORDER BY` selecting one chunk of `info`, in key order (the first chunk also
/// takes rows whose key is NULL), limited to the cursor range of an incremental run.
pub fn chunk_predicate_of(info: &TableInfo, r: &ChunkRange) -> String {
    predicate(info.key.as_deref(), r, cursor_condition(info).as_deref())
}

fn predicate(key: Option<&str>, r: &ChunkRange, extra: Option<&str>) -> String {
    let mut parts = Vec::new();
    let mut order = String::new();
    if let Some(k) = key {
        let k = quote(k);
        let mut range = Vec::new();
        if let Some(lo) = r.lo {
            range.push(format!("{k} >= {lo}"));
        }
        if let Some(hi) = r.hi {
            range.push(format!("{k} < {hi}"));
        }
        match (range.is_empty(), r.index == 0) {
            (true, _) => {}
            (false, true) => parts.push(format!("(({}) OR {k} IS NULL)", range.join(" AND "))),
            (false, false) => parts.push(range.join(" AND ")),
        }
        // In key order, as the lake table's sort order says (free on an INTEGER PRIMARY KEY).
        order = format!(" ORDER BY {k}");
    }
    if let Some(e) = extra {
        parts.push(format!("({e})"));
    }
    if parts.is_empty() {
        order
    } else {
        format!(" WHERE {}{order}", parts.join(" AND "))
    }
}

/// A cursor value as SQLite holds it: an integer, or text as the demo writes dates and times.
fn cursor_literal(v: crate::types::CursorValue) -> String {
    use crate::types::CursorValue as V;
    match v {
        V::Int(n) => n.to_string(),
        V::Date(_) => format!("'{v}'"),
        V::Micros(us) => match chrono::DateTime::from_timestamp_micros(us) {
            Some(t) => format!("'{}'", t.format("%Y-%m-%d %H:%M:%S%.6f")),
            None => us.to_string(),
        },
    }
}

/// The cursor range of an incremental run (see `mssql::cursor_condition`).
fn cursor_condition(info: &TableInfo) -> Option<String> {
    let inc = info.incremental.as_ref()?;
    let c = quote(&inc.cursor);
    Some(match (inc.append, inc.low, inc.high) {
        (true, Some(lo), Some(hi)) => format!(
            "{c} > {} AND {c} <= {}",
            cursor_literal(lo),
            cursor_literal(hi)
        ),
        (true, None, Some(hi)) => format!("{c} <= {}", cursor_literal(hi)),
        (true, _, None) => "0".to_string(),
        (false, _, Some(hi)) => format!("{c} <= {} OR {c} IS NULL", cursor_literal(hi)),
        (false, _, None) => format!("{c} IS NULL"),
    })
}

/// The largest cursor value of `table` now (`None`: no row has one).
pub fn cursor_max(
    c: &rusqlite::Connection,
    info: &TableInfo,
    cursor: &str,
) -> Result<Option<crate::types::CursorValue>> {
    use crate::types::CursorValue as V;
    let ty = info
        .columns
        .iter()
        .find(|col| col.name == cursor)
        .map(|col| col.ty);
    let sql = format!("SELECT MAX({}) FROM {}", quote(cursor), quote(&info.name));
    let v: rusqlite::types::Value = c.query_row(&sql, [], |r| r.get(0))?;
    let bad = |what: &str| {
        Error::config(format!(
            "table {}: cursor column {cursor} holds {what}, not an integer, date or timestamp",
            info.name
        ))
    };
    use rusqlite::types::Value as S;
    Ok(match (ty, v) {
        (_, S::Null) => None,
        (Some(ColType::Int32 | ColType::Int64), S::Integer(n)) => Some(V::Int(n)),
        (Some(ColType::Date), S::Text(t)) => Some(V::Date(parse_date(&t).ok_or_else(|| bad(&t))?)),
        (Some(ColType::Timestamp | ColType::TimestampTz), S::Text(t)) => {
            Some(V::Micros(parse_timestamp(&t).ok_or_else(|| bad(&t))?))
        }
        (_, other) => return Err(bad(&format!("{other:?}"))),
    })
}

/// Reads `SELECT <columns> FROM <table> <predicate>` in batches of `batch_rows`, calling `sink`
/// with each; stops early when `sink` returns false.
pub fn read(
    c: &rusqlite::Connection,
    info: &TableInfo,
    predicate: &str,
    batch_rows: usize,
    mut sink: impl FnMut(RecordBatch) -> Result<bool>,
) -> Result<()> {
    let cols = info
        .columns
        .iter()
        .map(|c| quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT {cols} FROM {}{predicate}", quote(&info.name));
    let mut st = c.prepare(&sql)?;
    let mut rows = st.query([])?;
    let schema = info.arrow_schema();
    let key_idx = info
        .key
        .as_ref()
        .and_then(|k| info.columns.iter().position(|c| &c.name == k));
    let batch_rows = batch_rows.max(1);
    let mut builders = Builders::new(&info.columns, batch_rows);
    while let Some(row) = rows.next()? {
        for (i, col) in info.columns.iter().enumerate() {
            let v = row.get_ref(i)?;
            if let Err(msg) = builders.push(i, col.ty, v) {
                let at = match key_idx.map(|k| row.get_ref(k)) {
                    Some(Ok(ValueRef::Integer(k))) => format!(", key {k}"),
                    _ => String::new(),
                };
                return Err(Error::data(format!(
                    "table {}, column {}{at}: {msg}",
                    info.name, col.name
                )));
            }
        }
        if builders.len() >= batch_rows {
            let b = builders.finish(&schema)?;
            if !sink(b)? {
                return Ok(());
            }
        }
    }
    if builders.len() > 0 {
        let b = builders.finish(&schema)?;
        sink(b)?;
    }
    Ok(())
}

use super::builders::ColBuilder as B;

struct Builders(Vec<B>);

fn show(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => {
            let s = String::from_utf8_lossy(t);
            let mut short: String = s.chars().take(60).collect();
            if short.len() < s.len() {
                short.push('…');
            }
            format!("'{short}'")
        }
        ValueRef::Blob(b) => format!("<{} bytes>", b.len()),
    }
}

impl Builders {
    fn new(cols: &[Column], cap: usize) -> Self {
        Builders(cols.iter().map(|c| B::new(c.ty, cap)).collect())
    }

    fn len(&self) -> usize {
        self.0.first().map_or(0, B::len)
    }

    fn push(&mut self, i: usize, ty: ColType, v: ValueRef<'_>) -> std::result::Result<(), String> {
        let bad = |what: &str| format!("value {} is not a valid {what}", show(v));
        if let ValueRef::Null = v {
            self.0[i].append_null();
            return Ok(());
        }
        match (&mut self.0[i], v) {
            (B::Bool(b), ValueRef::Integer(x)) if x == 0 || x == 1 => b.append_value(x == 1),
            (B::I32(b), ValueRef::Integer(x)) => b.append_value(
                i32::try_from(x).map_err(|_| format!("value {x} is out of range for int32"))?,
            ),
            (B::I64(b), ValueRef::Integer(x)) => b.append_value(x),
            (B::F32(b), ValueRef::Real(x)) => b.append_value(x as f32),
            (B::F32(b), ValueRef::Integer(x)) => b.append_value(x as f32),
            (B::F64(b), ValueRef::Real(x)) => b.append_value(x),
            (B::F64(b), ValueRef::Integer(x)) => b.append_value(x as f64),
            (B::Dec(b, p, s), v) => {
                let unscaled = match v {
                    ValueRef::Text(t) => std::str::from_utf8(t)
                        .ok()
                        .and_then(|t| parse_decimal(t, *p, *s))
                        .ok_or_else(|| bad(&ty.to_string()))?,
                    ValueRef::Integer(x) => {
                        let u = i128::from(x) * 10i128.pow(*s as u32);
                        if u.unsigned_abs() >= 10u128.pow(*p as u32) {
                            return Err(bad(&ty.to_string()));
                        }
                        u
                    }
                    ValueRef::Real(x) => {
                        parse_decimal(&x.to_string(), *p, *s).ok_or_else(|| bad(&ty.to_string()))?
                    }
                    _ => return Err(bad(&ty.to_string())),
                };
                b.append_value(unscaled)
            }
            (B::Date(b), ValueRef::Text(t)) => b.append_value(
                std::str::from_utf8(t)
                    .ok()
                    .and_then(parse_date)
                    .ok_or_else(|| bad("date (YYYY-MM-DD)"))?,
            ),
            (B::Ts(b), ValueRef::Text(t)) => b.append_value(
                std::str::from_utf8(t)
                    .ok()
                    .and_then(parse_timestamp)
                    .ok_or_else(|| bad("timestamp (YYYY-MM-DD HH:MM:SS[.ffffff])"))?,
            ),
            (B::Str(b), ValueRef::Text(t)) => b.append_value(
                std::str::from_utf8(t).map_err(|e| format!("invalid UTF-8 in text value: {e}"))?,
            ),
            (B::Str(b), ValueRef::Integer(x)) => b.append_value(x.to_string()),
            (B::Bin(b), ValueRef::Blob(x)) => b.append_value(x),
            (B::Bin(b), ValueRef::Text(x)) => b.append_value(x),
            _ => return Err(bad(&ty.to_string())),
        }
        Ok(())
    }

    fn finish(&mut self, schema: &arrow_schema::SchemaRef) -> Result<RecordBatch> {
        let cols: Vec<ArrayRef> = self.0.iter_mut().map(B::finish).collect();
        Ok(RecordBatch::try_new(schema.clone(), cols)?)
    }
}

/// Parses plain decimal notation into the unscaled integer at `scale`, refusing values that need
/// more fraction digits than the scale or more integer digits than `precision - scale`.
pub fn parse_decimal(s: &str, precision: u8, scale: i8) -> Option<i128> {
    let s = s.trim();
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    let scale = scale as usize;
    if frac.len() > scale {
        return None;
    }
    let int = int.trim_start_matches('0');
    if int.len() > precision as usize - scale {
        return None;
    }
    let mut v: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        v = v * 10 + i128::from(b - b'0');
    }
    v *= 10i128.pow((scale - frac.len()) as u32);
    Some(if neg { -v } else { v })
}

fn num(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0i64, |a, &b| a * 10 + i64::from(b - b'0')))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm); `const`
/// so the demo generator can compute its date bounds at compile time.
pub const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: (year, month, day).
pub const fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

pub fn parse_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    chrono::NaiveDate::from_ymd_opt(y as i32, m as u32, d as u32)?;
    i32::try_from(days_from_civil(y, m, d)).ok()
}

pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || (b[10] != b' ' && b[10] != b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let days = i64::from(parse_date(&s[..10])?);
    let (h, mi, sec) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let micros = match &b[19..] {
        [] => 0,
        [b'.', f @ ..] if (1..=6).contains(&f.len()) => num(f)? * 10i64.pow(6 - f.len() as u32),
        _ => return None,
    };
    Some(((days * 24 + h) * 60 + mi) * 60_000_000 + sec * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly_or_not_at_all() {
        assert_eq!(parse_decimal("-1234.56", 18, 4), Some(-12_345_600));
        assert_eq!(parse_decimal("7", 5, 2), Some(700));
        assert_eq!(parse_decimal("0.05", 5, 2), Some(5));
        assert_eq!(
            parse_decimal("922337203685477.5807", 19, 4),
            Some(9_223_372_036_854_775_807)
        );
        assert_eq!(
            parse_decimal("1.005", 5, 2),
            None,
            "too many fraction digits"
        );
        assert_eq!(parse_decimal("1000", 5, 2), None, "too many integer digits");
        assert_eq!(parse_decimal("1e5", 9, 2), None);
        assert_eq!(parse_decimal("", 9, 2), None);
        let big = "1234567890123456789012345678.0123456789";
        assert_eq!(
            parse_decimal(big, 38, 10),
            Some(12345678901234567890123456780123456789)
        );
    }

    #[test]
    fn dates_and_timestamps_map_to_epoch_units() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        assert_eq!(parse_date("0001-01-01"), Some(-719162));
        assert_eq!(parse_date("9999-12-31"), Some(2932896));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_timestamp("1970-01-01 00:00:01.5"), Some(1_500_000));
        assert_eq!(
            parse_timestamp("2000-01-01T00:00:00"),
            Some(946_684_800_000_000)
        );
        assert_eq!(parse_timestamp("1969-12-31 23:59:59.999999"), Some(-1));
        assert_eq!(parse_timestamp("2000-01-01 24:00:00"), None);
    }

    #[test]
    fn chunks_cover_the_key_space_with_open_ends() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
            .unwrap();
        for i in 1..=1000 {
            c.execute("INSERT INTO t VALUES (?1, 'x')", [i]).unwrap();
        }
        let info = describe(&c, "t", None).unwrap();
        assert_eq!(info.key.as_deref(), Some("id"));
        let plan = plan_chunks(&c, &info, 300).unwrap();
        assert_eq!(plan.len(), 4);
        assert_eq!(plan[0].lo, None);
        assert_eq!(plan.last().unwrap().hi, None);
        let mut total = 0;
        for r in &plan {
            let pred = chunk_predicate_of(&info, r);
            read(&c, &info, &pred, 64, |b| {
                total += b.num_rows();
                Ok(true)
            })
            .unwrap();
        }
        assert_eq!(total, 1000);
    }

    #[test]
    fn a_bad_value_names_table_column_key_and_value() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, amount TEXT DECIMAL(5,2));
             INSERT INTO t VALUES (1, '1.50'), (2, '12345.6');",
        )
        .unwrap();
        let info = describe(&c, "t", None).unwrap();
        let err = read(&c, &info, "", 10, |_| Ok(true)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("table t, column amount, key 2"), "{msg}");
        assert!(msg.contains("'12345.6'"), "{msg}");
    }
}
