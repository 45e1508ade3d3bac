//! Which column, if any, partitions a table's lake table by day.
//!
//! The system this one replaces kept one Parquet writer per day open and ran out of heap on long
//! histories; day partitions are still what readers prune on, so we keep them but decide once per
//! run, at plan time, from the source's description, the workflow and, for a column the `auto`
//! rule picks, how densely the rows fill their days (MIN and MAX of the column, asked of the
//! source). The decision is recorded in
//! the extract's schema ([`TableInfo::partition`]) so that a resumed run, the lake table's
//! partition spec and the target's DDL all follow the same answer.

use crate::config::{LakeConfig, LakePartition, PartitionSetting, TableOverride};
use crate::error::{Error, Result};
use crate::model::{ColType, TableInfo};

fn is_day_type(ty: ColType) -> bool {
    matches!(
        ty,
        ColType::Date | ColType::Timestamp | ColType::TimestampTz
    )
}

/// Whether a column name reads like a date: `OrderDate`, `created_at`, `HIRE_DATE`, `ts`.
fn looks_like_date(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["date", "time", "day"].iter().any(|w| n.contains(w))
        || ["_at", "_on", "_dt", "_ts"].iter().any(|s| n.ends_with(s))
        || n == "ts"
        || n == "dt"
}

/// The column `auto` picks: among DATE/DATETIME columns, the first that is NOT NULL and looks
/// like a date, else the first NOT NULL one, else the first that looks like a date, else the
/// first at all (all in column order). NOT NULL comes first because rows without a value all
/// land in one null partition.
pub fn auto_column(info: &TableInfo) -> Option<&str> {
    let dates: Vec<_> = info.columns.iter().filter(|c| is_day_type(c.ty)).collect();
    let rank = |c: &&crate::model::Column| (c.nullable, !looks_like_date(&c.name));
    dates
        .iter()
        .enumerate()
        .min_by_key(|(i, c)| (rank(c), *i))
        .map(|(_, c)| c.name.as_str())
}

/// The column `partition = "<name>"` names, checked: it must exist and hold dates.
fn named_column(info: &TableInfo, name: &str) -> Result<String> {
    let t = &info.name;
    let col = info
        .columns
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let dates: Vec<&str> = info
                .columns
                .iter()
                .filter(|c| is_day_type(c.ty))
                .map(|c| c.name.as_str())
                .collect();
            Error::config(format!(
                "table.{t}.partition: table {t} has no column {name:?} (its date/datetime \
                 columns: {})",
                if dates.is_empty() {
                    "none".to_string()
                } else {
                    dates.join(", ")
                }
            ))
        })?;
    if !is_day_type(col.ty) {
        return Err(Error::config(format!(
            "table.{t}.partition: column {} of table {t} is {}; day partitions need a date \
             or datetime column",
            col.name, col.ty
        )));
    }
    Ok(col.name.clone())
}

/// The column whose day partitions `info`'s lake table, or `None` for an unpartitioned table.
/// A named column that the table lacks or that is not a date/datetime is an error naming both.
pub fn decide(
    info: &TableInfo,
    lake: &LakeConfig,
    ov: Option<&TableOverride>,
) -> Result<Option<String>> {
    let setting = ov.and_then(|o| o.partition.as_ref());
    let min_rows = ov
        .and_then(|o| o.partition_min_rows)
        .unwrap_or(lake.partition_min_rows);
    let auto = match setting {
        Some(PartitionSetting::Column(name)) => {
            // Checked whatever the row count: a wrong name is wrong on a small table too.
            let col = named_column(info, name)?;
            return Ok((info.rows > min_rows).then_some(col));
        }
        Some(PartitionSetting::Off) => false,
        Some(PartitionSetting::Auto) => true,
        None => lake.partition == LakePartition::Auto,
    };
    if !auto || info.rows <= min_rows {
        return Ok(None);
    }
    Ok(auto_column(info).map(str::to_string))
}

/// Whether the column `decide` picks for `info` comes from the `auto` rule (not named by the
/// workflow), so that how densely its rows fill their days may still leave it unpartitioned.
pub fn chosen_by_rule(ov: Option<&TableOverride>) -> bool {
    !matches!(
        ov.and_then(|o| o.partition.as_ref()),
        Some(PartitionSetting::Column(_))
    )
}

/// The partition decision of [`decide`], then, for a column picked by the `auto` rule, the
/// density check: the table is partitioned only when its rows over the days between the
/// column's earliest and latest value reach `partition_min_rows_per_day` (a table of a few rows
/// a day over years would be a tiny file per day and chunk). Returns the column and, when the
/// density check left the table unpartitioned, a note saying why.
pub async fn decide_with_source(
    source: &crate::sources::Source,
    info: &TableInfo,
    lake: &LakeConfig,
    ov: Option<&TableOverride>,
) -> Result<(Option<String>, Option<String>)> {
    let Some(col) = decide(info, lake, ov)? else {
        return Ok((None, None));
    };
    if !chosen_by_rule(ov) {
        return Ok((Some(col), None));
    }
    let min = lake.partition_min_rows_per_day;
    let Some((lo, hi)) = source.day_span(info, &col).await? else {
        return Ok((None, Some(format!("not partitioned: {col} holds no value"))));
    };
    let days = (hi - lo + 1).max(1) as u64;
    let per_day = info.rows / days;
    if per_day < min {
        return Ok((
            None,
            Some(format!(
                "not partitioned: {} rows over {days} days of {col} ({per_day} a day, under \
                 partition_min_rows_per_day = {min})",
                info.rows
            )),
        ));
    }
    Ok((Some(col), None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Column;

    fn col(name: &str, ty: ColType, nullable: bool) -> Column {
        Column {
            name: name.into(),
            ty,
            nullable,
        }
    }

    fn lake() -> LakeConfig {
        LakeConfig {
            catalog: crate::config::CatalogKind::Sql,
            uri: None,
            catalog_name: "dag".into(),
            warehouse: None,
            namespace: "ns".into(),
            partition: LakePartition::Auto,
            partition_min_rows: 1000,
            partition_min_rows_per_day: 1000,
            open_partitions: 8,
            retention_secs: 0,
            s3: None,
        }
    }

    fn table(rows: u64) -> TableInfo {
        TableInfo::new(
            "T",
            vec![
                col("ID", ColType::Int64, false),
                col("Note", ColType::String, true),
                col("Stamp", ColType::Timestamp, true),
                col("Created", ColType::Timestamp, false),
                col("OrderDate", ColType::Date, false),
            ],
            Some("ID".into()),
            rows,
        )
    }

    fn with(p: PartitionSetting) -> TableOverride {
        TableOverride {
            partition: Some(p),
            ..TableOverride::default()
        }
    }

    #[test]
    fn auto_prefers_not_null_then_date_names_then_order() {
        assert_eq!(auto_column(&table(0)), Some("OrderDate"));
        let mut t = table(0);
        t.columns.remove(4);
        assert_eq!(auto_column(&t), Some("Created"));
        t.columns.remove(3);
        assert_eq!(auto_column(&t), Some("Stamp"));
        t.columns.remove(2);
        assert_eq!(auto_column(&t), None);
    }

    #[test]
    fn threshold_is_strictly_more_rows() {
        assert_eq!(decide(&table(1000), &lake(), None).unwrap(), None);
        assert_eq!(
            decide(&table(1001), &lake(), None).unwrap().as_deref(),
            Some("OrderDate")
        );
        let ov = TableOverride {
            partition_min_rows: Some(10),
            ..TableOverride::default()
        };
        assert!(decide(&table(11), &lake(), Some(&ov)).unwrap().is_some());
    }

    #[test]
    fn off_and_explicit_columns() {
        let mut l = lake();
        l.partition = LakePartition::Off;
        assert_eq!(decide(&table(5000), &l, None).unwrap(), None);
        let auto = with(PartitionSetting::Auto);
        assert!(decide(&table(5000), &l, Some(&auto)).unwrap().is_some());
        let off = with(PartitionSetting::Off);
        assert_eq!(decide(&table(5000), &lake(), Some(&off)).unwrap(), None);
        let named = with(PartitionSetting::Column("stamp".into()));
        assert_eq!(
            decide(&table(5000), &l, Some(&named)).unwrap().as_deref(),
            Some("Stamp")
        );
    }

    #[tokio::test]
    async fn auto_leaves_tables_whose_rows_are_sparse_over_their_days_unpartitioned() {
        let dir = std::env::temp_dir().join(format!("dag-density-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("src.db");
        let _ = std::fs::remove_file(&path);
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE DENSE (ID INTEGER PRIMARY KEY, D DATE NOT NULL);
             CREATE TABLE SPARSE (ID INTEGER PRIMARY KEY, D DATETIME NOT NULL);",
        )
        .unwrap();
        for i in 0..4000i64 {
            // DENSE: 4,000 rows over 2 days; SPARSE: 4,000 rows over 1,000 days.
            c.execute(
                "INSERT INTO DENSE VALUES (?1, ?2)",
                rusqlite::params![i, format!("2024-01-0{}", 1 + i % 2)],
            )
            .unwrap();
            let day = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap()
                + chrono::Days::new((i % 1000) as u64);
            c.execute(
                "INSERT INTO SPARSE VALUES (?1, ?2)",
                rusqlite::params![i, format!("{day} 12:00:00")],
            )
            .unwrap();
        }
        drop(c);
        let source =
            crate::sources::Source::Sqlite(crate::sources::sqlite::SqliteSource::new(&path, None));
        let info = |t: &str| {
            let mut i = TableInfo::new(
                t,
                vec![
                    col("ID", ColType::Int64, false),
                    col("D", ColType::Date, false),
                ],
                Some("ID".into()),
                4000,
            );
            if t == "SPARSE" {
                i.columns[1].ty = ColType::Timestamp;
            }
            i
        };
        let (p, note) = decide_with_source(&source, &info("DENSE"), &lake(), None)
            .await
            .unwrap();
        assert_eq!((p.as_deref(), note), (Some("D"), None));
        let (p, note) = decide_with_source(&source, &info("SPARSE"), &lake(), None)
            .await
            .unwrap();
        assert_eq!(p, None);
        let note = note.unwrap();
        assert!(
            note.contains("4000 rows over 1000 days of D (4 a day"),
            "{note}"
        );
        // A column the workflow names is partitioned however sparse.
        let named = with(PartitionSetting::Column("D".into()));
        let (p, _) = decide_with_source(&source, &info("SPARSE"), &lake(), Some(&named))
            .await
            .unwrap();
        assert_eq!(p.as_deref(), Some("D"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn bad_columns_are_named() {
        let missing = with(PartitionSetting::Column("Nope".into()));
        let e = decide(&table(5000), &lake(), Some(&missing)).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("table.T.partition") && m.contains("\"Nope\""),
            "{m}"
        );
        assert!(m.contains("Stamp, Created, OrderDate"), "{m}");
        let text = with(PartitionSetting::Column("Note".into()));
        let m = decide(&table(5000), &lake(), Some(&text))
            .unwrap_err()
            .to_string();
        assert!(m.contains("column Note of table T is string"), "{m}");
        // Checked even when the table is too small to be partitioned.
        assert!(decide(&table(1), &lake(), Some(&text)).is_err());
    }
}
