//! verify: read-only comparison of what the source returned, what the lake holds and what the
//! target holds.
//!
//! The source side is the count and fingerprint recorded at extraction (the rows that were moved);
//! the lake is read back through Iceberg from the committed snapshot and the target through its
//! own protocol. `verify = "full"` compares counts and content fingerprints, `"count"` only counts
//! (the lake's from its snapshot summary, the target's by `COUNT(*)`). A mismatch fails the task
//! with a report naming the side, the counts and, where the table has a key and the target differs
//! from the lake, a sample of the differing keys. The report is kept in the task's outputs, so
//! `dag status` shows it after the run. The source's current count is also taken: a difference
//! there means the source moved on since extraction, which is reported, not treated as a failure.

use std::collections::{HashMap, HashSet};

use arrow_array::RecordBatch;
use futures::TryStreamExt;
use futures::stream::BoxStream;

use crate::config::VerifyMode;
use crate::error::{Error, ErrorKind, Result};
use crate::model::Stage;
use crate::model::TableInfo;
use crate::model::fingerprint::{Digest128, for_each_row_hash};

use super::{Allowance, Ctx};

/// Most keys a mismatch report lists.
const SAMPLE_KEYS: usize = 10;
/// Key buckets compared before rows are: only rows of differing buckets are held in memory.
const BUCKETS: usize = 4096;
/// Most rows per side held while looking for differing keys.
const MAX_HELD_ROWS: usize = 200_000;

pub async fn run(ctx: &Ctx, table: &str, grant: &Allowance) -> Result<()> {
    let mut rec = ctx.start(table, Stage::Verify, grant)?;
    crate::fault::point(&format!("before_verify:{table}"));
    let super::Extracted {
        info,
        digest: source,
        ..
    } = ctx.extracted(table)?;
    let mode = ctx.verify_mode(table);
    let batch_rows = ctx.tuning.batch_rows(&info, grant.scale);
    let mut problems = Vec::new();
    rec.outputs.verify_mode = Some(mode);
    rec.outputs.digest = Some(source);
    if let Some(inc) = info.incremental.clone().filter(|i| i.append) {
        return verify_append(ctx, table, &info, &inc, source, mode, batch_rows, rec).await;
    }

    let lake = match mode {
        VerifyMode::Full => ctx.lake.digest(table, batch_rows).await?,
        VerifyMode::Count => Digest128 {
            rows: ctx.lake.snapshot_rows(table).await?,
            sum: 0,
        },
    };
    let lake_ok = same(mode, &lake, &source);
    if !lake_ok {
        problems.push(format!(
            "lake has {}, the source gave {}",
            shown(mode, &lake),
            shown(mode, &source)
        ));
    }
    rec.outputs.lake = Some(lake);

    if let Some(target) = &ctx.target {
        let got = match mode {
            VerifyMode::Full => {
                let mut d = Digest128::default();
                let mut s = target.scan(&info, batch_rows);
                while let Some(b) = s.try_next().await? {
                    d.add_batch(&b).map_err(Error::internal)?;
                }
                d
            }
            VerifyMode::Count => Digest128 {
                rows: target.count(&info).await?,
                sum: 0,
            },
        };
        if !same(mode, &got, &source) {
            problems.push(format!(
                "target ({}) has {}, the source gave {}",
                target.describe_location(),
                shown(mode, &got),
                shown(mode, &source)
            ));
            let key = key_columns(&info);
            if mode == VerifyMode::Full && lake_ok && !key.is_empty() {
                let lake_side = ctx.lake.batches(table, batch_rows).await?;
                let target_side = target.scan(&info, batch_rows);
                let first = (
                    bucket_sums(lake_side, &key).await?,
                    bucket_sums(target_side, &key).await?,
                );
                let differing: HashSet<usize> =
                    (0..BUCKETS).filter(|&b| first.0[b] != first.1[b]).collect();
                let lake_rows =
                    rows_in(ctx.lake.batches(table, batch_rows).await?, &key, &differing).await?;
                let target_rows = rows_in(target.scan(&info, batch_rows), &key, &differing).await?;
                let keys = differing_keys(&lake_rows, &target_rows);
                if !keys.is_empty() {
                    problems.push(format!(
                        "differing rows by key ({}): {}",
                        key.iter()
                            .map(|&i| info.columns[i].name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        keys.join("; ")
                    ));
                }
                rec.outputs.differing_keys = keys;
            }
        }
        rec.outputs.target = Some(got);
    }

    if ctx.from_lake {
        rec.outputs.note = Some(
            "the source was not contacted: its side is what the run that wrote the lake \
             recorded"
                .to_string(),
        );
    } else {
        source_drift(ctx, table, &source, &mut rec).await?;
    }
    if !problems.is_empty() {
        // Keep what was measured: the failure handler only adds status and error.
        ctx.store.put_task(&rec)?;
        return Err(Error::new(ErrorKind::Mismatch, problems.join("; ")));
    }
    ctx.progress.line(&format!(
        "{table}.verify ({}): OK, {}",
        mode.name(),
        shown(mode, &source)
    ));
    // A run from the lake moved no source rows: the watermark stays with the run that did.
    if let Some(inc) = info.incremental.as_ref().filter(|_| !ctx.from_lake) {
        super::incremental::advance(ctx, table, inc, source.rows)?;
    }
    ctx.succeed(rec)
}

/// Verify of an incremental append: the rows the run read from the source, the files it
/// appended to the lake and the target's rows of the same keys (or, for a table without a key,
/// the target's rows in the run's cursor range) must agree; then the watermark moves on.
#[allow(clippy::too_many_arguments)]
async fn verify_append(
    ctx: &Ctx,
    table: &str,
    info: &TableInfo,
    inc: &crate::model::Incremental,
    source: Digest128,
    mode: VerifyMode,
    batch_rows: usize,
    mut rec: crate::store::TaskRecord,
) -> Result<()> {
    // One read of the appended files gives the lake's side and the keys to find in the target.
    let key = key_columns(info);
    let wanted = if ctx.target.is_some() {
        key.clone()
    } else {
        Vec::new()
    };
    let (lake, keys) = appended_rows(ctx, ctx.run_files(table)?, wanted, batch_rows).await?;
    let mut problems = Vec::new();
    if !same(mode, &lake, &source) {
        problems.push(format!(
            "the lake files this run appended hold {}, the source gave {}",
            shown(mode, &lake),
            shown(mode, &source)
        ));
    }
    rec.outputs.lake = Some(lake);
    if let Some(target) = &ctx.target {
        // The run's rows in the target: those of its keys, or (a keyless table) those in its
        // cursor range.
        let cursor = info.columns.iter().position(|c| c.name == inc.cursor);
        let mut got = Digest128::default();
        // No key to look for, or an empty range: no target row can be the run's, no scan.
        let none = if key.is_empty() {
            super::incremental::nothing_new(inc)
        } else {
            keys.is_empty()
        };
        let mut s = if none {
            Box::pin(futures::stream::empty()) as BoxStream<'static, Result<RecordBatch>>
        } else {
            target.scan(info, batch_rows)
        };
        while let Some(b) = s.try_next().await? {
            let keep: arrow_array::BooleanArray = if key.is_empty() {
                let ci = cursor
                    .ok_or_else(|| Error::internal("cursor column missing from the schema"))?;
                in_range(&b, ci, inc)?
            } else {
                key_hashes(&b, &key)?
                    .iter()
                    .map(|k| Some(keys.contains(k)))
                    .collect()
            };
            got.add_batch(&arrow_select::filter::filter_record_batch(&b, &keep)?)
                .map_err(Error::internal)?;
        }
        if !same(mode, &got, &source) {
            problems.push(format!(
                "target ({}) has {} for the rows of this run, the source gave {}",
                target.describe_location(),
                shown(mode, &got),
                shown(mode, &source)
            ));
        }
        rec.outputs.target = Some(got);
    }
    rec.outputs.note = Some(format!(
        "incremental: compared the {} row(s) with {} in ({}, {}]",
        source.rows,
        inc.cursor,
        inc.low.map_or("none".into(), |v| v.to_string()),
        inc.high.map_or("none".into(), |v| v.to_string())
    ));
    if !problems.is_empty() {
        ctx.store.put_task(&rec)?;
        return Err(Error::new(ErrorKind::Mismatch, problems.join("; ")));
    }
    ctx.progress.line(&format!(
        "{table}.verify ({}, incremental): OK, {}",
        mode.name(),
        shown(mode, &source)
    ));
    super::incremental::advance(ctx, table, inc, source.rows)?;
    ctx.succeed(rec)
}

/// Count and fingerprint of the rows in an incremental run's appended data files, and the key
/// hashes (columns `key`; none when empty) of those rows, from one read of each file.
async fn appended_rows(
    ctx: &Ctx,
    files: Vec<String>,
    key: Vec<usize>,
    batch_rows: usize,
) -> Result<(Digest128, HashSet<u128>)> {
    let io = ctx.lake.file_io().clone();
    tokio::task::spawn_blocking(move || {
        let mut d = Digest128::default();
        let mut keys = HashSet::new();
        for f in &files {
            for b in crate::lake::read::open_parquet(&io, f, batch_rows, 0)? {
                let b = b?;
                d.add_batch(&b).map_err(Error::internal)?;
                if !key.is_empty() {
                    keys.extend(key_hashes(&b, &key)?);
                }
            }
        }
        Ok((d, keys))
    })
    .await
    .map_err(|e| Error::internal(format!("lake reader panicked: {e}")))?
}

/// Rows of `b` whose cursor (column `ci`) lies in the run's range.
fn in_range(
    b: &RecordBatch,
    ci: usize,
    inc: &crate::model::Incremental,
) -> Result<arrow_array::BooleanArray> {
    use crate::model::CursorValue as V;
    let raw = |v: V| match v {
        V::Int(n) | V::Micros(n) => n,
        V::Date(d) => i64::from(d),
    };
    let col = arrow_cast::cast(b.column(ci), &arrow_schema::DataType::Int64)?;
    let col = col
        .as_any()
        .downcast_ref::<arrow_array::Int64Array>()
        .ok_or_else(|| Error::internal("cursor column did not cast to int64"))?;
    let (lo, hi) = (inc.low.map(raw), inc.high.map(raw));
    Ok(col
        .iter()
        .map(|v| {
            Some(v.is_some_and(|v| lo.is_none_or(|lo| v > lo) && hi.is_some_and(|hi| v <= hi)))
        })
        .collect())
}

/// Notes that the source moved on since extraction (not an error: the run moved a snapshot).
async fn source_drift(
    ctx: &Ctx,
    table: &str,
    source: &Digest128,
    rec: &mut crate::store::TaskRecord,
) -> Result<()> {
    let now_rows = ctx.source.count(table).await?;
    rec.outputs.source_rows_now = Some(now_rows);
    if now_rows != source.rows {
        rec.outputs.note = Some(format!(
            "the source now has {now_rows} rows; {} were extracted (it changed since)",
            source.rows
        ));
    }
    Ok(())
}

fn same(mode: VerifyMode, a: &Digest128, b: &Digest128) -> bool {
    match mode {
        VerifyMode::Full => a == b,
        VerifyMode::Count => a.rows == b.rows,
    }
}

fn shown(mode: VerifyMode, d: &Digest128) -> String {
    match mode {
        VerifyMode::Full => d.to_string(),
        VerifyMode::Count => format!("{} rows", d.rows),
    }
}

/// Indexes of the columns that identify a row: the primary key, else the chunk key.
fn key_columns(info: &TableInfo) -> Vec<usize> {
    let names: Vec<&str> = if !info.primary_key.is_empty() {
        info.primary_key.iter().map(String::as_str).collect()
    } else if let Some(k) = &info.key {
        vec![k.as_str()]
    } else {
        Vec::new()
    };
    let idx: Vec<usize> = names
        .iter()
        .filter_map(|n| info.columns.iter().position(|c| c.name == *n))
        .collect();
    if idx.len() == names.len() {
        idx
    } else {
        Vec::new()
    }
}

/// Each row's key as text, `COL=value[, COL2=value]`.
/// The canonical hash of each row's key columns (the fingerprint's row hash over those columns
/// alone): equal keys hash alike whichever side's Arrow types carry them, with no text built
/// per row.
fn key_hashes(batch: &RecordBatch, key: &[usize]) -> Result<Vec<u128>> {
    let keys = batch.project(key)?;
    let mut out = vec![0u128; keys.num_rows()];
    for_each_row_hash(&keys, |row, h| out[row] = h).map_err(Error::internal)?;
    Ok(out)
}

fn key_texts(batch: &RecordBatch, key: &[usize]) -> Result<Vec<String>> {
    use arrow_cast::display::{ArrayFormatter, FormatOptions};
    let opts = FormatOptions::default().with_null("NULL");
    let schema = batch.schema();
    let fmts = key
        .iter()
        .map(|&i| ArrayFormatter::try_new(batch.column(i).as_ref(), &opts))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((0..batch.num_rows())
        .map(|row| {
            key.iter()
                .zip(&fmts)
                .map(|(&i, f)| format!("{}={}", schema.field(i).name(), f.value(row)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect())
}

fn bucket_of(key: &str) -> usize {
    (crate::config::fnv1a64(key.as_bytes()) % BUCKETS as u64) as usize
}

/// Per key bucket, the sum of the row hashes of one side.
async fn bucket_sums(
    mut s: BoxStream<'static, Result<RecordBatch>>,
    key: &[usize],
) -> Result<Vec<u128>> {
    let mut sums = vec![0u128; BUCKETS];
    while let Some(b) = s.try_next().await? {
        let keys = key_texts(&b, key)?;
        for_each_row_hash(&b, |row, h| {
            let k = bucket_of(&keys[row]);
            sums[k] = sums[k].wrapping_add(h);
        })
        .map_err(Error::internal)?;
    }
    Ok(sums)
}

/// Row hashes by key for the rows whose key falls into `buckets` (at most [`MAX_HELD_ROWS`]).
async fn rows_in(
    mut s: BoxStream<'static, Result<RecordBatch>>,
    key: &[usize],
    buckets: &HashSet<usize>,
) -> Result<HashMap<String, Vec<u128>>> {
    let mut rows: HashMap<String, Vec<u128>> = HashMap::new();
    let mut held = 0;
    while let Some(b) = s.try_next().await? {
        let keys = key_texts(&b, key)?;
        for_each_row_hash(&b, |row, h| {
            if held < MAX_HELD_ROWS && buckets.contains(&bucket_of(&keys[row])) {
                rows.entry(keys[row].clone()).or_default().push(h);
                held += 1;
            }
        })
        .map_err(Error::internal)?;
    }
    Ok(rows)
}

/// Up to [`SAMPLE_KEYS`] keys whose rows differ, each with how.
fn differing_keys(
    lake: &HashMap<String, Vec<u128>>,
    target: &HashMap<String, Vec<u128>>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut all: Vec<&String> = lake.keys().chain(target.keys()).collect();
    all.sort();
    all.dedup();
    for k in all {
        let how = match (lake.get(k), target.get(k)) {
            (Some(_), None) => "missing in the target",
            (None, Some(_)) => "only in the target",
            (Some(a), Some(b)) if a.len() < b.len() => "duplicated in the target",
            (Some(a), Some(b)) if a.len() > b.len() => "fewer copies in the target",
            (Some(a), Some(b)) => {
                let (mut a, mut b) = (a.clone(), b.clone());
                a.sort_unstable();
                b.sort_unstable();
                if a == b {
                    continue;
                }
                "different values"
            }
            (None, None) => continue,
        };
        out.push(format!("{k} ({how})"));
        if out.len() == SAMPLE_KEYS {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_keys_names_each_kind_of_difference() {
        let lake = HashMap::from([
            ("ID=1".to_string(), vec![1u128]),
            ("ID=2".to_string(), vec![2]),
            ("ID=3".to_string(), vec![3]),
            ("ID=5".to_string(), vec![5]),
        ]);
        let target = HashMap::from([
            ("ID=1".to_string(), vec![1u128]),
            ("ID=2".to_string(), vec![20]),
            ("ID=4".to_string(), vec![4]),
            ("ID=5".to_string(), vec![5, 5]),
        ]);
        assert_eq!(
            differing_keys(&lake, &target),
            vec![
                "ID=2 (different values)",
                "ID=3 (missing in the target)",
                "ID=4 (only in the target)",
                "ID=5 (duplicated in the target)",
            ]
        );
    }

    #[test]
    fn bucket_is_stable_and_in_range() {
        assert_eq!(bucket_of("ID=42"), bucket_of("ID=42"));
        assert!(bucket_of("") < BUCKETS);
    }
}
