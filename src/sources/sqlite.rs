//! SQLite as a source (the embedded demo).
//!
//! SQLite has storage classes, not column types, so a column's logical type comes from its
//! declared type (see [`decl_type`]); values are read by the shared reader in [`crate::sqlite`],
//! straight into Arrow builders, one bounded batch at a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::{Piece, blocking};
use crate::config::TableOverride;
use crate::error::{Error, Result};
use crate::model::codec::{parse_date, parse_timestamp};
use crate::model::fingerprint::Digest128;
use crate::model::{ChunkRange, ColType, Column, TableInfo};
use crate::sqlite::{open, quote, read};

/// A SQLite database file, possibly the generated demo.
#[derive(Debug, Clone)]
pub struct SqliteSource {
    path: PathBuf,
    /// Rows of the demo's big table, when the database is the generated demo.
    demo: Option<u64>,
}

impl SqliteSource {
    pub fn new(path: &Path, demo: Option<u64>) -> SqliteSource {
        SqliteSource {
            path: path.to_path_buf(),
            demo,
        }
    }

    pub fn describe_location(&self) -> String {
        format!("sqlite {}", self.path.display())
    }

    /// Creates the embedded demo database if it is configured and missing.
    pub async fn prepare(&self) -> Result<()> {
        match self.demo {
            Some(rows) => {
                let path = self.path.clone();
                blocking(move || {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    let made = crate::demo::ensure(&path, rows)
                        .map_err(|e| Error::internal(e.to_string()))?;
                    if made {
                        tracing::info!(path = %path.display(), "created the demo source database");
                    }
                    Ok(())
                })
                .await
            }
            None => {
                if self.path.exists() {
                    Ok(())
                } else {
                    Err(Error::config(format!(
                        "source.path: SQLite database {} does not exist",
                        self.path.display()
                    )))
                }
            }
        }
    }

    pub async fn tables(&self) -> Result<Vec<String>> {
        let path = self.path.clone();
        blocking(move || list_tables(&open(&path, false)?)).await
    }

    pub async fn describe(&self, table: &str, ov: Option<&TableOverride>) -> Result<TableInfo> {
        let key = ov.and_then(|o| o.chunk_key.clone());
        let (path, table) = (self.path.clone(), table.to_string());
        blocking(move || describe(&open(&path, false)?, &table, key.as_deref())).await
    }

    pub async fn plan_chunks(&self, info: &TableInfo, chunk_rows: u64) -> Result<Vec<ChunkRange>> {
        let (path, info) = (self.path.clone(), info.clone());
        blocking(move || plan_chunks(&open(&path, false)?, &info, chunk_rows)).await
    }

    pub async fn cursor_max(
        &self,
        info: &TableInfo,
        cursor: &str,
    ) -> Result<Option<crate::model::CursorValue>> {
        let (path, info, cursor) = (self.path.clone(), info.clone(), cursor.to_string());
        blocking(move || cursor_max(&open(&path, false)?, &info, &cursor)).await
    }

    /// Days (since 1970-01-01) of the earliest and the latest value of a DATE/DATETIME column
    /// (stored as text), `None` when no row has one.
    pub async fn day_span(&self, info: &TableInfo, column: &str) -> Result<Option<(i64, i64)>> {
        let (path, table, column) = (self.path.clone(), info.name.clone(), column.to_string());
        blocking(move || {
            let c = open(&path, false)?;
            let (lo, hi): (Option<String>, Option<String>) = c.query_row(
                &format!(
                    "SELECT MIN({0}), MAX({0}) FROM {1}",
                    quote(&column),
                    quote(&table)
                ),
                [],
                |r| Ok((r.get(0).ok().flatten(), r.get(1).ok().flatten())),
            )?;
            let day = |t: &str| {
                parse_date(t)
                    .map(i64::from)
                    .or_else(|| parse_timestamp(t).map(|us| us.div_euclid(86_400_000_000)))
            };
            Ok(lo.zip(hi).and_then(|(a, b)| Some((day(&a)?, day(&b)?))))
        })
        .await
    }

    pub async fn count(&self, table: &str) -> Result<u64> {
        let (path, table) = (self.path.clone(), table.to_string());
        blocking(move || {
            let c = open(&path, false)?;
            let n: i64 = c.query_row(
                &format!("SELECT COUNT(*) FROM {}", quote(&table)),
                [],
                |r| r.get(0),
            )?;
            Ok(n as u64)
        })
        .await
    }

    /// Reads on the blocking pool, one batch at a time into the channel of capacity one.
    pub fn stream_chunk(
        &self,
        info: &TableInfo,
        range: ChunkRange,
        batch_rows: usize,
    ) -> mpsc::Receiver<Result<Piece>> {
        let (tx, rx) = mpsc::channel(1);
        let (path, info) = (self.path.clone(), info.clone());
        tokio::task::spawn_blocking(move || {
            let res = (|| {
                let c = open(&path, false)?;
                let pred = chunk_predicate_of(&info, &range);
                // Fingerprinting here keeps the hashing on the reader's thread, beside the
                // writer's Parquet encoding rather than in front of it.
                read(&c, &info, &pred, batch_rows, |b| {
                    let mut d = Digest128::default();
                    d.add_batch(&b).map_err(Error::internal)?;
                    let piece = Piece {
                        batch: b,
                        digest: d,
                        lossy: BTreeMap::new(),
                    };
                    Ok(tx.blocking_send(Ok(piece)).is_ok())
                })
            })();
            if let Err(e) = res {
                let _ = tx.blocking_send(Err(e));
            }
        });
        rx
    }
}

/// Maps a declared SQLite column type to a logical type: first the type names dag reads as
/// such (`INT` as int, `DECIMAL(p,s)`, `DATE`, `DATETIME`, ...), then, for any other declared
/// type, SQLite's own column affinity rules (<https://www.sqlite.org/datatype3.html>, 3.1), in
/// their order: a name containing `INT` is a long, one containing `CHAR`, `CLOB` or `TEXT` a
/// string, `BLOB` binary, no type at all a string (integers kept as their digits), `REAL`,
/// `FLOA` or `DOUB` a double, and everything else (numeric affinity: a bare `NUMERIC`,
/// `DECIMAL`, `NUMBER`, ...) a double, which is what SQLite stores such values as unless they
/// are integers; an integer a double cannot hold exactly fails the read, naming it. `None` only
/// for a name dag knows with arguments it cannot take (`DECIMAL(50,2)`).
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
        "DECIMAL" | "NUMERIC" if args.is_some() => {
            let mut it = args?.split(',').map(|s| s.trim().parse::<i64>());
            let p = it.next()?.ok()?;
            let s = it.next().unwrap_or(Ok(0)).ok()?;
            if !(1..=38).contains(&p) || s < 0 || s > p || it.next().is_some() {
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
        _ => affinity_type(&d),
    })
}

/// The logical type of SQLite's column affinity for a declared type dag has no name for.
fn affinity_type(decl: &str) -> ColType {
    let has = |w: &str| decl.contains(w);
    if has("INT") {
        ColType::Int64
    } else if has("CHAR") || has("CLOB") || has("TEXT") {
        ColType::String
    } else if has("BLOB") {
        ColType::Binary
    } else if decl.is_empty() {
        ColType::String
    } else {
        // REAL affinity, and numeric affinity, whose values SQLite stores as integers or reals.
        ColType::Float64
    }
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
fn cursor_literal(v: crate::model::CursorValue) -> String {
    use crate::model::CursorValue as V;
    match v {
        V::Int(n) => n.to_string(),
        V::Date(_) => format!("'{v}'"),
        V::Micros(us) => match chrono::DateTime::from_timestamp_micros(us) {
            Some(t) => format!("'{}'", t.format("%Y-%m-%d %H:%M:%S%.6f")),
            None => us.to_string(),
        },
    }
}

/// The cursor range of an incremental run (see `mssql::chunks::cursor_condition`).
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
) -> Result<Option<crate::model::CursorValue>> {
    use crate::model::CursorValue as V;
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

#[cfg(test)]
mod tests {
    use arrow_array::Array;

    use super::*;

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
    fn declared_types_follow_sqlite_affinity_where_dag_has_no_name_for_them() {
        let cases = [
            ("NUMERIC", Some(ColType::Float64)),
            (
                "numeric(10,2)",
                Some(ColType::Decimal {
                    precision: 10,
                    scale: 2,
                }),
            ),
            ("DECIMAL", Some(ColType::Float64)),
            ("NUMBER", Some(ColType::Float64)),
            ("VARCHAR(255)", Some(ColType::String)),
            ("VARYING CHARACTER(255)", Some(ColType::String)),
            ("NATIVE CHARACTER(70)", Some(ColType::String)),
            ("UNSIGNED BIG INT", Some(ColType::Int64)),
            ("INT8", Some(ColType::Int64)),
            ("FLOATING POINT", Some(ColType::Int64)), // contains "INT": SQLite's own rule 1
            ("", Some(ColType::String)),
            ("ANY", Some(ColType::Float64)),
            ("LONGBLOB", Some(ColType::Binary)),
            ("DOUBLE(10)", Some(ColType::Float64)),
            ("DECIMAL(50,2)", None),
            ("NUMERIC(10,2,1)", None),
        ];
        for (decl, want) in cases {
            assert_eq!(decl_type(decl), want, "{decl:?}");
        }
    }

    /// SQLite itself is the oracle: the storage classes it gives the same three values in a
    /// column of each declared type reveal the column's affinity, which our mapping must follow
    /// (INTEGER and NUMERIC affinity store alike, so either numeric type passes there).
    #[test]
    fn affinity_mapping_agrees_with_how_sqlite_stores_values() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        for decl in [
            "NUMERIC",
            "DECIMAL",
            "NUMBER",
            "GEOGRAPHY",
            "ANY",
            "VARYING CHARACTER(255)",
            "NATIVE CHARACTER(70)",
            "UNSIGNED BIG INT",
            "INT8",
            "INT2",
            "FLOATING POINT",
            "LONGBLOB",
            "DOUBLE(10)",
            "REALLY",
            "",
            "JSON",
            "CLOB2",
            "DOUB",
        ] {
            c.execute_batch(&format!(
                "DROP TABLE IF EXISTS a; CREATE TABLE a (c {decl});"
            ))
            .unwrap();
            c.execute_batch("INSERT INTO a VALUES ('12'), ('1.5'), (7);")
                .unwrap();
            let classes: Vec<String> = c
                .prepare("SELECT typeof(c) FROM a ORDER BY rowid")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            let classes: Vec<&str> = classes.iter().map(String::as_str).collect();
            let ours = decl_type(decl).unwrap();
            let ok = match classes.as_slice() {
                ["text", "text", "text"] => ours == ColType::String,
                ["real", "real", "real"] => ours == ColType::Float64,
                ["integer", "real", "integer"] => {
                    matches!(ours, ColType::Int64 | ColType::Float64)
                }
                ["text", "text", "integer"] => matches!(ours, ColType::Binary | ColType::String),
                other => panic!("{decl:?}: SQLite stored {other:?}"),
            };
            assert!(ok, "{decl:?}: SQLite stored {classes:?}, we read {ours:?}");
        }
    }

    #[test]
    fn affinity_columns_read_what_sqlite_stored_or_fail_naming_the_value() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, n NUMERIC, u, v VARYING CHARACTER(9));
             INSERT INTO t VALUES (1, 12.5, 'text', 'a'), (2, 7, 42, 'b'), (3, NULL, NULL, NULL);",
        )
        .unwrap();
        let info = describe(&c, "t", None).unwrap();
        let tys: Vec<ColType> = info.columns.iter().map(|c| c.ty).collect();
        assert_eq!(
            tys,
            [
                ColType::Int64,
                ColType::Float64,
                ColType::String,
                ColType::String
            ]
        );
        let mut got = Vec::new();
        read(&c, &info, "", 64, |b| {
            got.push(b);
            Ok(true)
        })
        .unwrap();
        let b = &got[0];
        let n = b
            .column(1)
            .as_any()
            .downcast_ref::<arrow_array::Float64Array>()
            .unwrap();
        assert_eq!((n.value(0), n.value(1), n.is_null(2)), (12.5, 7.0, true));
        let u = b
            .column(2)
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!((u.value(0), u.value(1), u.is_null(2)), ("text", "42", true));

        // A numeric-affinity integer a double cannot hold exactly is an error, not a rounding.
        c.execute("INSERT INTO t VALUES (4, 9007199254740993, NULL, NULL)", [])
            .unwrap();
        let e = read(&c, &info, "", 64, |_| Ok(true)).unwrap_err();
        assert!(e.to_string().contains("9007199254740993"), "{e}");
        assert!(e.to_string().contains("column n"), "{e}");
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
