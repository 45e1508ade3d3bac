//! Discovery: the schema's tables with their size estimates, one table's columns and keys,
//! and row counts, all from `sys.*` views.

use tiberius::ColumnData;

use super::connect::{map_err, query_all};
use super::types::{SqlDecl, is_int, map_type};
use super::wire::{boolean, int, text};
use super::{Mssql, TableStat, quote};
use crate::config::TableOverride;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Column, ColumnOrigin, TableInfo};

const Q_TABLES_DMV: &str = "SELECT s.name AS schema_name, t.name AS table_name, \
CAST(SUM(ps.row_count) AS bigint) AS row_count, \
CAST(SUM(ps.used_page_count) * 8192.0 / NULLIF(SUM(ps.row_count), 0) AS float) AS avg_row_bytes \
FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id \
JOIN sys.dm_db_partition_stats ps ON ps.object_id = t.object_id AND ps.index_id IN (0, 1) \
WHERE s.name = @P1 GROUP BY s.name, t.name ORDER BY t.name";

const Q_TABLES_PARTITIONS: &str = "SELECT s.name AS schema_name, t.name AS table_name, \
CAST(SUM(p.rows) AS bigint) AS row_count, CAST(NULL AS float) AS avg_row_bytes \
FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id \
JOIN sys.partitions p ON p.object_id = t.object_id AND p.index_id IN (0, 1) \
WHERE s.name = @P1 GROUP BY s.name, t.name ORDER BY t.name";

const Q_COLUMNS: &str = "SELECT c.column_id, c.name, ty.name AS type_name, bt.name AS base_type, \
c.max_length, c.precision, c.scale, c.is_nullable, c.is_identity, c.is_computed \
FROM sys.columns c JOIN sys.types ty ON ty.user_type_id = c.user_type_id \
LEFT JOIN sys.types bt ON bt.user_type_id = ty.system_type_id \
WHERE c.object_id = OBJECT_ID(@P1) ORDER BY c.column_id";

const Q_PRIMARY_KEY: &str = "SELECT ic.key_ordinal, c.name FROM sys.indexes i \
JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id \
JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id \
WHERE i.object_id = OBJECT_ID(@P1) AND i.is_primary_key = 1 ORDER BY ic.key_ordinal";

impl Mssql {
    /// Tables of the schema with size estimates.
    pub async fn tables(&self) -> Result<Vec<TableStat>> {
        let mut c = self.connect().await?;
        let rows = match query_all(&mut c, Q_TABLES_DMV, &[&self.schema]).await {
            Ok(r) => r,
            // No VIEW DATABASE STATE: sys.partitions has approximate counts and no sizes.
            Err(e) if e.code() == Some(300) || e.code() == Some(297) => {
                tracing::debug!("sys.dm_db_partition_stats refused, using sys.partitions: {e}");
                query_all(&mut c, Q_TABLES_PARTITIONS, &[&self.schema])
                    .await
                    .map_err(|e| map_err("listing tables", e))?
            }
            Err(e) => return Err(map_err("listing tables", e)),
        };
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let mut it = r.into_iter();
                let _schema = it.next();
                let name = text(it.next()?)?;
                let rows = int(it.next()?).unwrap_or(0).max(0) as u64;
                let avg = match it.next()? {
                    ColumnData::F64(v) => v,
                    ColumnData::F32(v) => v.map(f64::from),
                    _ => None,
                };
                Some(TableStat {
                    name,
                    rows,
                    avg_row_bytes: avg,
                })
            })
            .collect())
    }

    /// Columns, key and estimates of one table. `ov` may set the chunk key, exclude columns or
    /// read them through a CAST.
    pub async fn describe(
        &self,
        table: &str,
        ov: Option<&TableOverride>,
        stat: Option<&TableStat>,
    ) -> Result<TableInfo> {
        let key = ov.and_then(|o| o.chunk_key.as_deref());
        let mut c = self.connect().await?;
        let q = self.qualified(table);
        let cols = query_all(&mut c, Q_COLUMNS, &[&q])
            .await
            .map_err(|e| map_err(&format!("describing {q}"), e))?;
        if cols.is_empty() {
            return Err(Error::new(
                ErrorKind::Data,
                format!(
                    "table {q} does not exist in {} (or the login cannot see it)",
                    self.location
                ),
            ));
        }
        let pk_rows = query_all(&mut c, Q_PRIMARY_KEY, &[&q])
            .await
            .map_err(|e| map_err(&format!("reading the primary key of {q}"), e))?;
        let pk: Vec<String> = pk_rows
            .into_iter()
            .filter_map(|r| r.into_iter().nth(1).and_then(text))
            .collect();

        let mut columns = Vec::new();
        let mut read = Vec::new();
        let mut problems = Vec::new();
        for r in cols {
            let v: Vec<ColumnData<'static>> = r.into_iter().collect();
            let get_text = |i: usize| v.get(i).cloned().and_then(text);
            let get_int = |i: usize| v.get(i).cloned().and_then(int).unwrap_or(0);
            let get_bool = |i: usize| v.get(i).cloned().and_then(boolean).unwrap_or(false);
            let name = get_text(1).unwrap_or_default();
            let type_name = get_text(2).unwrap_or_default();
            let base = get_text(3).unwrap_or_else(|| type_name.clone());
            let decl = SqlDecl {
                base: base.to_ascii_lowercase(),
                max_length: get_int(4),
                precision: get_int(5) as u8,
                scale: get_int(6) as u8,
            };
            let nullable = get_bool(7);
            let (identity, computed) = (get_bool(8), get_bool(9));
            if ov.is_some_and(|o| {
                o.exclude_columns
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(&name))
            }) {
                continue;
            }
            let cast = ov.and_then(|o| {
                o.cast
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&name))
                    .map(|(_, t)| t.clone())
            });
            let mapped = match &cast {
                Some(t) => SqlDecl::parse(t)
                    .and_then(|d| map_type(&d, &quote(&name)).map(|(ty, _)| ty))
                    .map(|ty| {
                        (
                            ty,
                            format!("CAST({} AS {t}) AS {}", quote(&name), quote(&name)),
                        )
                    })
                    .ok_or_else(|| format!("cast type {t:?} is not one dag can read")),
                None => map_type(&decl, &quote(&name))
                    .ok_or_else(|| format!("type {type_name} is not supported")),
            };
            match mapped {
                Ok((ty, expr)) => {
                    columns.push(Column { name, ty, nullable });
                    read.push(ColumnOrigin {
                        expr,
                        declared: decl.display(),
                        identity,
                        computed,
                    });
                }
                Err(why) => problems.push(format!("column {name}: {why}")),
            }
        }
        if !problems.is_empty() {
            return Err(Error::new(
                ErrorKind::Data,
                format!(
                    "table {q}: {}; exclude the column (`[table.{table}] exclude_columns = [...]`) \
                     or read it as another type (`[table.{table}] cast = {{ COL = \"nvarchar(max)\" }}`)",
                    problems.join("; ")
                ),
            ));
        }
        // The chunk key: the override, else the primary key. A single integer column splits by
        // MIN/MAX ranges, anything else by row-value ranges.
        let wanted: Vec<String> = match key {
            Some(k) => match columns.iter().find(|c| c.name.eq_ignore_ascii_case(k)) {
                Some(col) => vec![col.name.clone()],
                None => {
                    return Err(Error::config(format!(
                        "table.{table}.chunk_key: {q} has no column {k:?}"
                    )));
                }
            },
            None => pk.clone(),
        };
        let positions: Option<Vec<usize>> = wanted
            .iter()
            .map(|k| columns.iter().position(|c| &c.name == k))
            .collect();
        let (key, chunk_key) = match positions.as_deref() {
            Some(&[i]) if is_int(columns[i].ty, &read[i].declared) => {
                (Some(wanted[0].clone()), Vec::new())
            }
            Some([_, ..]) => (None, wanted),
            // No key, or a key column excluded from the copy: one chunk.
            _ => (None, Vec::new()),
        };
        let stat = match stat {
            Some(s) => Some(s.clone()),
            None => self
                .tables()
                .await?
                .into_iter()
                .find(|t| t.name.eq_ignore_ascii_case(table)),
        };
        Ok(TableInfo {
            name: table.to_string(),
            columns,
            key,
            rows: stat.as_ref().map_or(0, |s| s.rows),
            chunk_key,
            primary_key: pk,
            avg_row_bytes: stat.and_then(|s| s.avg_row_bytes).map(|b| b.ceil() as u64),
            origin: read,
            partition: None,
            incremental: None,
        })
    }

    pub async fn count(&self, table: &str) -> Result<u64> {
        let q = self.qualified(table);
        let mut c = self.connect().await?;
        let rows = query_all(&mut c, &format!("SELECT COUNT_BIG(*) AS n FROM {q}"), &[])
            .await
            .map_err(|e| map_err(&format!("counting {q}"), e))?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .and_then(int)
            .unwrap_or(0) as u64)
    }
}
