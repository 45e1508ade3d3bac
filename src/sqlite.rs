//! SQLite helpers shared by the SQLite source (the embedded demo), the SQLite target and the
//! demo generator: opening a database the same way everywhere, quoting names, and reading a
//! table into Arrow batches.
//!
//! SQLite has storage classes, not column types, so values are parsed from their stored form
//! (decimals, dates and timestamps as text, [`crate::model::codec`]) into the column's logical
//! type; a value that does not fit fails with table, column, key and value named.

use std::path::Path;

use arrow_array::{ArrayRef, RecordBatch};
use rusqlite::types::ValueRef;

use crate::error::{Error, Result};
use crate::model::builders::ColBuilder as B;
use crate::model::codec::{parse_date, parse_decimal, parse_timestamp};
use crate::model::{ColType, Column, TableInfo};

/// Opens a database read-only, or read-write (created when missing), waiting up to a minute
/// for a lock another connection holds.
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
            // An integer in a column of numeric affinity read as a double.
            (B::F64(b), ValueRef::Integer(x)) if (x as f64) as i128 == x as i128 => {
                b.append_value(x as f64)
            }
            (B::F64(_), ValueRef::Integer(x)) => {
                return Err(format!(
                    "integer {x} cannot be held exactly by a double: declare the column \
                     INTEGER or DECIMAL(p,s)"
                ));
            }
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
