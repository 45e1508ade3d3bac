//! Chunk planning and the statement that reads one chunk: half-open key ranges, row values for
//! composite keys, and an incremental table's cursor range.

use futures::StreamExt;
use tiberius::{ColumnData, Query};

use super::connect::{map_err, query_all};
use super::wire::{
    EPOCH_DAYS_FROM_0001, EPOCH_DAYS_FROM_1900, datetime_micros, datetime2_micros, int, key_text,
};
use super::{Mssql, quote};
use crate::error::{Error, Result};
use crate::model::{ChunkRange, TableInfo};

impl Mssql {
    pub async fn plan_chunks(&self, info: &TableInfo, chunk_rows: u64) -> Result<Vec<ChunkRange>> {
        let q = self.qualified(&info.name);
        let mut c = self.connect().await?;
        if let Some(k) = &info.key {
            let sql = format!(
                "SELECT MIN({k}) AS lo, MAX({k}) AS hi, COUNT_BIG(*) AS n FROM {q}",
                k = quote(k)
            );
            let rows = query_all(&mut c, &sql, &[])
                .await
                .map_err(|e| map_err(&format!("planning chunks of {q}"), e))?;
            let mut it = rows
                .into_iter()
                .next()
                .map(|r| r.into_iter())
                .into_iter()
                .flatten();
            let (lo, hi, n) = (
                it.next().and_then(int),
                it.next().and_then(int),
                it.next().and_then(int).unwrap_or(0),
            );
            return Ok(match (lo, hi) {
                (Some(lo), Some(hi)) => ChunkRange::split_int(lo, hi, n as u64, chunk_rows),
                _ => vec![ChunkRange::whole()],
            });
        }
        if info.chunk_key.is_empty() || info.rows <= chunk_rows {
            return Ok(vec![ChunkRange::whole()]);
        }
        // Row-number boundaries: one scan of the key (an index), balanced whatever the skew.
        let keys = info
            .chunk_key
            .iter()
            .map(|k| quote(k))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {keys} FROM (SELECT {keys}, ROW_NUMBER() OVER (ORDER BY {keys}) AS rn FROM {q}) AS x \
             WHERE (x.rn - 1) % @P1 = 0 ORDER BY {keys}"
        );
        let mut query = Query::new(sql);
        query.bind(chunk_rows.max(1) as i64);
        let stream = query
            .query(&mut c)
            .await
            .map_err(|e| map_err(&format!("planning chunks of {q}"), e))?;
        let mut rows = stream.into_row_stream();
        let mut bounds: Vec<Vec<String>> = Vec::new();
        while let Some(r) = rows.next().await {
            let r = r.map_err(|e| map_err(&format!("planning chunks of {q}"), e))?;
            let mut vals = Vec::new();
            for cell in r.into_iter() {
                match key_text(&cell) {
                    Some(t) => vals.push(t),
                    None => {
                        // A key value we cannot send back (binary, NULL): one chunk is always right.
                        return Ok(vec![ChunkRange::whole()]);
                    }
                }
            }
            if bounds.last() != Some(&vals) {
                bounds.push(vals);
            }
        }
        // The first boundary is the smallest key: the first chunk is open below instead.
        let cuts: Vec<Vec<String>> = bounds.into_iter().skip(1).collect();
        let mut out = Vec::new();
        let mut lo: Option<Vec<String>> = None;
        for (i, cut) in cuts
            .into_iter()
            .chain(std::iter::once(Vec::new()))
            .enumerate()
        {
            let hi = (!cut.is_empty()).then_some(cut);
            out.push(ChunkRange {
                index: i as u32,
                lo: None,
                hi: None,
                lo_key: lo.clone(),
                hi_key: hi.clone(),
            });
            lo = hi;
        }
        Ok(out)
    }

    /// The largest value of an incremental table's cursor column now (`None`: no row has one):
    /// the `high` end of the run's range. Sub-microsecond digits of a datetime2 round up, so the
    /// row holding the maximum is inside the range.
    pub async fn cursor_max(
        &self,
        info: &TableInfo,
        cursor: &str,
    ) -> Result<Option<crate::model::CursorValue>> {
        let mut v = self.extremes(info, cursor, &["MAX"]).await?;
        Ok(v.pop().flatten())
    }

    /// Days (since 1970-01-01) of the earliest and the latest value of a date/datetime column,
    /// `None` when no row has one: how densely a table's rows fill its days.
    pub async fn day_span(&self, info: &TableInfo, column: &str) -> Result<Option<(i64, i64)>> {
        let v = self.extremes(info, column, &["MIN", "MAX"]).await?;
        let day = |i: usize| v.get(i).copied().flatten().and_then(|c| c.day());
        Ok(day(0).zip(day(1)))
    }

    /// Aggregates (`MIN`, `MAX`) of a cursor-like column as cursor values, in one query.
    async fn extremes(
        &self,
        info: &TableInfo,
        cursor: &str,
        aggs: &[&str],
    ) -> Result<Vec<Option<crate::model::CursorValue>>> {
        let q = self.qualified(&info.name);
        let mut c = self.connect().await?;
        let items: Vec<String> = aggs
            .iter()
            .enumerate()
            .map(|(i, agg)| format!("{agg}({}) AS m{i}", quote(cursor)))
            .collect();
        let sql = format!("SELECT {} FROM {q}", items.join(", "));
        let rows = query_all(&mut c, &sql, &[])
            .await
            .map_err(|e| map_err(&format!("reading the cursor {cursor} of {q}"), e))?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(vec![None; aggs.len()]);
        };
        row.into_iter()
            .map(|cell| Self::cursor_value(cell, info, cursor))
            .collect()
    }

    /// One cell of a cursor-like column as a cursor value (`None` for NULL); a column of
    /// another type is a configuration error naming it.
    fn cursor_value(
        cell: ColumnData<'static>,
        info: &TableInfo,
        cursor: &str,
    ) -> Result<Option<crate::model::CursorValue>> {
        use crate::model::CursorValue as V;
        let ceil = |(us, lost): (i64, bool)| us + i64::from(lost);
        Ok(match cell {
            ColumnData::U8(v) => v.map(|v| V::Int(i64::from(v))),
            ColumnData::I16(v) => v.map(|v| V::Int(i64::from(v))),
            ColumnData::I32(v) => v.map(|v| V::Int(i64::from(v))),
            ColumnData::I64(v) => v.map(V::Int),
            ColumnData::Binary(Some(b)) if b.len() == 8 => {
                let mut arr = [0u8; 8];
                arr.copy_from_slice(&b);
                Some(V::Int(i64::from_be_bytes(arr)))
            }
            ColumnData::Binary(None) => None,
            ColumnData::Date(v) => {
                v.map(|d| V::Date((i64::from(d.days()) - EPOCH_DAYS_FROM_0001) as i32))
            }
            ColumnData::DateTime(v) => {
                v.map(|d| V::Micros(datetime_micros(d.days(), d.seconds_fragments())))
            }
            ColumnData::SmallDateTime(v) => v.map(|d| {
                V::Micros(
                    (i64::from(d.days()) - EPOCH_DAYS_FROM_1900) * 86_400_000_000
                        + i64::from(d.seconds_fragments()) * 60_000_000,
                )
            }),
            ColumnData::DateTime2(v) => v.map(|dt| {
                let t = dt.time();
                V::Micros(ceil(datetime2_micros(
                    dt.date().days(),
                    t.increments(),
                    t.scale(),
                )))
            }),
            ColumnData::DateTimeOffset(v) => v.map(|dto| {
                let dt = dto.datetime2();
                let t = dt.time();
                V::Micros(ceil(datetime2_micros(
                    dt.date().days(),
                    t.increments(),
                    t.scale(),
                )))
            }),
            _ => {
                let ty = info
                    .columns
                    .iter()
                    .position(|c| c.name == cursor)
                    .and_then(|i| info.origin.get(i))
                    .map_or("of another type", |r| r.declared.as_str());
                return Err(Error::config(format!(
                    "table {}: cursor column {cursor} is {ty}, not an integer, rowversion, date \
                     or datetime column",
                    info.name
                )));
            }
        })
    }

    /// The statement and parameters that read one chunk.
    pub fn chunk_query(&self, info: &TableInfo, range: &ChunkRange) -> (String, Vec<Param>) {
        let items: Vec<&str> = info.origin.iter().map(|r| r.expr.as_str()).collect();
        let mut sql = format!(
            "SELECT {} FROM {}",
            items.join(", "),
            self.qualified(&info.name)
        );
        let mut params = Vec::new();
        let mut conds = Vec::new();
        let mut order = Vec::new();
        if let Some(k) = &info.key {
            let k = quote(k);
            if let Some(lo) = range.lo {
                params.push(Param::Int(lo));
                conds.push(format!("{k} >= @P{}", params.len()));
            }
            if let Some(hi) = range.hi {
                params.push(Param::Int(hi));
                let upper = format!("{k} < @P{}", params.len());
                // The first chunk also takes NULL keys (a chunk_key override may be nullable).
                conds.push(if range.index == 0 {
                    format!("({k} IS NULL OR {upper})")
                } else {
                    upper
                });
            }
            order.push(k);
        } else if !info.chunk_key.is_empty() {
            let types: Vec<String> = info
                .chunk_key
                .iter()
                .map(|k| {
                    let i = info.columns.iter().position(|c| &c.name == k);
                    i.and_then(|i| info.origin.get(i))
                        .map_or("nvarchar(max)".into(), |r| r.declared.clone())
                })
                .collect();
            for (bound, lower) in [(&range.lo_key, true), (&range.hi_key, false)] {
                if let Some(vals) = bound {
                    let mut refs = Vec::new();
                    for v in vals {
                        params.push(Param::Text(v.clone()));
                        refs.push(params.len());
                    }
                    conds.push(row_compare(&info.chunk_key, &types, &refs, lower));
                }
            }
            order.extend(info.chunk_key.iter().map(|k| quote(k)));
        }
        if let Some(cond) = cursor_condition(info, &mut params) {
            conds.push(cond);
        }
        if !conds.is_empty() {
            sql.push_str(&format!(" WHERE {}", conds.join(" AND ")));
        }
        if !order.is_empty() {
            sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
        }
        (sql, params)
    }
}

/// A statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(i64),
    Text(String),
}

/// The condition that limits an incremental table's read to its run's cursor range
/// (`info.incremental`): `low < c <= high` for an append, `c <= high OR c IS NULL` for a full
/// refresh (rows written after `high` was taken are left for the next run either way).
/// Dates and times are sent as text cast to the column's own type, so the comparison happens
/// at the column's precision.
pub(super) fn cursor_condition(info: &TableInfo, params: &mut Vec<Param>) -> Option<String> {
    use crate::model::CursorValue as V;
    let inc = info.incremental.as_ref()?;
    let i = info.columns.iter().position(|c| c.name == inc.cursor);
    let sql_type = i
        .and_then(|i| info.origin.get(i))
        .map_or("datetime2(7)".to_string(), |r| r.declared.clone());
    let col = quote(&inc.cursor);
    let mut bind = |v: V| -> String {
        match v {
            V::Int(n) => {
                params.push(Param::Int(n));
                format!("@P{}", params.len())
            }
            V::Date(_) | V::Micros(_) => {
                let text = match v {
                    V::Micros(us) => match chrono::DateTime::from_timestamp_micros(us) {
                        Some(t) if sql_type.starts_with("datetimeoffset") => {
                            t.format("%Y-%m-%d %H:%M:%S%.6f +00:00").to_string()
                        }
                        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
                        None => us.to_string(),
                    },
                    other => other.to_string(),
                };
                params.push(Param::Text(text));
                format!("CAST(@P{} AS {sql_type})", params.len())
            }
        }
    };
    Some(match (inc.append, inc.low, inc.high) {
        (true, Some(lo), Some(hi)) => {
            let (lo, hi) = (bind(lo), bind(hi));
            format!("{col} > {lo} AND {col} <= {hi}")
        }
        (true, None, Some(hi)) => format!("{col} <= {}", bind(hi)),
        // Nothing to read: the extract plans no chunk in that case.
        (true, _, None) => format!("{col} IS NULL AND {col} IS NOT NULL"),
        (false, _, Some(hi)) => format!("({col} <= {} OR {col} IS NULL)", bind(hi)),
        (false, _, None) => format!("{col} IS NULL"),
    })
}

/// `(k1, k2, ...) >= (@Pa, @Pb, ...)` (or `<` for an upper bound) expanded for T-SQL, which has
/// no row-value comparison: `k1 > a OR (k1 = a AND (k2 > b OR (k2 = b AND k3 >= c)))`.
pub(super) fn row_compare(
    keys: &[String],
    types: &[String],
    refs: &[usize],
    lower: bool,
) -> String {
    let last = keys.len() - 1;
    let mut expr = String::new();
    for i in (0..keys.len()).rev() {
        let k = quote(&keys[i]);
        let p = format!("CAST(@P{} AS {})", refs[i], types[i]);
        let strict = if lower { ">" } else { "<" };
        expr = if i == last {
            let op = if lower { ">=" } else { "<" };
            format!("{k} {op} {p}")
        } else {
            format!("({k} {strict} {p} OR ({k} = {p} AND {expr}))")
        };
    }
    expr
}
