//! StarRocks DDL generated from a source table's description.
//!
//! One place turns a [`TableInfo`] into `CREATE TABLE` and the few statements a full run needs
//! (staging copy, swap, rename, drop, comment), applying StarRocks' own table rules
//! (`docs/reference/starrocks.md`, DDL section) before StarRocks sees the statement: key columns
//! first, no FLOAT/DOUBLE/VARBINARY keys, PRIMARY KEY types, NOT NULL and its 128-byte encoded
//! limit, expression partitioning on one DATE/DATETIME column. A table StarRocks would refuse is
//! refused here with the table and column named, and the golden tests pin the exact text so a
//! reviewer can read what is created.

use crate::config::{Distribution, TableModel};
use crate::error::{Error, Result};
use crate::model::{ColType, TableInfo};

use super::names;

/// Largest VARCHAR and VARBINARY length StarRocks accepts, in bytes.
pub const MAX_VARCHAR_BYTES: u32 = 1_048_576;

/// Largest encoded PRIMARY KEY StarRocks accepts, in bytes.
pub const MAX_PRIMARY_KEY_BYTES: u64 = 128;

/// How tables are created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DdlOptions {
    pub model: TableModel,
    /// `None`: HASH of the key when the source has a usable primary key, else RANDOM.
    pub distribution: Option<Distribution>,
    /// `None`: StarRocks chooses (automatic bucket count since 2.5.7).
    pub buckets: Option<u32>,
    pub replication_num: Option<u32>,
    /// Source column name: `PARTITION BY date_trunc('day', col)`.
    pub partition: Option<String>,
    /// The table comment.
    pub comment: String,
}

/// `name` as a backquoted identifier (backquotes inside doubled).
pub use crate::targets::quote_ident;

/// `s` as a single-quoted string literal, `\` and `'` escaped with `\`.
pub fn quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `` `db`.`t` ``
fn qualified(db: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(db), quote_ident(table))
}

/// The lower-cased base of column `i`'s declared source type (`nvarchar(50)` -> `nvarchar`).
fn source_base(info: &TableInfo, i: usize) -> Option<String> {
    let t = info.source_type(i)?.to_ascii_lowercase();
    Some(t.split('(').next().unwrap_or("").trim().to_string())
}

/// Bytes column `i`'s StarRocks VARCHAR/VARBINARY holds: strings `min(3n, 1048576)` (a source
/// character is at most 3 UTF-8 bytes: BMP characters are <= 3 bytes and a supplementary one is 4
/// bytes for 2 UTF-16 units), binaries `min(n, 1048576)`, 1048576 when the source declares no
/// bound. `None` for other types.
pub fn byte_limit(info: &TableInfo, i: usize) -> Option<u32> {
    let n = info.max_len(i);
    match info.columns.get(i)?.ty {
        ColType::String => Some(n.map_or(MAX_VARCHAR_BYTES, |n| {
            n.max(1).saturating_mul(3).min(MAX_VARCHAR_BYTES)
        })),
        ColType::Binary => Some(n.map_or(MAX_VARCHAR_BYTES, |n| n.clamp(1, MAX_VARCHAR_BYTES))),
        _ => None,
    }
}

/// The StarRocks type of column `i`.
pub fn column_type(info: &TableInfo, i: usize) -> Result<String> {
    let col = info
        .columns
        .get(i)
        .ok_or_else(|| Error::internal(format!("table {}: no column {i}", info.name)))?;
    Ok(match col.ty {
        ColType::Bool => "BOOLEAN".to_string(),
        ColType::Int32 => match source_base(info, i).as_deref() {
            // StarRocks TINYINT is signed; SQL Server tinyint is 0..255.
            Some("tinyint" | "smallint") => "SMALLINT".to_string(),
            _ => "INT".to_string(),
        },
        ColType::Int64 => "BIGINT".to_string(),
        ColType::Float32 => "FLOAT".to_string(),
        ColType::Float64 => "DOUBLE".to_string(),
        ColType::Decimal { precision, scale } => {
            if !(1..=38).contains(&precision)
                || scale < 0
                || i16::from(scale) > i16::from(precision)
            {
                return Err(Error::data(format!(
                    "table {}: column {}: decimal({precision},{scale}) has no StarRocks DECIMAL \
                     (precision 1..38, scale 0..precision)",
                    info.name, col.name
                )));
            }
            format!("DECIMAL({precision},{scale})")
        }
        ColType::Date => "DATE".to_string(),
        ColType::Timestamp | ColType::TimestampTz => "DATETIME".to_string(),
        ColType::String => format!(
            "VARCHAR({})",
            byte_limit(info, i).unwrap_or(MAX_VARCHAR_BYTES)
        ),
        ColType::Binary => format!(
            "VARBINARY({})",
            byte_limit(info, i).unwrap_or(MAX_VARCHAR_BYTES)
        ),
    })
}

/// `CREATE DATABASE IF NOT EXISTS`.
pub fn create_database(db: &str) -> String {
    format!("CREATE DATABASE IF NOT EXISTS {}", quote_ident(db))
}

/// Index of the source column `name` (exact match first, then ASCII case-insensitive, as SQL
/// Server's default collations compare names).
fn find_column(info: &TableInfo, name: &str) -> Option<usize> {
    info.columns
        .iter()
        .position(|c| c.name == name)
        .or_else(|| {
            info.columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
        })
}

/// Whether a column of this type may be a DUPLICATE KEY (sort key) column: never FLOAT/DOUBLE
/// (StarRocks forbids them as keys) nor VARBINARY (not allowed as key or bucketing column).
fn duplicate_keyable(ty: ColType) -> bool {
    !matches!(ty, ColType::Float32 | ColType::Float64 | ColType::Binary)
}

/// Bytes column `i` takes in an encoded PRIMARY KEY, estimated from above: fixed-size types
/// their width; VARCHAR its declared byte length, plus 2 for the terminator each string gets
/// in a composite key. `Err(why)` for types StarRocks refuses in a PRIMARY KEY.
fn primary_key_bytes(
    info: &TableInfo,
    i: usize,
    sr_type: &str,
    composite: bool,
) -> std::result::Result<u64, String> {
    Ok(match info.columns[i].ty {
        ColType::Bool => 1,
        ColType::Int32 if sr_type == "SMALLINT" => 2,
        ColType::Int32 | ColType::Date => 4,
        ColType::Int64 | ColType::Timestamp | ColType::TimestampTz => 8,
        ColType::String => {
            u64::from(byte_limit(info, i).unwrap_or(MAX_VARCHAR_BYTES))
                + if composite { 2 } else { 0 }
        }
        ty @ (ColType::Decimal { .. } | ColType::Float32 | ColType::Float64 | ColType::Binary) => {
            return Err(format!(
                "its type {ty} ({sr_type}) cannot be part of a StarRocks PRIMARY KEY (allowed: \
                 BOOLEAN, integers, VARCHAR, DATE, DATETIME)"
            ));
        }
    })
}

/// Which columns lead the table as its key, and which the rows are bucketed by.
struct KeyPlan {
    /// Column indexes of the key, in key order.
    key: Vec<usize>,
    /// Columns for `DISTRIBUTED BY HASH`; `None`: RANDOM.
    hash: Option<Vec<usize>>,
}

/// The DUPLICATE KEY: the source primary key, or its longest prefix of key-able columns; without
/// one, the first key-able column in source order (a sort key only: rows are then bucketed
/// RANDOM unless told otherwise, because an arbitrary first column can skew buckets).
fn duplicate_plan(info: &TableInfo, opts: &DdlOptions) -> Result<KeyPlan> {
    let mut source_key = Vec::new();
    for name in &info.primary_key {
        match find_column(info, name) {
            Some(i) if duplicate_keyable(info.columns[i].ty) && !source_key.contains(&i) => {
                source_key.push(i)
            }
            _ => break,
        }
    }
    let key = if source_key.is_empty() {
        let first = info
            .columns
            .iter()
            .position(|c| duplicate_keyable(c.ty))
            .ok_or_else(|| {
                Error::config(format!(
                    "table {}: no column can be a StarRocks DUPLICATE KEY column (FLOAT, DOUBLE \
                     and VARBINARY cannot be keys); exclude the table or cast a column",
                    info.name
                ))
            })?;
        vec![first]
    } else {
        source_key.clone()
    };
    let hash = match opts.distribution {
        Some(Distribution::Random) => None,
        Some(Distribution::Hash) if source_key.is_empty() => {
            return Err(Error::config(format!(
                "table {}: distribution = \"hash\" needs a primary key of BOOLEAN, integer, \
                 DECIMAL, VARCHAR, DATE or DATETIME columns; the table has none (use \"random\")",
                info.name
            )));
        }
        Some(Distribution::Hash) | None if !source_key.is_empty() => Some(source_key),
        _ => None,
    };
    Ok(KeyPlan { key, hash })
}

/// The PRIMARY KEY: exactly the source primary key, checked against StarRocks' rules.
fn primary_plan(info: &TableInfo, opts: &DdlOptions, types: &[String]) -> Result<KeyPlan> {
    let t = &info.name;
    if info.primary_key.is_empty() {
        return Err(Error::config(format!(
            "table {t}: model = \"primary\" needs a source primary key and the table has none; \
             use model = \"duplicate\""
        )));
    }
    let composite = info.primary_key.len() > 1;
    let mut key = Vec::new();
    let mut bytes = 0u64;
    for name in &info.primary_key {
        let i = find_column(info, name).ok_or_else(|| {
            Error::config(format!(
                "table {t}: primary key column {name} is not loaded (excluded?); a StarRocks \
                 PRIMARY KEY table needs every key column"
            ))
        })?;
        let col = &info.columns[i];
        bytes += primary_key_bytes(info, i, &types[i], composite).map_err(|why| {
            Error::config(format!("table {t}: primary key column {}: {why}", col.name))
        })?;
        if col.nullable {
            return Err(Error::config(format!(
                "table {t}: primary key column {} is nullable; StarRocks PRIMARY KEY columns \
                 must be NOT NULL",
                col.name
            )));
        }
        if !key.contains(&i) {
            key.push(i);
        }
    }
    if bytes > MAX_PRIMARY_KEY_BYTES {
        let cols: Vec<String> = key
            .iter()
            .map(|&i| format!("{} {}", info.columns[i].name, types[i]))
            .collect();
        return Err(Error::config(format!(
            "table {t}: primary key ({}) may take up to {bytes} bytes encoded (VARCHAR counted at \
             its declared byte length, 3 per source character), over StarRocks' limit of \
             {MAX_PRIMARY_KEY_BYTES}; use model = \"duplicate\"",
            cols.join(", ")
        )));
    }
    if let Some(p) = &opts.partition
        && let Some(pi) = find_column(info, p)
        && !key.contains(&pi)
    {
        return Err(Error::config(format!(
            "table {t}: partition column {} is not part of the primary key ({}); a StarRocks \
             PRIMARY KEY table must include its partition column in the key",
            info.columns[pi].name,
            info.primary_key.join(", ")
        )));
    }
    let hash = match opts.distribution {
        Some(Distribution::Random) => {
            return Err(Error::config(format!(
                "table {t}: distribution = \"random\" is not available for PRIMARY KEY tables; \
                 use \"hash\" or leave it unset"
            )));
        }
        Some(Distribution::Hash) | None => Some(key.clone()),
    };
    Ok(KeyPlan { key, hash })
}

/// The model of a table created for `info`: PRIMARY KEY for a table of an incremental workflow
/// table that has a key (its runs upsert by that key, which a DUPLICATE KEY table cannot),
/// else the configured one.
pub fn model_for(configured: TableModel, info: &TableInfo) -> TableModel {
    if info.incremental.is_some() && !info.primary_key.is_empty() {
        TableModel::Primary
    } else {
        configured
    }
}

/// `CREATE TABLE IF NOT EXISTS` for `info` as `db`.`table`.
///
/// Columns are named by [`names::column_names`], key columns first in key order and the others
/// in source order (the loader addresses columns by name), one per line, `NULL`/`NOT NULL` from
/// the source, with a comment naming the source column when the name had to change.
pub fn create_table(db: &str, table: &str, info: &TableInfo, opts: &DdlOptions) -> Result<String> {
    let t = &info.name;
    if info.columns.is_empty() {
        return Err(Error::config(format!("table {t}: no columns to create")));
    }
    let names = names::column_names(info)?;
    let types = (0..info.columns.len())
        .map(|i| column_type(info, i))
        .collect::<Result<Vec<_>>>()?;
    let partition = match &opts.partition {
        None => None,
        Some(p) => {
            let i = find_column(info, p).ok_or_else(|| {
                Error::config(format!(
                    "table {t}: partition column {p} is not a loaded column"
                ))
            })?;
            if !matches!(
                info.columns[i].ty,
                ColType::Date | ColType::Timestamp | ColType::TimestampTz
            ) {
                return Err(Error::config(format!(
                    "table {t}: partition column {p} is {}; day partitions need a DATE or \
                     DATETIME column",
                    types[i]
                )));
            }
            Some(i)
        }
    };
    if opts.buckets == Some(0) {
        return Err(Error::config(format!(
            "table {t}: buckets must be at least 1"
        )));
    }
    if opts.replication_num == Some(0) {
        return Err(Error::config(format!(
            "table {t}: replication_num must be at least 1"
        )));
    }
    let (plan, key_kind) = match opts.model {
        TableModel::Duplicate => (duplicate_plan(info, opts)?, "DUPLICATE KEY"),
        TableModel::Primary => (primary_plan(info, opts, &types)?, "PRIMARY KEY"),
    };
    let list = |cols: &[usize]| {
        cols.iter()
            .map(|&i| quote_ident(&names[i]))
            .collect::<Vec<_>>()
            .join(", ")
    };

    let order: Vec<usize> = plan
        .key
        .iter()
        .copied()
        .chain((0..info.columns.len()).filter(|i| !plan.key.contains(i)))
        .collect();
    let mut lines = Vec::with_capacity(order.len());
    for &i in &order {
        let col = &info.columns[i];
        // PRIMARY KEY columns are checked NOT NULL above.
        let null = if col.nullable { "NULL" } else { "NOT NULL" };
        let mut line = format!("  {} {} {null}", quote_ident(&names[i]), types[i]);
        if names[i] != col.name {
            line.push_str(&format!(
                " COMMENT {}",
                quote_str(&format!("source column: {}", col.name))
            ));
        }
        lines.push(line);
    }

    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n) ENGINE=OLAP\n{key_kind}({})\nCOMMENT {}",
        qualified(db, table),
        lines.join(",\n"),
        list(&plan.key),
        quote_str(&opts.comment)
    );
    if let Some(i) = partition {
        sql.push_str(&format!(
            "\nPARTITION BY date_trunc('day', {})",
            quote_ident(&names[i])
        ));
    }
    match &plan.hash {
        Some(cols) => sql.push_str(&format!("\nDISTRIBUTED BY HASH({})", list(cols))),
        None => sql.push_str("\nDISTRIBUTED BY RANDOM"),
    }
    if let Some(b) = opts.buckets {
        sql.push_str(&format!(" BUCKETS {b}"));
    }
    if let Some(r) = opts.replication_num {
        sql.push_str(&format!("\nPROPERTIES (\"replication_num\" = \"{r}\")"));
    }
    Ok(sql)
}

/// An empty copy of `table` named `stage`, same schema, keys, partitioning and properties.
/// `IF NOT EXISTS`, so a resumed run keeps what its own labels already loaded into the stage.
pub fn create_like(db: &str, stage: &str, table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} LIKE {}",
        qualified(db, stage),
        qualified(db, table)
    )
}

/// Atomically exchanges the names (and contents) of `table` and `stage`.
pub fn swap(db: &str, table: &str, stage: &str) -> String {
    format!(
        "ALTER TABLE {} SWAP WITH {}",
        qualified(db, table),
        quote_ident(stage)
    )
}

pub fn rename(db: &str, from: &str, to: &str) -> String {
    format!(
        "ALTER TABLE {} RENAME {}",
        qualified(db, from),
        quote_ident(to)
    )
}

/// `FORCE`: dropped at once, not kept in the recycle bin (staging tables are scratch).
pub fn drop_table(db: &str, table: &str) -> String {
    format!("DROP TABLE IF EXISTS {} FORCE", qualified(db, table))
}

pub fn set_comment(db: &str, table: &str, comment: &str) -> String {
    format!(
        "ALTER TABLE {} COMMENT = {}",
        qualified(db, table),
        quote_str(comment)
    )
}

#[cfg(test)]
mod tests;
