//! load: the table's committed lake snapshot -> the target, exactly once.
//!
//! The rows come from the data files of the snapshot this run's write_iceberg committed (read
//! back from the lake, never from the source), in sorted path order so every attempt sees the
//! same sequence. Each target makes its own unit of work atomic and idempotent:
//! - SQLite and MySQL: one data file per transaction, together with its ledger row; units already
//!   in the ledger are skipped; the staging table is swapped in at the end.
//! - StarRocks: Stream Load requests cut by bytes, each with a deterministic label recorded in
//!   the task's outputs before it is sent and after it ends (see `target::starrocks`).
//!
//! An incremental run that appends (`Incremental::append`) loads only the data files its own
//! extract wrote (the chunk records' paths, sorted), straight into the live table: upserts by
//! the primary key (plain appends for a keyless table), with the same ledgers and labels, so a
//! resumed load applies no unit twice. No staging table, no swap.

use crate::error::{Error, Result};
use crate::model::Stage;
use crate::model::TableInfo;
use crate::sched::Grant;
use crate::store::{TaskRecord, TaskStatus};
use crate::targets::Target;
use crate::targets::starrocks::{LoadJob, LoadSummary, StarRocksTarget};

use super::Ctx;

pub async fn run(ctx: &Ctx, table: &str, grant: &Grant) -> Result<()> {
    let mut rec = ctx.start(table, Stage::Load, grant)?;
    let run = ctx.run_id.clone();
    let Some(target) = ctx.target.clone() else {
        return Err(Error::internal("load planned without a target"));
    };
    let (info, digest) = ctx.extracted(table)?;
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
    let batch_rows = ctx.tuning.batch_rows(grant.scale);
    let units = files.len() as u32;
    let (loaded, already) = if append {
        load_append(ctx, &mut rec, &target, &info, &files, batch_rows).await?
    } else {
        match &target {
            Target::Sqlite(t) => {
                let (t, info, run, files) = (t.clone(), info.clone(), run.clone(), files.clone());
                let io = ctx.lake.file_io().clone();
                tokio::task::spawn_blocking(move || -> Result<(u32, u32)> {
                    if t.is_published(&run, &info.name)? {
                        return Ok((0, units));
                    }
                    let done = t.prepare(&info, &run)?;
                    let loaded = each_unit(&files, &done, |unit, file| {
                        t.load_unit(&info, &run, unit, file, &io, batch_rows)
                    })?;
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
                let summary =
                    stream_load(ctx, &mut rec, t, &info, &files, batch_rows, false).await?;
                (summary.loaded, summary.found)
            }
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

/// Upserts (appends, for a keyless table) the run's data files into the live table; returns
/// the units loaded now and those found loaded by an earlier attempt.
async fn load_append(
    ctx: &Ctx,
    rec: &mut TaskRecord,
    target: &Target,
    info: &TableInfo,
    files: &[String],
    batch_rows: usize,
) -> Result<(u32, u32)> {
    let table = info.name.as_str();
    let run = ctx.run_id.clone();
    let units = files.len() as u32;
    let after = format!("after_upsert:{table}");
    match target {
        Target::Sqlite(t) => {
            let (t, info, files) = (t.clone(), info.clone(), files.to_vec());
            let io = ctx.lake.file_io().clone();
            tokio::task::spawn_blocking(move || -> Result<(u32, u32)> {
                let done = t.prepare_append(&info, &run)?;
                let loaded = each_unit(&files, &done, |unit, file| {
                    t.load_unit_append(&info, &run, unit, file, &io, batch_rows)
                })?;
                crate::fault::point(&after);
                Ok((loaded, units - loaded))
            })
            .await
            .map_err(|e| Error::internal(format!("load worker panicked: {e}")))?
        }
        Target::Mysql(t) => {
            t.check().await?;
            let done = t.prepare_append(info, &run).await?;
            let mut loaded = 0;
            for (unit, file) in files.iter().enumerate() {
                if done.contains(&(unit as u32)) {
                    continue;
                }
                t.load_unit_append(
                    info,
                    &run,
                    unit as u32,
                    file,
                    ctx.lake.file_io(),
                    batch_rows,
                )
                .await?;
                loaded += 1;
            }
            crate::fault::point(&after);
            t.finish_append(info, &run).await?;
            Ok((loaded, units - loaded))
        }
        Target::StarRocks(t) => {
            let summary = stream_load(ctx, rec, t, info, files, batch_rows, true).await?;
            crate::fault::point(&after);
            Ok((summary.loaded, summary.found))
        }
    }
}

/// Stream Load of `files` into StarRocks: a full refresh's staging table and swap, or
/// (`append`) an incremental run's upserts into the live table. The request ledger is written
/// to the task's record before each step, so a resumed load trusts exactly that list.
async fn stream_load(
    ctx: &Ctx,
    rec: &mut TaskRecord,
    t: &StarRocksTarget,
    info: &TableInfo,
    files: &[String],
    batch_rows: usize,
    append: bool,
) -> Result<LoadSummary> {
    let job = LoadJob {
        workflow: &ctx.workflow,
        run: &ctx.run_id,
        info,
        ov: ctx.plan(&info.name)?.ov.as_ref(),
        files,
        io: ctx.lake.file_io(),
        batch_rows,
        lake_namespace: ctx.lake.namespace(),
    };
    let mut requests = rec.outputs.requests.clone();
    let base = rec.clone();
    let record = |reqs: &[crate::store::LoadRequestRecord]| {
        let mut r = base.clone();
        r.outputs.requests = reqs.to_vec();
        ctx.store.put_task(&r)
    };
    let summary = if append {
        t.load_append(job, &mut requests, record).await?
    } else {
        t.load(job, &mut requests, record).await?
    };
    rec.outputs.requests = requests;
    Ok(summary)
}

/// Loads each data file (a unit, numbered by its place in `files`) that `done` does not hold, in
/// order, with `load`; returns how many it loaded.
fn each_unit<T>(
    files: &[String],
    done: &std::collections::HashSet<u32>,
    mut load: impl FnMut(u32, &str) -> Result<T>,
) -> Result<u32> {
    let mut loaded = 0;
    for (unit, file) in files.iter().enumerate() {
        if !done.contains(&(unit as u32)) {
            load(unit as u32, file)?;
            loaded += 1;
        }
    }
    Ok(loaded)
}
