//! load: the run's data files -> the target, chunk by chunk, exactly once.
//!
//! Reads the Parquet files the extract recorded (the source is not touched again). Chunks already
//! in the target's ledger for this run are skipped; the rest load one transaction each, and the
//! staging table is swapped in at the end.

use crate::error::{Error, Result};
use crate::sched::Grant;
use crate::store::Stage;
use crate::target::Target;

use super::Ctx;

pub async fn run(ctx: &Ctx, table: &str, grant: &Grant) -> Result<()> {
    let mut rec = ctx.start(table, Stage::Load, grant)?;
    let run = ctx.run_id.clone();
    let Some(Target::Sqlite(target)) = ctx.target.clone() else {
        return Err(Error::internal("load planned without a target"));
    };
    let (info, digest) = ctx.extracted(table)?;
    let chunks = ctx.store.chunks(&run, table)?;
    let batch_rows = ctx.tuning.batch_rows(grant.scale);
    let table_name = table.to_string();
    let (loaded, already) = tokio::task::spawn_blocking(move || -> Result<(u32, u32)> {
        if target.is_published(&run, &table_name)? {
            return Ok((0, chunks.len() as u32));
        }
        let done = target.prepare(&info, &run)?;
        let mut loaded = 0;
        for c in &chunks {
            if done.contains(&c.index) {
                continue;
            }
            target.load_chunk(&info, &run, c.index, &c.paths, batch_rows)?;
            loaded += 1;
        }
        target.publish(&table_name, &run)?;
        Ok((loaded, chunks.len() as u32 - loaded))
    })
    .await
    .map_err(|e| Error::internal(format!("load worker panicked: {e}")))??;
    rec.outputs.chunks_loaded = Some(loaded);
    rec.outputs.chunks_already_loaded = Some(already);
    rec.outputs.digest = Some(digest);
    ctx.progress.line(&format!(
        "{table}.load: {loaded} chunk(s) loaded, {already} already there"
    ));
    ctx.succeed(rec)
}
