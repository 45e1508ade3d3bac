//! The type mapping: each declared SQL Server type becomes a column type and the select-list
//! item that makes tiberius decode it exactly.

use crate::model::ColType;

pub(super) fn is_int(ty: ColType, declared: &str) -> bool {
    matches!(ty, ColType::Int32 | ColType::Int64)
        && matches!(declared, "tinyint" | "smallint" | "int" | "bigint")
}

/// A column's declared type as `sys.columns` describes it.
#[derive(Debug, Clone)]
pub(super) struct SqlDecl {
    pub(super) base: String,
    /// Bytes; -1 for (max).
    pub(super) max_length: i64,
    pub(super) precision: u8,
    pub(super) scale: u8,
}

impl SqlDecl {
    /// Parses a type as written in a `cast` override: `nvarchar(max)`, `decimal(18,2)`, `int`.
    pub(super) fn parse(t: &str) -> Option<SqlDecl> {
        let t = t.trim().to_ascii_lowercase();
        let (base, args) = match t.find('(') {
            Some(i) => (
                t[..i].trim().to_string(),
                Some(t[i + 1..].trim_end_matches(')').to_string()),
            ),
            None => (t.clone(), None),
        };
        let nums: Vec<&str> = args
            .as_deref()
            .map(|a| a.split(',').map(str::trim).collect())
            .unwrap_or_default();
        let first = nums.first().copied();
        let mut d = SqlDecl {
            base: base.clone(),
            max_length: 0,
            precision: 0,
            scale: 0,
        };
        match base.as_str() {
            "decimal" | "numeric" => {
                d.precision = first.map_or(Some(18), |p| p.parse().ok())?;
                d.scale = nums.get(1).map_or(Some(0), |s| s.parse().ok())?;
            }
            "varchar" | "char" | "varbinary" | "binary" => {
                d.max_length = match first {
                    Some("max") => -1,
                    Some(n) => n.parse().ok()?,
                    None => 1,
                };
            }
            "nvarchar" | "nchar" => {
                d.max_length = match first {
                    Some("max") => -1,
                    Some(n) => n.parse::<i64>().ok()? * 2,
                    None => 2,
                };
            }
            "datetime2" | "datetimeoffset" | "time" => {
                d.scale = first.map_or(Some(7), |s| s.parse().ok())?;
            }
            _ => {}
        }
        Some(d)
    }

    /// The type as one would declare it (`nvarchar(50)`, `decimal(38,10)`, `datetime2(7)`).
    pub(super) fn display(&self) -> String {
        let len = |bytes: i64, per: i64| {
            if bytes < 0 {
                "max".to_string()
            } else {
                (bytes / per).to_string()
            }
        };
        match self.base.as_str() {
            "decimal" | "numeric" => format!("{}({},{})", self.base, self.precision, self.scale),
            "varchar" | "char" | "varbinary" | "binary" => {
                format!("{}({})", self.base, len(self.max_length, 1))
            }
            "nvarchar" | "nchar" => format!("{}({})", self.base, len(self.max_length, 2)),
            "datetime2" | "datetimeoffset" | "time" => format!("{}({})", self.base, self.scale),
            other => other.to_string(),
        }
    }
}

/// The mapping table (`docs/reference/type-mapping.md`): the logical type and how to select
/// the column so tiberius decodes it exactly. `None`: not supported.
pub(super) fn map_type(d: &SqlDecl, col: &str) -> Option<(ColType, String)> {
    let plain = || col.to_string();
    let cast = |t: &str| format!("CAST({col} AS {t}) AS {col}");
    Some(match d.base.as_str() {
        "bit" => (ColType::Bool, plain()),
        "tinyint" | "smallint" | "int" => (ColType::Int32, plain()),
        "bigint" => (ColType::Int64, plain()),
        "decimal" | "numeric" => {
            if !(1..=38).contains(&d.precision) || d.scale > d.precision {
                return None;
            }
            (
                ColType::Decimal {
                    precision: d.precision,
                    scale: d.scale as i8,
                },
                plain(),
            )
        }
        "money" => (
            ColType::Decimal {
                precision: 19,
                scale: 4,
            },
            cast("decimal(19,4)"),
        ),
        "smallmoney" => (
            ColType::Decimal {
                precision: 10,
                scale: 4,
            },
            cast("decimal(10,4)"),
        ),
        "real" => (ColType::Float32, plain()),
        "float" => (ColType::Float64, plain()),
        "date" => (ColType::Date, plain()),
        // Kept as text with all its digits: lossless, and StarRocks cannot read Iceberg `time`.
        "time" => (ColType::String, plain()),
        "datetime" | "smalldatetime" | "datetime2" => (ColType::Timestamp, plain()),
        "datetimeoffset" => (ColType::TimestampTz, plain()),
        "nvarchar" | "nchar" => (ColType::String, plain()),
        "varchar" | "char" => {
            // Up to 4000 characters fit nvarchar(n); longer ones need (max).
            let n = if d.max_length < 0 || d.max_length > 4000 {
                "max".to_string()
            } else {
                d.max_length.max(1).to_string()
            };
            (ColType::String, cast(&format!("nvarchar({n})")))
        }
        "text" | "ntext" | "xml" => (ColType::String, cast("nvarchar(max)")),
        "sql_variant" => (ColType::String, cast("nvarchar(4000)")),
        "hierarchyid" => (ColType::String, cast("nvarchar(4000)")),
        "geography" | "geometry" => (ColType::String, format!("{col}.STAsText() AS {col}")),
        "uniqueidentifier" => (ColType::String, plain()),
        "binary" | "varbinary" => (ColType::Binary, plain()),
        "image" => (ColType::Binary, cast("varbinary(max)")),
        "timestamp" | "rowversion" => (ColType::Int64, plain()),
        _ => return None,
    })
}
