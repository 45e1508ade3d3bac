//! extract: source rows -> Parquet data files in the run's staging table, chunk by chunk.
//!
//! The chunk plan is fixed at the first attempt and kept in the task's outputs. Each finished
//! chunk is recorded (files, rows, fingerprint) before the next starts, so a resumed extract
//! skips finished chunks and only redoes the one that was cut off; files an unfinished attempt
//! left behind are deleted first (they carry the attempt in their name and are never committed).

use std::collections::HashSet;

use crate::error::Result;
use crate::fingerprint::Digest128;
use crate::lake::ChunkWriter;
use crate::sched::Grant;
use crate::store::{ChunkRecord, Stage};

use super::Ctx;

pub async fn run(ctx: &Ctx, table: &str, grant: &Grant) -> Result<()> {
    let mut rec = ctx.start(table, Stage::Extract, grant)?;
    let plan = ctx.plan(table)?;
    let run = &ctx.run_id;

    // The schema and chunk plan of the first attempt hold for every later one.
    let info = match &rec.outputs.schema {
        Some(info) => info.clone(),
        None => {
            // The plan described the table moments ago; describe again only if that failed
            // (an empty column list), so this attempt reports why.
            let info = if plan.info.columns.is_empty() {
                ctx.source.describe(table, plan.key.as_deref()).await?
            } else {
                plan.info.clone()
            };
            rec.outputs.chunk_plan = ctx.source.plan_chunks(&info, plan.chunk_rows).await?;
            rec.outputs.schema = Some(info.clone());
            ctx.store.put_task(&rec)?;
            info
        }
    };

    let done = ctx.store.chunks(run, table)?;
    let done_idx: HashSet<u32> = done.iter().map(|c| c.index).collect();
    let keep: HashSet<String> = done.iter().flat_map(|c| c.paths.iter().cloned()).collect();
    let removed = ctx.lake.remove_unrecorded_files(table, run, &keep)?;
    if removed > 0 {
        ctx.progress.line(&format!(
            "{table}.extract: removed {removed} data file(s) of an unfinished attempt"
        ));
    }
    let staging = ctx.lake.staging_table(&info, run).await?;

    let batch_rows = ctx.tuning.batch_rows(grant.scale);
    let rg_rows = ctx.tuning.row_group_rows(&info, grant.scale);
    let bar = ctx.progress.bar(table, info.rows);
    let reused_rows: u64 = done.iter().map(|c| c.digest.rows).sum();
    bar.inc(reused_rows);

    for range in rec.outputs.chunk_plan.clone() {
        if done_idx.contains(&range.index) {
            continue;
        }
        let prefix = format!("{run}-c{:05}-a{}", range.index, rec.attempts);
        let mut writer = ChunkWriter::new(&staging, prefix, rg_rows).await?;
        let mut rx = ctx.source.stream_chunk(&info, range, batch_rows);
        let mut digest = Digest128::default();
        while let Some(item) = rx.recv().await {
            let (batch, d) = item?;
            let n = batch.num_rows() as u64;
            writer.write(batch).await?;
            digest.add(d);
            bar.inc(n);
        }
        let files = writer.close().await?;
        ctx.store.put_chunk(
            run,
            table,
            &ChunkRecord {
                index: range.index,
                digest,
                bytes: files.iter().map(|f| f.bytes).sum(),
                paths: files.iter().map(|f| f.path.clone()).collect(),
                files: files.into_iter().map(|f| f.json).collect(),
                attempt: rec.attempts,
            },
        )?;
        crate::fault::point(&format!("after_chunk:{table}:{}", range.index));
    }

    let chunks = ctx.store.chunks(run, table)?;
    let mut total = Digest128::default();
    for c in &chunks {
        total.add(c.digest);
    }
    rec.outputs.digest = Some(total);
    rec.outputs.data_files = Some(chunks.iter().map(|c| c.files.len()).sum());
    rec.outputs.chunks_reused = Some(done_idx.len() as u32);
    bar.finish(&format!("{} rows extracted", total.rows));
    ctx.succeed(rec)
}
