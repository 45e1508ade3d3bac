//! load: the table's committed lake snapshot -> the target, exactly once.
//!
//! The rows come from the data files of the snapshot this run's write_iceberg committed (read
//! back from the lake, never from the source), in sorted path order so every attempt sees the
//! same sequence. Each target makes its own unit of work atomic and idempotent:
//! - SQLite and MySQL: one data file per transaction, together with its ledger row; units already
//!   in the ledger are skipped; the staging table is swapped in at the end.
//! - StarRocks: Stream Load requests cut by bytes, each with a deterministic label recorded in
//!   the task's outputs before it is sent and after it ends (see `target::starrocks`).

use crate::error::{Error, Result};
use crate::sched::Grant;
use crate::store::{Stage, TaskStatus};
use crate::target::Target;
use crate::target::starrocks::LoadJob;

use super::Ctx;

pub async fn run(ctx: &Ctx, table: &str, grant: &Grant) -> Result<()> {
    let mut rec = ctx.start(table, Stage::Load, grant)?;
    let run = ctx.run_id.clone();
    let Some(target) = ctx.target.clone() else {
        return Err(Error::internal("load planned without a target"));
    };
    let (info, digest) = ctx.extracted(table)?;
    let snapshot = ctx
        .store
        .task(&run, table, Stage::WriteIceberg)?
        .filter(|r| r.status == TaskStatus::Succeeded)
        .and_then(|r| r.outputs.snapshot_id);
    let files = ctx.lake.snapshot_files(table, snapshot).await?;
    let batch_rows = ctx.tuning.batch_rows(grant.scale);
    let units = files.len() as u32;
    let (loaded, already) = match &target {
        Target::Sqlite(t) => {
            let (t, info, run, files) = (t.clone(), info.clone(), run.clone(), files.clone());
            let io = ctx.lake.file_io().clone();
            tokio::task::spawn_blocking(move || -> Result<(u32, u32)> {
                if t.is_published(&run, &info.name)? {
                    return Ok((0, units));
                }
                let done = t.prepare(&info, &run)?;
                let mut loaded = 0;
                for (unit, file) in files.iter().enumerate() {
                    if done.contains(&(unit as u32)) {
                        continue;
                    }
                    t.load_chunk(
                        &info,
                        &run,
                        unit as u32,
                        std::slice::from_ref(file),
                        &io,
                        batch_rows,
                    )?;
                    loaded += 1;
                }
                crate::fault::point(&format!("before_publish:{}", info.name));
                t.publish(&info.name, &run)?;
                Ok((loaded, units - loaded))
            })
            .await
            .map_err(|e| Error::internal(format!("load worker panicked: {e}")))??
        }
        Target::Mysql(t) => {
            t.check().await?;
            if t.is_published(&info, &run).await? {
                // Idempotent: finishes a cleanup a crash cut short after the swap.
                t.publish(&info, &run).await?;
                (0, units)
            } else {
                let done = t.prepare(&info, &run).await?;
                let mut loaded = 0;
                for (unit, file) in files.iter().enumerate() {
                    if done.contains(&(unit as u32)) {
                        continue;
                    }
                    t.load_unit(
                        &info,
                        &run,
                        unit as u32,
                        file,
                        ctx.lake.file_io(),
                        batch_rows,
                    )
                    .await?;
                    loaded += 1;
                }
                crate::fault::point(&format!("before_publish:{table}"));
                t.publish(&info, &run).await?;
                (loaded, units - loaded)
            }
        }
        Target::StarRocks(t) => {
            let job = LoadJob {
                workflow: &ctx.workflow,
                run: &run,
                info: &info,
                ov: ctx.plan(table)?.ov.as_ref(),
                files: &files,
                io: ctx.lake.file_io(),
                batch_rows,
                lake_namespace: ctx.lake.namespace(),
            };
            let mut requests = rec.outputs.requests.clone();
            let store = &ctx.store;
            let base = rec.clone();
            let summary = t
                .load(job, &mut requests, |reqs| {
                    // Durable before the next step: a resumed load trusts exactly this list.
                    let mut r = base.clone();
                    r.outputs.requests = reqs.to_vec();
                    store.put_task(&r)
                })
                .await?;
            rec.outputs.requests = requests;
            (summary.loaded, summary.found)
        }
    };
    rec.outputs.chunks_loaded = Some(loaded);
    rec.outputs.chunks_already_loaded = Some(already);
    rec.outputs.digest = Some(digest);
    rec.outputs.data_files = Some(files.len());
    let unit = match target {
        Target::StarRocks(_) => "request(s)",
        _ => "data file(s)",
    };
    ctx.progress.line(&format!(
        "{table}.load: {loaded} {unit} loaded, {already} already there"
    ));
    ctx.succeed(rec)
}
