//! extract: source rows -> Parquet data files in the run's directory of the lake table, chunk by
//! chunk.
//!
//! The chunk plan is fixed at the first attempt and kept in the task's outputs. Each finished
//! chunk is recorded (files, rows, fingerprint) before the next starts, so a resumed extract
//! skips finished chunks and only redoes those that were cut off; files an unfinished attempt
//! left behind are deleted first (they carry the attempt in their name and are never committed).

use std::collections::{BTreeMap, HashSet};

use futures::StreamExt;

use crate::error::Result;
use crate::lake::ChunkWriter;
use crate::model::fingerprint::Digest128;
use crate::model::{ChunkRange, Stage};
use crate::store::ChunkRecord;

use super::{Allowance, Ctx, incremental};

pub async fn run(ctx: &Ctx, table: &str, grant: &Allowance) -> Result<()> {
    let mut rec = ctx.start(table, Stage::Extract, grant)?;
    let plan = ctx.plan(table)?;
    let run = &ctx.run_id;

    // The schema and chunk plan of the first attempt hold for every later one.
    let info = match &rec.outputs.schema {
        Some(info) => info.clone(),
        None => {
            // The plan described the table moments ago; describe again only if that failed
            // (an empty column list), so this attempt reports why.
            let mut info = if plan.info.columns.is_empty() {
                ctx.source.describe(table, plan.ov.as_ref()).await?
            } else {
                plan.info.clone()
            };
            let (partition, partition_note) = crate::lake::partition::decide_with_source(
                &ctx.source,
                &info,
                &ctx.lake_cfg,
                plan.ov.as_ref(),
            )
            .await?;
            info.partition = partition;
            // Before any row moves: may this run follow how the columns changed?
            let diff = ctx.lake.schema_diff(&info).await?;
            let policy = plan
                .ov
                .as_ref()
                .and_then(|o| o.schema_changes)
                .unwrap_or(ctx.schema_changes);
            diff.check(policy, table, &format!("{}.{table}", ctx.lake.namespace()))?;
            let mut notes: Vec<String> = partition_note.into_iter().collect();
            if !diff.is_empty() {
                let note = format!("schema changed since the last run: {}", diff.describe());
                ctx.progress.line(&format!("{table}.extract: {note}"));
                notes.push(note);
            }
            let inc =
                incremental::decide(ctx, table, &mut info, plan.ov.as_ref(), !diff.is_empty())
                    .await?;
            rec.outputs.chunk_plan = match inc {
                Some((inc, note)) => {
                    ctx.progress.line(&format!("{table}.extract: {note}"));
                    notes.push(note);
                    let chunks = if incremental::nothing_new(&inc) {
                        Vec::new()
                    } else if inc.append {
                        // The rows past the watermark, read by the cursor (an index on it
                        // serves the range) rather than chunk by chunk over the whole key.
                        vec![ChunkRange::whole()]
                    } else {
                        ctx.source.plan_chunks(&info, plan.chunk_rows).await?
                    };
                    info.incremental = Some(inc);
                    chunks
                }
                None => ctx.source.plan_chunks(&info, plan.chunk_rows).await?,
            };
            if !notes.is_empty() {
                rec.outputs.note = Some(notes.join("; "));
            }
            rec.outputs.schema = Some(info.clone());
            ctx.store.put_task(&rec)?;
            info
        }
    };

    // Chunks an earlier attempt finished: their indexes, files and sums. Records are read one
    // at a time and their file descriptions dropped (a day-partitioned table's chunks describe
    // thousands of files, tens of MiB when held together).
    let mut done_idx: HashSet<u32> = HashSet::new();
    let mut keep: HashSet<String> = HashSet::new();
    let mut sums = Sums::default();
    for c in ctx.store.chunk_iter(run, table) {
        let c = c?;
        done_idx.insert(c.index);
        sums.add(c.digest, c.files.len(), c.lossy);
        keep.extend(c.paths);
    }
    let removed = ctx.lake.remove_unrecorded_files(table, run, &keep).await?;
    if removed > 0 {
        ctx.progress.line(&format!(
            "{table}.extract: removed {removed} data file(s) of an unfinished attempt"
        ));
    }
    let table_for_writers = ctx.lake.writer_table(&info, run).await?;

    let batch_rows = ctx.tuning.batch_rows(&info, grant.scale);
    let rg_rows = ctx.tuning.row_group_rows(&info, grant.scale);
    let bar = ctx.progress.bar(table, info.rows);
    bar.inc(sums.digest.rows);

    // Unfinished chunks, read by up to `slots` connections at once. Each chunk is recorded as
    // soon as it is done, whatever the others are doing, so a crash loses at most the chunks in
    // flight. The first failure stops the rest (their readers cancel their queries).
    let todo: Vec<ChunkRange> = rec
        .outputs
        .chunk_plan
        .iter()
        .filter(|r| !done_idx.contains(&r.index))
        .cloned()
        .collect();
    let attempt = rec.attempts;
    let (info_ref, writers_ref, bar_ref) = (&info, &table_for_writers, &bar);
    let mut work = futures::stream::iter(todo.into_iter().map(|range| async move {
        let index = range.index;
        let prefix = format!("{run}-c{index:05}-a{attempt}");
        let mut writer =
            ChunkWriter::new(writers_ref, prefix, rg_rows, ctx.tuning.open_partitions).await?;
        let mut rx = ctx.source.stream_chunk(info_ref, range, batch_rows);
        let mut digest = Digest128::default();
        let mut lossy: BTreeMap<String, u64> = BTreeMap::new();
        while let Some(item) = rx.recv().await {
            let piece = item?;
            let n = piece.batch.num_rows() as u64;
            writer.write(piece.batch).await?;
            digest.add(piece.digest);
            for (col, k) in piece.lossy {
                *lossy.entry(col).or_default() += k;
            }
            bar_ref.inc(n);
        }
        let files = writer.close().await?;
        let count = files.len();
        ctx.store.put_chunk(
            run,
            table,
            &ChunkRecord {
                index,
                digest,
                bytes: files.iter().map(|f| f.bytes).sum(),
                paths: files.iter().map(|f| f.path.clone()).collect(),
                files: files.into_iter().map(|f| f.json).collect(),
                attempt,
                lossy: lossy.clone(),
            },
        )?;
        crate::fault::point(&format!("after_chunk:{table}:{index}"));
        Ok::<_, crate::error::Error>((digest, count, lossy))
    }))
    .buffer_unordered(grant.slots.max(1));
    // Each chunk's sums as it is recorded, beside those of the chunks reused.
    while let Some(res) = work.next().await {
        let (digest, files, lossy) = res?;
        sums.add(digest, files, lossy);
    }
    drop(work);

    let Sums {
        digest: total,
        lossy,
        files: data_files,
    } = sums;
    if !lossy.is_empty() {
        let cols: Vec<String> = lossy.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        ctx.progress.line(&format!(
            "{table}.extract: values rounded to microseconds ({})",
            cols.join(", ")
        ));
    }
    rec.outputs.digest = Some(total);
    rec.outputs.lossy = lossy;
    rec.outputs.data_files = Some(data_files);
    rec.outputs.chunks_reused = Some(done_idx.len() as u32);
    bar.finish(&format!("{} rows extracted", total.rows));
    ctx.succeed(rec)
}

/// What the table's recorded chunks add up to: the digest of their rows, their data files and
/// the values each column had rounded.
#[derive(Default)]
struct Sums {
    digest: Digest128,
    files: usize,
    lossy: BTreeMap<String, u64>,
}

impl Sums {
    fn add(&mut self, digest: Digest128, files: usize, lossy: BTreeMap<String, u64>) {
        self.digest.add(digest);
        self.files += files;
        for (col, k) in lossy {
            *self.lossy.entry(col).or_default() += k;
        }
    }
}
