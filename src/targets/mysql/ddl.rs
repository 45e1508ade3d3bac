//! The MySQL tables dag creates: the type mapping turned into `CREATE TABLE` under the server's
//! row-size and key-length limits, and columns the source gained added to existing tables.

use std::collections::HashSet;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use super::MysqlTarget;
use super::names::{check_name, quote, string_literal};
use crate::error::{Error, Result};
use crate::model::{ColType, TableInfo};

/// Row-size accounting (see [`MysqlTarget::create_table_sql`]), measured on MariaDB 10.11.
/// The server's limit on a row's declared size, BLOB/TEXT bodies not counted, with a margin.
const ROW_LIMIT: u64 = 65_535 - 32;
/// InnoDB's limit on the part of a row kept in its 16 KiB page, and the record header around it.
const PAGE_LIMIT: u64 = 8_126;
const PAGE_HEADER: u64 = 26;
/// What a TEXT/BLOB column counts towards the row size (length bytes and pointer).
const LOB_ROW: u64 = 12;
/// What a column that InnoDB may store off-page (over 255 bytes) counts in the page.
const OFF_PAGE: u64 = 21;
/// InnoDB's longest index key, in bytes (DYNAMIC rows).
const KEY_LIMIT: u64 = 3_072;

impl MysqlTarget {
    /// Columns the source gained since the user made the table (`create_tables = false`) are
    /// added to the staging table before rows flow, so the swap publishes them; dropped or
    /// retyped columns were refused by extract already.
    pub(super) async fn add_new_columns(
        &self,
        c: &mut Conn,
        info: &TableInfo,
        stage: &str,
    ) -> Result<()> {
        let have: Vec<String> = c
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&self.database, stage),
            )
            .await
            .map_err(|e| self.at(e))?;
        for (i, col) in info.columns.iter().enumerate() {
            // MySQL column names ignore case.
            if have.iter().any(|h| h.eq_ignore_ascii_case(&col.name)) {
                continue;
            }
            check_name(&col.name, &format!("table {}: column", info.name))?;
            let d = decl(info, i, None);
            let sql = d.lob.map_or(d.sql, |l| l.sql);
            tracing::info!(table = %info.name, column = %col.name, "adding the new column to the target table");
            c.query_drop(format!(
                "ALTER TABLE {} ADD COLUMN {} {}{}",
                self.qualified(stage),
                quote(&col.name),
                sql,
                if col.nullable { "" } else { " NOT NULL" }
            ))
            .await
            .map_err(|e| self.at(e).context(format!("table {}", info.name)))?;
        }
        Ok(())
    }
    /// The `CREATE TABLE IF NOT EXISTS` statement for `table_name` in the target database, from
    /// the type mapping (MySQL column of `docs/reference/type-mapping.md`).
    ///
    /// Strings and binaries are VARCHAR/VARBINARY sized from the source's declared length while
    /// the row fits, else TEXT/BLOB types. Two limits decide (both measured on MariaDB 10.11):
    /// the server's 65,535-byte row size, where VARCHAR(n) counts 4n+2 bytes in utf8mb4 and a
    /// TEXT 12, and InnoDB's 8,126 bytes kept in the page, where a column of at most 255 bytes
    /// counts whole and a longer one (which may go off-page) 21. While either is exceeded, the
    /// non-key column that saves most becomes TEXT/BLOB (ties: the first such column). Key
    /// columns stay VARCHAR/VARBINARY so they can be indexed: unbounded ones share InnoDB's
    /// 3,072-byte key limit (VARCHAR(768) for a lone one); a key that cannot fit, or with a
    /// nullable or unknown column, is left out (rows are still checked by the source's key).
    pub fn create_table_sql(
        &self,
        info: &TableInfo,
        table_name: &str,
        comment: &str,
    ) -> Result<String> {
        check_name(&info.name, "table")?;
        check_name(table_name, "table")?;
        if info.columns.is_empty() {
            return Err(Error::config(format!("table {}: no columns", info.name)));
        }
        let mut seen = HashSet::new();
        for col in &info.columns {
            check_name(&col.name, &format!("table {}: column", info.name))?;
            // MySQL column names ignore case.
            if !seen.insert(col.name.to_lowercase()) {
                return Err(Error::config(format!(
                    "table {}: two columns named {} (MySQL column names ignore case)",
                    info.name, col.name
                )));
            }
        }
        let key = key_plan(info);
        let mut decls: Vec<Decl> = (0..info.columns.len())
            .map(|i| decl(info, i, key.as_ref().and_then(|k| k.get(&i).copied())))
            .collect();
        let nullable = info.columns.iter().filter(|c| c.nullable).count() as u64;
        let null_bytes = nullable.div_ceil(8);
        loop {
            let row: u64 = decls.iter().map(|d| d.row).sum::<u64>() + null_bytes;
            let page: u64 = decls.iter().map(|d| d.page).sum::<u64>() + null_bytes + PAGE_HEADER;
            let over_row = row > ROW_LIMIT;
            if !over_row && page <= PAGE_LIMIT {
                break;
            }
            let saving = |d: &Decl| {
                d.lob.as_ref().map(|l| {
                    if over_row {
                        d.row.saturating_sub(l.row)
                    } else {
                        d.page.saturating_sub(l.page)
                    }
                })
            };
            let best = decls
                .iter()
                .enumerate()
                .filter_map(|(i, d)| saving(d).filter(|s| *s > 0).map(|s| (s, i)))
                // Largest saving, then the first column.
                .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            match best {
                Some((_, i)) => {
                    if let Some(l) = decls[i].lob.take() {
                        decls[i] = *l;
                    }
                }
                // Nothing left to shrink: let the server judge (its error names the table).
                None => break,
            }
        }
        let mut lines: Vec<String> = info
            .columns
            .iter()
            .zip(&decls)
            .map(|(c, d)| {
                format!(
                    "  {} {}{}",
                    quote(&c.name),
                    d.sql,
                    if c.nullable { "" } else { " NOT NULL" }
                )
            })
            .collect();
        if key.is_some() {
            lines.push(format!(
                "  PRIMARY KEY ({})",
                info.primary_key
                    .iter()
                    .map(|k| quote(k))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(format!(
            "CREATE TABLE IF NOT EXISTS {} (\n{}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 \
             COLLATE=utf8mb4_bin COMMENT={}",
            self.qualified(table_name),
            lines.join(",\n"),
            string_literal(comment)
        ))
    }
}

/// One column's declaration and what it counts towards the row limits.
struct Decl {
    sql: String,
    /// Bytes towards the server's row size.
    row: u64,
    /// Bytes towards InnoDB's in-page size.
    page: u64,
    /// The TEXT/BLOB declaration it becomes when the row is too wide (none: it stays).
    lob: Option<Box<Decl>>,
}

impl Decl {
    fn fixed(sql: impl Into<String>, bytes: u64) -> Decl {
        Decl {
            sql: sql.into(),
            row: bytes,
            page: bytes,
            lob: None,
        }
    }

    fn lob(sql: &str) -> Decl {
        Decl {
            sql: sql.into(),
            row: LOB_ROW,
            page: OFF_PAGE,
            lob: None,
        }
    }

    /// A variable-length column of at most `bytes` bytes.
    fn var(sql: String, bytes: u64, lob: Option<Decl>) -> Decl {
        Decl {
            sql,
            row: bytes + if bytes > 255 { 2 } else { 1 },
            page: if bytes > 255 { OFF_PAGE } else { bytes + 1 },
            lob: lob.map(Box::new),
        }
    }
}

fn text_type(bytes: u64) -> &'static str {
    match bytes {
        0..=65_535 => "TEXT",
        65_536..=16_777_215 => "MEDIUMTEXT",
        _ => "LONGTEXT",
    }
}

fn blob_type(bytes: u64) -> &'static str {
    match bytes {
        0..=65_535 => "BLOB",
        65_536..=16_777_215 => "MEDIUMBLOB",
        _ => "LONGBLOB",
    }
}

/// Bytes of a DECIMAL(p,s) (9 digits in 4 bytes, the rest in 1 to 4).
pub(super) fn decimal_bytes(precision: u8, scale: i8) -> u64 {
    const REST: [u64; 9] = [0, 1, 1, 2, 2, 3, 3, 4, 4];
    let part = |d: u64| d / 9 * 4 + REST[(d % 9) as usize];
    let s = u64::try_from(scale.max(0)).unwrap_or(0);
    part(u64::from(precision).saturating_sub(s)) + part(s)
}

fn source_base(info: &TableInfo, i: usize) -> String {
    info.source_type(i)
        .unwrap_or("")
        .split('(')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Column `i`'s declaration; `key_len`: it is a key column of that many characters (strings) or
/// bytes (binaries).
fn decl(info: &TableInfo, i: usize, key_len: Option<u64>) -> Decl {
    let col = &info.columns[i];
    let base = source_base(info, i);
    let max = info.max_len(i).map(u64::from);
    match col.ty {
        ColType::Bool => Decl::fixed("BOOLEAN", 1),
        ColType::Int32 => match base.as_str() {
            "tinyint" => Decl::fixed("TINYINT UNSIGNED", 1),
            "smallint" => Decl::fixed("SMALLINT", 2),
            _ => Decl::fixed("INT", 4),
        },
        ColType::Int64 => Decl::fixed("BIGINT", 8),
        ColType::Float32 => Decl::fixed("FLOAT", 4),
        ColType::Float64 => Decl::fixed("DOUBLE", 8),
        ColType::Decimal { precision, scale } => Decl::fixed(
            format!("DECIMAL({precision},{scale})"),
            decimal_bytes(precision, scale),
        ),
        ColType::Date => Decl::fixed("DATE", 3),
        ColType::Timestamp | ColType::TimestampTz => Decl::fixed("DATETIME(6)", 8),
        ColType::String => match (key_len, max) {
            (Some(n), _) => Decl::var(format!("VARCHAR({n})"), 4 * n, None),
            (None, Some(36)) if base == "uniqueidentifier" => {
                Decl::var("CHAR(36)".into(), 144, Some(Decl::lob("TEXT")))
            }
            (None, Some(n)) if 4 * n <= 65_532 => Decl::var(
                format!("VARCHAR({n})"),
                4 * n,
                Some(Decl::lob(text_type(4 * n))),
            ),
            (None, Some(n)) => Decl::lob(text_type(4 * n)),
            (None, None) => Decl::lob("LONGTEXT"),
        },
        ColType::Binary => match (key_len, max) {
            (Some(n), _) => Decl::var(format!("VARBINARY({n})"), n, None),
            (None, Some(n)) if n <= 65_532 => {
                Decl::var(format!("VARBINARY({n})"), n, Some(Decl::lob(blob_type(n))))
            }
            (None, Some(n)) => Decl::lob(blob_type(n)),
            (None, None) => Decl::lob("LONGBLOB"),
        },
    }
}

/// Lengths of the primary key's string and binary columns (characters and bytes), `None` when
/// the table gets no primary key (see [`MysqlTarget::create_table_sql`]).
pub(super) fn key_plan(info: &TableInfo) -> Option<std::collections::HashMap<usize, u64>> {
    if info.primary_key.is_empty() {
        return None;
    }
    let skip = |why: &str| {
        tracing::warn!(table = %info.name, "MySQL table created without its primary key: {why}");
        None
    };
    let mut idx = Vec::new();
    for k in &info.primary_key {
        match info.columns.iter().position(|c| &c.name == k) {
            Some(i) if !info.columns[i].nullable => idx.push(i),
            Some(_) => return skip(&format!("key column {k} is nullable")),
            None => return skip(&format!("key column {k} is not a column")),
        }
    }
    let mut used = 0u64;
    let mut open = Vec::new();
    let mut lens = std::collections::HashMap::new();
    for &i in &idx {
        let col = &info.columns[i];
        match (col.ty, info.max_len(i).map(u64::from)) {
            (ColType::String, Some(n)) => {
                used += 4 * n;
                lens.insert(i, n);
            }
            (ColType::Binary, Some(n)) => {
                used += n;
                lens.insert(i, n);
            }
            (ColType::String | ColType::Binary, None) => open.push(i),
            _ => used += decl(info, i, None).row,
        }
    }
    if used > KEY_LIMIT {
        return skip("its columns are longer than InnoDB's 3072-byte key limit");
    }
    if !open.is_empty() {
        let share = (KEY_LIMIT - used) / open.len() as u64;
        for i in open {
            let n = if info.columns[i].ty == ColType::String {
                share / 4
            } else {
                share
            };
            if n == 0 {
                return skip("no room left under InnoDB's 3072-byte key limit");
            }
            lens.insert(i, n);
        }
    }
    Some(lens)
}
