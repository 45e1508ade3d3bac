//! load: the table's committed lake snapshot -> the target, exactly once.
//!
//! The rows come from the data files of the snapshot this run's write_iceberg committed (read
//! back from the lake, never from the source), in sorted path order so every attempt sees the
//! same sequence. Each target makes its own unit of work atomic and idempotent (see `targets`):
//! - SQLite and MySQL: one data file per transaction, together with its ledger row; units already
//!   in the ledger are skipped; the staging table is swapped in at the end.
//! - StarRocks: Stream Load requests cut by bytes, each with a deterministic label recorded in
//!   the task's outputs before it is sent and after it ends (see `targets::starrocks`).
//!
//! An incremental run that appends (`Incremental::append`) loads only the data files its own
//! extract wrote (the chunk records' paths, sorted), straight into the live table: upserts by
//! the primary key (plain appends for a keyless table), with the same ledgers and labels, so a
//! resumed load applies no unit twice. No staging table, no swap.

use crate::error::{Error, Result};
use crate::model::Stage;
use crate::store::{LoadRequestRecord, TaskStatus};
use crate::targets::LoadJob;

use super::{Allowance, Ctx};

pub async fn run(ctx: &Ctx, table: &str, grant: &Allowance) -> Result<()> {
    let mut rec = ctx.start(table, Stage::Load, grant)?;
    let run = ctx.run_id.clone();
    let Some(target) = ctx.target.clone() else {
        return Err(Error::internal("load planned without a target"));
    };
    let super::Extracted { info, digest, .. } = ctx.extracted(table)?;
    let append = info.incremental.as_ref().is_some_and(|i| i.append);
    let files = if append {
        ctx.run_files(table)?
    } else {
        let snapshot = ctx
            .store
            .task(&run, table, Stage::WriteIceberg)?
            .filter(|r| r.status == TaskStatus::Succeeded)
            .and_then(|r| r.outputs.snapshot_id);
        ctx.lake.snapshot_files(table, snapshot).await?
    };
    let job = LoadJob {
        workflow: &ctx.workflow,
        run: &ctx.run_id,
        info: &info,
        ov: ctx.plan(&info.name)?.ov.as_ref(),
        files: &files,
        io: ctx.lake.file_io(),
        batch_rows: ctx.tuning.batch_rows(&info, grant.scale),
        scale: grant.scale,
        lake_namespace: ctx.lake.namespace(),
    };
    // The request ledger (StarRocks) is written to the task's record before each step, so a
    // resumed load trusts exactly that list.
    let mut requests = rec.outputs.requests.clone();
    let base = rec.clone();
    let mut record = |reqs: &[LoadRequestRecord]| {
        let mut r = base.clone();
        r.outputs.requests = reqs.to_vec();
        ctx.store.put_task(&r)
    };
    let summary = target.load(job, append, &mut requests, &mut record).await?;
    rec.outputs.requests = requests;
    let (loaded, already) = (summary.loaded, summary.found);
    rec.outputs.chunks_loaded = Some(loaded);
    rec.outputs.chunks_already_loaded = Some(already);
    rec.outputs.digest = Some(digest);
    rec.outputs.data_files = Some(files.len());
    let unit = target.unit_name();
    ctx.progress.line(&format!(
        "{table}.load: {loaded} {unit} loaded, {already} already there"
    ));
    ctx.succeed(rec)
}
