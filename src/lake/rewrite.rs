//! Copy-on-write for incremental runs of a keyed table: the lake table stays equal to the source
//! by key for readers that know nothing of dag.
//!
//! An incremental run reads the rows whose cursor moved, new ones and new versions of old ones.
//! Appending them alone would leave every older version in the table, so a plain scan would see
//! an updated row twice. Before its commit, the run finds the current data files that may hold
//! one of its keys (by the key column's bounds in the manifests, for integer keys), reads them,
//! and writes each one that does again without those rows; the commit then replaces those files
//! with their rewrites and adds the run's own. Delete files would avoid the rewrite, but
//! iceberg-rust cannot commit them and every reader would have to apply them; a rewrite is read by
//! every reader as plain data. The cost is reading the candidate files and writing the hit ones
//! again, which for updates of recent rows (ids and dates growing) are a few files.
//!
//! The rewrites go to `<table>/<run>/rewrite/`, apart from the run's extract files (whose
//! directory a resumed extract clears of unrecorded files), under a name unique to the attempt:
//! an attempt that dies before committing leaves unreferenced files that retention removes.

use std::collections::HashSet;

use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::DataType;
use iceberg::spec::{Datum, PrimitiveLiteral};

use super::writer::ChunkWriter;
use crate::error::{Error, Result};
use crate::model::TableInfo;
use crate::model::fingerprint::Digest128;

/// The keys of the rows an incremental run read: integers (and bounds to prune files by) or text.
pub enum Keys {
    /// Sorted, without repeats: membership and file bounds are both binary searches.
    Int(Vec<i64>),
    Text(HashSet<String>),
}

impl Keys {
    pub fn is_empty(&self) -> bool {
        match self {
            Keys::Int(sorted) => sorted.is_empty(),
            Keys::Text(s) => s.is_empty(),
        }
    }

    /// Whether a file whose key column lies within `lo..=hi` (unknown bounds: anything) may hold
    /// one of the keys.
    fn may_hold(&self, lo: Option<&Datum>, hi: Option<&Datum>) -> bool {
        let Keys::Int(sorted) = self else {
            return true;
        };
        let int = |d: Option<&Datum>| match d.map(|d| d.literal()) {
            Some(PrimitiveLiteral::Int(v)) => Some(i64::from(*v)),
            Some(PrimitiveLiteral::Long(v)) => Some(*v),
            _ => None,
        };
        let lo = int(lo).unwrap_or(i64::MIN);
        let hi = int(hi).unwrap_or(i64::MAX);
        let i = sorted.partition_point(|k| *k < lo);
        i < sorted.len() && sorted[i] <= hi
    }

    /// A mask of the rows of `col` whose key is one of these.
    fn hits(&self, col: &ArrayRef) -> Result<BooleanArray> {
        Ok(match self {
            Keys::Int(sorted) => as_i64(col)?
                .iter()
                .map(|v| Some(v.is_some_and(|v| sorted.binary_search(&v).is_ok())))
                .collect(),
            Keys::Text(set) => as_text(col)?
                .iter()
                .map(|v| Some(v.is_some_and(|v| set.contains(v))))
                .collect(),
        })
    }

    /// Adds the keys of `col`.
    fn extend(&mut self, col: &ArrayRef) -> Result<()> {
        match self {
            Keys::Int(keys) => keys.extend(as_i64(col)?.iter().flatten()),
            Keys::Text(set) => set.extend(as_text(col)?.iter().flatten().map(str::to_string)),
        }
        Ok(())
    }
}

/// A key column as 64-bit integers.
fn as_i64(col: &ArrayRef) -> Result<arrow_array::Int64Array> {
    let c = arrow_cast::cast(col, &DataType::Int64)?;
    Ok(c.as_primitive::<arrow_array::types::Int64Type>().clone())
}

/// A key column as text.
fn as_text(col: &ArrayRef) -> Result<arrow_array::StringArray> {
    let c = arrow_cast::cast(col, &DataType::Utf8)?;
    Ok(c.as_string::<i32>().clone())
}

/// The keys of the rows in `paths` (the run's data files), from column `key`.
pub async fn run_keys(
    io: &iceberg::io::FileIO,
    paths: Vec<String>,
    key: &str,
    integer: bool,
    batch_rows: usize,
) -> Result<Keys> {
    let io = io.clone();
    let key = key.to_string();
    tokio::task::spawn_blocking(move || {
        let mut keys = if integer {
            Keys::Int(Vec::new())
        } else {
            Keys::Text(HashSet::new())
        };
        for p in &paths {
            // The key column alone (the projection fails naming the file if it lacks it).
            for b in super::read::open_parquet_columns(&io, p, batch_rows, Some(&key))? {
                keys.extend(b?.column(0))?;
            }
        }
        if let Keys::Int(k) = &mut keys {
            k.sort_unstable();
            k.dedup();
        }
        Ok(keys)
    })
    .await
    .map_err(|e| Error::internal(format!("key reader panicked: {e}")))?
}

/// What the rewrite did: the current files it replaced, their rewrites (descriptions as the
/// chunk writers record them) and the rows it dropped (older versions of the run's keys).
#[derive(Default)]
pub struct Rewritten {
    pub removed: HashSet<String>,
    pub added_json: Vec<String>,
    pub dropped: Digest128,
}

/// The live data files of `t`'s current snapshot whose key bounds may hold one of `keys`.
pub async fn candidates(
    t: &iceberg::table::Table,
    key_field: i32,
    keys: &Keys,
) -> Result<Vec<String>> {
    let Some(snap) = t.metadata().current_snapshot() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    super::snapshot::for_each_live_file(t, snap, |df| {
        if keys.may_hold(
            df.lower_bounds().get(&key_field),
            df.upper_bounds().get(&key_field),
        ) {
            out.push(df.file_path().to_string());
        }
    })
    .await?;
    out.sort();
    Ok(out)
}

/// The batches of one data file (only the column `only` when given), read on a blocking thread
/// into a channel of one batch; dropping the receiver stops the reading.
fn stream_file(
    io: &iceberg::io::FileIO,
    file: &str,
    batch_rows: usize,
    only: Option<String>,
) -> tokio::sync::mpsc::Receiver<Result<RecordBatch>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let (io, file) = (io.clone(), file.to_string());
    tokio::task::spawn_blocking(move || {
        let batches =
            match super::read::open_parquet_columns(&io, &file, batch_rows, only.as_deref()) {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
        for b in batches {
            if tx.blocking_send(b).is_err() {
                return;
            }
        }
    });
    rx
}

/// How the rewrite reads and writes.
pub struct RewriteSettings<'a> {
    /// The table as this run commits it, writing into the run's rewrite directory.
    pub writer_table: &'a iceberg::table::Table,
    /// File names of the rewrites start with this (unique to the attempt).
    pub prefix: String,
    pub batch_rows: usize,
    pub row_group_rows: usize,
    pub open_partitions: usize,
}

/// Reads the key column of each of `files` and writes each file holding one of `keys` again
/// without those rows.
pub async fn rewrite(
    s: &RewriteSettings<'_>,
    info: &TableInfo,
    files: Vec<String>,
    keys: &Keys,
) -> Result<Rewritten> {
    let key = info
        .key
        .clone()
        .ok_or_else(|| Error::internal("rewrite of a table without a key"))?;
    let schema = std::sync::Arc::new(iceberg::arrow::schema_to_arrow_schema(
        s.writer_table.metadata().current_schema(),
    )?);
    let io = s.writer_table.file_io().clone();
    let mut out = Rewritten::default();
    for (n, file) in files.into_iter().enumerate() {
        // First the key column alone: most candidates of a bounds check hold none of the keys.
        let mut rx = stream_file(&io, &file, s.batch_rows, Some(key.clone()));
        let mut hit = false;
        while let Some(b) = rx.recv().await {
            if keys.hits(b?.column(0))?.true_count() > 0 {
                hit = true;
                break;
            }
        }
        drop(rx);
        if !hit {
            continue;
        }
        let mut writer = ChunkWriter::new(
            s.writer_table,
            format!("{}-f{n:05}", s.prefix),
            s.row_group_rows,
            s.open_partitions,
        )
        .await?;
        let mut rx = stream_file(&io, &file, s.batch_rows, None);
        while let Some(b) = rx.recv().await {
            let b = b?;
            let col = b.column_by_name(&key).ok_or_else(|| {
                Error::internal(format!("data file {file} has no key column {key}"))
            })?;
            let mask = keys.hits(col)?;
            if mask.true_count() > 0 {
                let dropped = arrow_select::filter::filter_record_batch(&b, &mask)?;
                out.dropped.add_batch(&dropped).map_err(Error::internal)?;
            }
            let keep: BooleanArray = mask.iter().map(|v| Some(!v.unwrap_or(false))).collect();
            let kept = arrow_select::filter::filter_record_batch(&b, &keep)?;
            if kept.num_rows() > 0 {
                writer.write(super::read::conform(&kept, &schema)?).await?;
            }
        }
        out.added_json
            .extend(writer.close().await?.into_iter().map(|f| f.json));
        out.removed.insert(file);
    }
    Ok(out)
}
