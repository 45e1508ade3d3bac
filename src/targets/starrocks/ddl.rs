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
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::model::Column;
    use crate::model::ColumnOrigin;

    /// The [`ColType`] `map_type` in `sources/mssql` gives each SQL Server type.
    fn mssql_type(sql: &str) -> ColType {
        let t = sql.to_ascii_lowercase();
        let base = t.split('(').next().unwrap().trim();
        let args: Vec<u8> = t
            .split_once('(')
            .map(|(_, a)| {
                a.trim_end_matches(')')
                    .split(',')
                    .filter_map(|x| x.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        match base {
            "bit" => ColType::Bool,
            "tinyint" | "smallint" | "int" => ColType::Int32,
            "bigint" | "timestamp" | "rowversion" => ColType::Int64,
            "decimal" | "numeric" => ColType::Decimal {
                precision: args.first().copied().unwrap_or(18),
                scale: args.get(1).copied().unwrap_or(0) as i8,
            },
            "money" => ColType::Decimal {
                precision: 19,
                scale: 4,
            },
            "smallmoney" => ColType::Decimal {
                precision: 10,
                scale: 4,
            },
            "real" => ColType::Float32,
            "float" => ColType::Float64,
            "date" => ColType::Date,
            "datetime" | "smalldatetime" | "datetime2" => ColType::Timestamp,
            "datetimeoffset" => ColType::TimestampTz,
            "binary" | "varbinary" | "image" => ColType::Binary,
            // time, (n)char, (n)varchar, (n)text, xml, uniqueidentifier, sql_variant,
            // hierarchyid, geography, geometry
            _ => ColType::String,
        }
    }

    /// A SQL Server table from `(name, declared type, nullable)`.
    fn mssql_table(name: &str, cols: &[(&str, &str, bool)], pk: &[&str]) -> TableInfo {
        let mut info = TableInfo::new(
            name,
            cols.iter()
                .map(|(n, t, nullable)| Column {
                    name: n.to_string(),
                    ty: mssql_type(t),
                    nullable: *nullable,
                })
                .collect(),
            None,
            0,
        );
        info.origin = cols
            .iter()
            .map(|(n, t, _)| ColumnOrigin {
                expr: format!("[{n}]"),
                declared: t.to_string(),
                identity: false,
                computed: false,
            })
            .collect();
        info.primary_key = pk.iter().map(|s| s.to_string()).collect();
        info
    }

    /// 66 columns: every SQL Server type the source maps, then variations (names that need
    /// sanitizing, other lengths and scales, NOT NULL). Key columns sit mid-table in source order.
    fn wide() -> TableInfo {
        let cols: &[(&str, &str, bool)] = &[
            ("bit_col", "bit", true),
            ("LineNo", "smallint", false),
            ("tiny_col", "tinyint", true),
            ("OrderId", "int", false),
            ("small_col", "smallint", true),
            ("int_col", "int", true),
            ("big_col", "bigint", true),
            ("dec_38_10", "decimal(38,10)", true),
            ("num_9_2", "numeric(9,2)", true),
            ("money_col", "money", true),
            ("smallmoney_col", "smallmoney", true),
            ("float_col", "float", true),
            ("real_col", "real", true),
            ("date_col", "date", true),
            ("time_col", "time(7)", true),
            ("datetime_col", "datetime", true),
            ("smalldatetime_col", "smalldatetime", true),
            ("datetime2_col", "datetime2(7)", true),
            ("dto_col", "datetimeoffset(7)", true),
            ("char_10", "char(10)", true),
            ("varchar_50", "varchar(50)", true),
            ("varchar_max", "varchar(max)", true),
            ("text_col", "text", true),
            ("nchar_5", "nchar(5)", true),
            ("nvarchar_100", "nvarchar(100)", true),
            ("nvarchar_max", "nvarchar(max)", true),
            ("ntext_col", "ntext", true),
            ("xml_col", "xml", true),
            ("binary_16", "binary(16)", true),
            ("varbinary_200", "varbinary(200)", true),
            ("varbinary_max", "varbinary(max)", true),
            ("image_col", "image", true),
            ("guid_col", "uniqueidentifier", true),
            ("rowversion_col", "rowversion", false),
            ("variant_col", "sql_variant", true),
            ("hier_col", "hierarchyid", true),
            ("geog_col", "geography", true),
            ("geom_col", "geometry", true),
            ("Customer Name", "nvarchar(200)", false),
            ("e-mail", "varchar(320)", true),
            ("1st_contact", "datetime2(3)", true),
            ("Prix€", "money", true),
            ("_internal", "int", true),
            ("__shadow", "bit", true),
            ("Straße", "nvarchar(60)", true),
            ("Qty", "decimal(18,0)", false),
            ("Ratio", "decimal(5,5)", true),
            ("Amount", "numeric(38,0)", true),
            ("Big Money", "money", false),
            ("created_at", "datetime2(0)", false),
            ("updated_at", "datetimeoffset(0)", true),
            ("birth_date", "date", false),
            ("start_time", "time(0)", true),
            ("code", "char(1)", true),
            ("status", "varchar(20)", false),
            ("notes", "nvarchar(4000)", true),
            ("blob", "varbinary(8000)", true),
            ("hash", "binary(32)", false),
            ("flag", "bit", false),
            ("level", "tinyint", false),
            ("score", "real", false),
            ("weight", "float", true),
            ("ticks", "bigint", false),
            ("ver", "timestamp", false),
            ("comment", "ntext", true),
            ("doc", "xml", true),
        ];
        assert_eq!(cols.len(), 66);
        mssql_table("dbo.OrderLines", cols, &["OrderId", "LineNo"])
    }

    fn partitioned() -> TableInfo {
        mssql_table(
            "sales.Events",
            &[
                ("Kind", "varchar(20)", false),
                ("OccurredAt", "datetime2(3)", false),
                ("EventId", "bigint", false),
                ("Payload", "nvarchar(max)", true),
                ("Amount", "decimal(12,2)", true),
                ("Source Host", "nvarchar(64)", true),
            ],
            &["EventId", "OccurredAt"],
        )
    }

    /// Compares with a golden file (which ends with a newline, like every text file) and fails
    /// naming the first differing line; the golden files are written by hand from the rules.
    fn assert_golden(file: &str, golden: &str, sql: &str) {
        let actual = format!("{sql}\n");
        if actual == golden {
            return;
        }
        let (g, a): (Vec<&str>, Vec<&str>) = (golden.lines().collect(), actual.lines().collect());
        let n = g.iter().zip(&a).take_while(|(x, y)| x == y).count();
        panic!(
            "{file} differs at line {}:\n  golden: {:?}\n  actual: {:?}\n(golden {} lines, actual \
             {} lines; trailing newline golden {} actual {})\n--- actual output ---\n{actual}",
            n + 1,
            g.get(n),
            a.get(n),
            g.len(),
            a.len(),
            golden.ends_with('\n'),
            actual.ends_with('\n'),
        );
    }

    #[test]
    fn wide_table_matches_golden() {
        let opts = DdlOptions {
            model: TableModel::Duplicate,
            distribution: None,
            buckets: Some(8),
            replication_num: Some(1),
            partition: None,
            comment: "dag: dbo.OrderLines from mssql sales".to_string(),
        };
        let sql = create_table("lake_copy", "OrderLines", &wide(), &opts).unwrap();
        assert_golden(
            "tests/golden/starrocks_wide.sql",
            include_str!("../../../tests/golden/starrocks_wide.sql"),
            &sql,
        );
    }

    #[test]
    fn partitioned_table_matches_golden() {
        let opts = DdlOptions {
            model: TableModel::Primary,
            distribution: None,
            buckets: None,
            replication_num: None,
            partition: Some("OccurredAt".to_string()),
            comment: "events of [sales].[Events]: it's a \\ test".to_string(),
        };
        let sql = create_table("analytics", "Events", &partitioned(), &opts).unwrap();
        assert_golden(
            "tests/golden/starrocks_partitioned.sql",
            include_str!("../../../tests/golden/starrocks_partitioned.sql"),
            &sql,
        );
    }

    #[test]
    fn golden_mismatch_names_the_line() {
        let r = std::panic::catch_unwind(|| assert_golden("g.sql", "a\nb\nc\n", "a\nB\nc"));
        let msg = r.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.contains("g.sql differs at line 2"), "{msg}");
        assert!(msg.contains("golden: Some(\"b\")") && msg.contains("actual: Some(\"B\")"));
        assert_golden("g.sql", "a\nb\n", "a\nb");
    }

    #[test]
    fn column_types_follow_the_mapping() {
        let info = wide();
        let ty = |name: &str| {
            let i = info.columns.iter().position(|c| c.name == name).unwrap();
            column_type(&info, i).unwrap()
        };
        assert_eq!(ty("tiny_col"), "SMALLINT");
        assert_eq!(ty("small_col"), "SMALLINT");
        assert_eq!(ty("int_col"), "INT");
        assert_eq!(ty("nvarchar_100"), "VARCHAR(300)");
        assert_eq!(ty("nvarchar_max"), "VARCHAR(1048576)");
        assert_eq!(ty("notes"), "VARCHAR(12000)");
        assert_eq!(ty("varbinary_200"), "VARBINARY(200)");
        assert_eq!(ty("image_col"), "VARBINARY(1048576)");
        assert_eq!(ty("dto_col"), "DATETIME");
        // Without a declared source type (SQLite sources): INT and the widest lengths.
        let plain = TableInfo::new(
            "t",
            vec![
                Column {
                    name: "a".into(),
                    ty: ColType::Int32,
                    nullable: true,
                },
                Column {
                    name: "s".into(),
                    ty: ColType::String,
                    nullable: true,
                },
            ],
            None,
            0,
        );
        assert_eq!(column_type(&plain, 0).unwrap(), "INT");
        assert_eq!(column_type(&plain, 1).unwrap(), "VARCHAR(1048576)");
        // Over a million characters: capped.
        let big = mssql_table("t", &[("s", "varchar(400000)", true)], &[]);
        assert_eq!(column_type(&big, 0).unwrap(), "VARCHAR(1048576)");
        let bad = TableInfo::new(
            "t",
            vec![Column {
                name: "d".into(),
                ty: ColType::Decimal {
                    precision: 40,
                    scale: 2,
                },
                nullable: true,
            }],
            None,
            0,
        );
        assert_eq!(column_type(&bad, 0).unwrap_err().kind, ErrorKind::Data);
    }

    fn opts(model: TableModel) -> DdlOptions {
        DdlOptions {
            model,
            comment: "c".into(),
            ..DdlOptions::default()
        }
    }

    #[test]
    fn keyed_incremental_tables_are_created_primary_key() {
        let mut keyed = mssql_table("t", &[("id", "int", false), ("v", "int", true)], &["id"]);
        let keyless = mssql_table("u", &[("id", "int", false)], &[]);
        assert_eq!(
            model_for(TableModel::Duplicate, &keyed),
            TableModel::Duplicate
        );
        let inc = Some(crate::model::Incremental {
            cursor: "id".into(),
            low: None,
            high: None,
            append: true,
        });
        keyed.incremental = inc.clone();
        assert_eq!(
            model_for(TableModel::Duplicate, &keyed),
            TableModel::Primary
        );
        let sql = create_table(
            "db",
            "t",
            &keyed,
            &opts(model_for(TableModel::Duplicate, &keyed)),
        )
        .unwrap();
        assert!(sql.contains("\nPRIMARY KEY(`id`)\n"), "{sql}");
        // Without a key there is nothing to upsert by: appends into the configured model.
        let keyless = TableInfo {
            incremental: inc,
            ..keyless
        };
        assert_eq!(
            model_for(TableModel::Duplicate, &keyless),
            TableModel::Duplicate
        );
    }

    #[test]
    fn duplicate_key_without_primary_key_is_first_keyable_column_and_random() {
        let info = mssql_table(
            "t",
            &[
                ("f", "float", true),
                ("b", "varbinary(10)", true),
                ("d", "date", true),
                ("n", "int", true),
            ],
            &[],
        );
        let sql = create_table("db", "t", &info, &opts(TableModel::Duplicate)).unwrap();
        assert!(
            sql.contains("(\n  `d` DATE NULL,\n  `f` DOUBLE NULL,"),
            "{sql}"
        );
        assert!(sql.contains("\nDUPLICATE KEY(`d`)\n"), "{sql}");
        assert!(sql.ends_with("\nDISTRIBUTED BY RANDOM"), "{sql}");
        let mut hash = opts(TableModel::Duplicate);
        hash.distribution = Some(Distribution::Hash);
        let e = create_table("db", "t", &info, &hash).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        let floats = mssql_table("t", &[("f", "float", true), ("r", "real", true)], &[]);
        let e = create_table("db", "t", &floats, &opts(TableModel::Duplicate)).unwrap_err();
        assert!(e.message.contains("no column can be"), "{e}");
    }

    #[test]
    fn duplicate_key_uses_keyable_prefix_of_primary_key() {
        let info = mssql_table(
            "t",
            &[
                ("v", "nvarchar(10)", true),
                ("f", "float", false),
                ("a", "int", false),
            ],
            &["a", "f"],
        );
        let sql = create_table("db", "t", &info, &opts(TableModel::Duplicate)).unwrap();
        assert!(sql.contains("DUPLICATE KEY(`a`)"), "{sql}");
        assert!(sql.contains("DISTRIBUTED BY HASH(`a`)"), "{sql}");
        let mut random = opts(TableModel::Duplicate);
        random.distribution = Some(Distribution::Random);
        let sql = create_table("db", "t", &info, &random).unwrap();
        assert!(sql.contains("DISTRIBUTED BY RANDOM"), "{sql}");
    }

    #[test]
    fn primary_key_rules_are_enforced() {
        let err = |info: &TableInfo, o: &DdlOptions| {
            let e = create_table("db", "t", info, o).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Config, "{e}");
            e.message
        };
        let p = opts(TableModel::Primary);
        let none = mssql_table("dbo.T", &[("a", "int", false)], &[]);
        assert!(err(&none, &p).contains("needs a source primary key"));
        let dec = mssql_table("dbo.T", &[("a", "decimal(10,0)", false)], &["a"]);
        let m = err(&dec, &p);
        assert!(
            m.contains("dbo.T") && m.contains("column a") && m.contains("DECIMAL"),
            "{m}"
        );
        let float = mssql_table("dbo.T", &[("a", "float", false)], &["a"]);
        assert!(err(&float, &p).contains("column a"));
        let bin = mssql_table("dbo.T", &[("a", "binary(8)", false)], &["a"]);
        assert!(err(&bin, &p).contains("column a"));
        let nullable = mssql_table("dbo.T", &[("a", "int", true)], &["a"]);
        assert!(err(&nullable, &p).contains("nullable"));
        // int 4 + nvarchar(42) 126 + 2 terminator: over 128 encoded.
        let long = mssql_table(
            "dbo.T",
            &[("a", "int", false), ("s", "nvarchar(42)", false)],
            &["a", "s"],
        );
        let m = err(&long, &p);
        assert!(m.contains("128") && m.contains("s VARCHAR(126)"), "{m}");
        let ok = mssql_table(
            "dbo.T",
            &[("a", "int", false), ("s", "nvarchar(30)", false)],
            &["a", "s"],
        );
        assert!(create_table("db", "t", &ok, &p).is_ok());
        let mut random = p.clone();
        random.distribution = Some(Distribution::Random);
        assert!(err(&ok, &random).contains("random"));
        let part = mssql_table(
            "dbo.T",
            &[("a", "int", false), ("d", "date", false)],
            &["a"],
        );
        let mut by_day = p.clone();
        by_day.partition = Some("d".into());
        assert!(err(&part, &by_day).contains("partition column d"));
    }

    #[test]
    fn partition_column_must_be_a_date() {
        let info = mssql_table(
            "t",
            &[("a", "int", false), ("s", "varchar(5)", true)],
            &["a"],
        );
        let mut o = opts(TableModel::Duplicate);
        o.partition = Some("s".into());
        assert!(
            create_table("db", "t", &info, &o)
                .unwrap_err()
                .message
                .contains("DATE")
        );
        o.partition = Some("missing".into());
        assert!(create_table("db", "t", &info, &o).is_err());
        o.partition = Some("A".into());
        assert!(create_table("db", "t", &info, &o).is_err());
    }

    #[test]
    fn other_statements() {
        assert_eq!(
            create_database("d`b"),
            "CREATE DATABASE IF NOT EXISTS `d``b`"
        );
        assert_eq!(
            create_like("db", "t__stage", "t"),
            "CREATE TABLE IF NOT EXISTS `db`.`t__stage` LIKE `db`.`t`"
        );
        assert_eq!(
            swap("db", "t", "t__stage"),
            "ALTER TABLE `db`.`t` SWAP WITH `t__stage`"
        );
        assert_eq!(rename("db", "a", "b"), "ALTER TABLE `db`.`a` RENAME `b`");
        assert_eq!(drop_table("db", "t"), "DROP TABLE IF EXISTS `db`.`t` FORCE");
        assert_eq!(
            set_comment("db", "t", r"it's C:\x"),
            r"ALTER TABLE `db`.`t` COMMENT = 'it\'s C:\\x'"
        );
    }
}
