//! One type-mapping table used by every stage.
//!
//! Source connectors describe columns with [`ColType`]; the lake writer, the target loader and the
//! verifier all derive their own types from it here, so a column means the same thing at every hop.
//! The canonical value form used by fingerprints lives in [`crate::model::fingerprint`].

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema as ArrowSchema, TimeUnit};
use serde::{Deserialize, Serialize};

/// The zone Iceberg's `timestamptz` carries in Arrow.
pub const UTC: &str = "+00:00";

/// The logical type of a column, independent of where it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColType {
    Bool,
    Int32,
    Int64,
    Float32,
    Float64,
    Decimal {
        precision: u8,
        scale: i8,
    },
    Date,
    /// Microseconds since the epoch, no zone.
    Timestamp,
    /// An instant: microseconds since the epoch in UTC (SQL Server `datetimeoffset`).
    TimestampTz,
    String,
    Binary,
}

impl ColType {
    /// Bytes one value occupies in an Arrow array (strings and binaries: a typical width, used for
    /// estimates only).
    pub fn width(&self) -> u64 {
        match self {
            ColType::Bool => 1,
            ColType::Int32 | ColType::Date | ColType::Float32 => 4,
            ColType::Int64 | ColType::Float64 | ColType::Timestamp | ColType::TimestampTz => 8,
            ColType::Decimal { .. } => 16,
            ColType::String => 32,
            ColType::Binary => 64,
        }
    }

    pub fn arrow(&self) -> DataType {
        match self {
            ColType::Bool => DataType::Boolean,
            ColType::Int32 => DataType::Int32,
            ColType::Int64 => DataType::Int64,
            ColType::Float32 => DataType::Float32,
            ColType::Float64 => DataType::Float64,
            ColType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            ColType::Date => DataType::Date32,
            ColType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColType::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            ColType::String => DataType::Utf8,
            ColType::Binary => DataType::LargeBinary,
        }
    }

    pub fn iceberg(&self) -> iceberg::spec::Type {
        use iceberg::spec::{PrimitiveType as P, Type};
        Type::Primitive(match self {
            ColType::Bool => P::Boolean,
            ColType::Int32 => P::Int,
            ColType::Int64 => P::Long,
            ColType::Float32 => P::Float,
            ColType::Float64 => P::Double,
            ColType::Decimal { precision, scale } => P::Decimal {
                precision: u32::from(*precision),
                scale: *scale as u32,
            },
            ColType::Date => P::Date,
            ColType::Timestamp => P::Timestamp,
            ColType::TimestampTz => P::Timestamptz,
            ColType::String => P::String,
            ColType::Binary => P::Binary,
        })
    }

    /// Declared type used when creating a table in a SQLite database (source or target); the
    /// SQLite connector maps it back to the same [`ColType`].
    pub fn sqlite_decl(&self) -> String {
        match self {
            ColType::Bool => "BOOLEAN".into(),
            ColType::Int32 => "INT".into(),
            ColType::Int64 => "BIGINT".into(),
            ColType::Float32 => "FLOAT4".into(),
            ColType::Float64 => "DOUBLE".into(),
            // TEXT affinity keeps every digit (the SQLite source declares such columns `TEXT DECIMAL(p,s)`).
            ColType::Decimal { precision, scale } => format!("TEXT DECIMAL({precision},{scale})"),
            ColType::Date => "DATE".into(),
            ColType::Timestamp => "DATETIME".into(),
            ColType::TimestampTz => "TIMESTAMPTZ".into(),
            ColType::String => "TEXT".into(),
            ColType::Binary => "BLOB".into(),
        }
    }
}

impl std::fmt::Display for ColType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ColType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            other => write!(f, "{}", format!("{other:?}").to_lowercase()),
        }
    }
}

/// Where a column comes from in its source, as the source declared and reads it. Kept with the
/// table so every later stage (target DDL sizes, casts, messages) sees the source's own words
/// without asking the source again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnOrigin {
    /// How the source selects the column, e.g. `CAST([PRICE] AS decimal(19,4)) AS [PRICE]`.
    pub expr: String,
    /// The column's type as the source declares it, e.g. `datetime2(7)`.
    #[serde(rename = "sql_type")]
    pub declared: String,
    /// An identity column (values the server generates).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub identity: bool,
    /// A computed column (read like any other, as its result type).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub computed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub ty: ColType,
    pub nullable: bool,
}

/// What a source knows about one table before moving it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableInfo {
    pub name: String,
    pub columns: Vec<Column>,
    /// Single integer key used to split the table into chunks, if any.
    pub key: Option<String>,
    /// Estimated row count (exact for SQLite).
    pub rows: u64,
    /// Columns of a composite or non-integer key that split the table by row-value ranges
    /// (used when `key` is `None`; empty: the table is one chunk).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunk_key: Vec<String>,
    /// The primary key's columns, in key order (empty: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub primary_key: Vec<String>,
    /// The source's own estimate of bytes per row, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_row_bytes: Option<u64>,
    /// Where each column comes from (parallel to `columns`), when the source describes it.
    #[serde(default, rename = "read", skip_serializing_if = "Vec::is_empty")]
    pub origin: Vec<ColumnOrigin>,
    /// The column whose day partitions the lake table (`None`: unpartitioned). Decided once when
    /// the run plans the table (`lake::partition::decide`) and kept with the extract's schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Set for a table with `mode = "incremental"`: its cursor and the range this run moves.
    /// Decided once when the extract starts and kept with the extract's schema, so every stage
    /// and every resumed attempt works on the same range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<Incremental>,
}

/// The cursor range of one run of an incremental table: rows with `low < cursor <= high`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incremental {
    /// The cursor column (as the source names it).
    pub cursor: String,
    /// The watermark the run starts from; `None` on a full refresh (every row up to `high`).
    pub low: Option<CursorValue>,
    /// The cursor's maximum when the run started; `None` when the table had no row with a cursor.
    /// Rows written after that are left for the next run.
    pub high: Option<CursorValue>,
    /// `true`: the run appends to the lake and upserts into the target (by key; appends when the
    /// table has none). `false`: a full refresh that replaces both, then sets the watermark.
    pub append: bool,
}

/// A cursor value: the watermark stored between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum CursorValue {
    /// int, bigint, rowversion (as a signed 64-bit number).
    Int(i64),
    /// date: days since 1970-01-01.
    Date(i32),
    /// datetime, datetime2, datetimeoffset: microseconds since 1970-01-01 (UTC for offsets).
    Micros(i64),
}

impl CursorValue {
    /// The day (since 1970-01-01) of a date or datetime value; `None` for an integer.
    pub fn day(&self) -> Option<i64> {
        match *self {
            CursorValue::Int(_) => None,
            CursorValue::Date(d) => Some(i64::from(d)),
            CursorValue::Micros(us) => Some(us.div_euclid(86_400_000_000)),
        }
    }
}

impl std::fmt::Display for CursorValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            CursorValue::Int(v) => write!(f, "{v}"),
            CursorValue::Date(d) => {
                match chrono::DateTime::from_timestamp(i64::from(d) * 86_400, 0) {
                    Some(t) => write!(f, "{}", t.format("%Y-%m-%d")),
                    None => write!(f, "day {d}"),
                }
            }
            CursorValue::Micros(us) => match chrono::DateTime::from_timestamp_micros(us) {
                Some(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%S%.6f")),
                None => write!(f, "{us}us"),
            },
        }
    }
}

impl TableInfo {
    /// A table with columns only (no key, no estimates).
    pub fn new(name: &str, columns: Vec<Column>, key: Option<String>, rows: u64) -> TableInfo {
        TableInfo {
            name: name.to_string(),
            columns,
            key,
            rows,
            chunk_key: Vec::new(),
            primary_key: Vec::new(),
            avg_row_bytes: None,
            origin: Vec::new(),
            partition: None,
            incremental: None,
        }
    }

    /// Typical bytes of one row in Arrow form: the source's own average when it reports one
    /// (wide text columns make the per-type guess far too small), else a guess from the types.
    pub fn row_width(&self) -> u64 {
        let guess = self
            .columns
            .iter()
            .map(|c| c.ty.width() + 1)
            .sum::<u64>()
            .max(1);
        match self.avg_row_bytes {
            // Pages hold rows with some slack; Arrow adds offsets and validity per value.
            Some(avg) => avg.max(guess / 2).max(1),
            None => guess,
        }
    }

    /// Chunks the planner will make, from the row estimate: a table without a chunk key is one.
    pub fn estimated_chunks(&self, chunk_rows: u64) -> u64 {
        if self.key.is_some() || !self.chunk_key.is_empty() {
            self.rows.div_ceil(chunk_rows.max(1)).max(1)
        } else {
            1
        }
    }

    /// How the table is split, in words, for `dag plan`.
    pub fn chunking(&self) -> String {
        match (&self.key, self.chunk_key.as_slice()) {
            (Some(k), _) => format!("key ranges of {k}"),
            (None, []) => "one chunk (no primary key)".to_string(),
            (None, ks) => format!("row-value ranges of ({})", ks.join(", ")),
        }
    }

    /// Arrow schema without Iceberg field ids (the lake writer uses the table's own schema).
    pub fn arrow_schema(&self) -> Arc<ArrowSchema> {
        Arc::new(ArrowSchema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.ty.arrow(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    pub fn types(&self) -> Vec<ColType> {
        self.columns.iter().map(|c| c.ty).collect()
    }

    /// Column `i`'s type as the source declared it (`nvarchar(50)`, `tinyint`), when known.
    pub fn source_type(&self, i: usize) -> Option<&str> {
        self.origin.get(i).map(|r| r.declared.as_str())
    }

    /// Most characters (strings) or bytes (binaries) column `i` can hold, when the source declares
    /// a bound; `None`: unbounded or unknown. Targets size VARCHAR/VARBINARY columns from it.
    pub fn max_len(&self, i: usize) -> Option<u32> {
        let t = self.source_type(i)?.to_ascii_lowercase();
        let (base, arg) = match t.split_once('(') {
            Some((b, a)) => (b.trim(), Some(a.trim_end_matches(')').trim())),
            None => (t.as_str(), None),
        };
        match base {
            "uniqueidentifier" => Some(36),
            // `HH:MM:SS.fffffff`
            "time" => Some(16),
            "sql_variant" | "hierarchyid" => Some(4000),
            "char" | "varchar" | "nchar" | "nvarchar" | "binary" | "varbinary" => {
                arg.and_then(|a| a.parse().ok())
            }
            _ => None,
        }
    }
}
