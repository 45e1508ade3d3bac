//! write_iceberg: one commit of the run's data files as one snapshot of the lake table, then
//! retention.
//!
//! The commit carries the run id in its snapshot summary; [`crate::lake::Lake::commit_run`]
//! looks for it first, so a task that crashed after committing does not commit again.

use std::collections::HashMap;

use crate::error::Result;
use crate::lake;
use crate::model::Stage;

use super::{Allowance, Ctx};

pub async fn run(ctx: &Ctx, table: &str, grant: &Allowance) -> Result<()> {
    let mut rec = ctx.start(table, Stage::WriteIceberg, grant)?;
    let run = &ctx.run_id;
    let super::Extracted {
        info,
        digest,
        data_files,
    } = ctx.extracted(table)?;
    // The files are read chunk by chunk as the commit writes them; the extract counted them
    // (records of older versions did not: counted here then).
    let count = match data_files {
        Some(n) => n,
        None => {
            let mut n = 0;
            for c in ctx.store.chunk_iter(run, table) {
                n += c?.files.len();
            }
            n
        }
    };
    let files = {
        let (store, run, table) = (ctx.store.clone(), run.clone(), table.to_string());
        lake::RunFiles::new(count, move || -> lake::RunFileIter {
            Box::new(store.chunk_iter(&run, &table).flat_map(|c| {
                let files: Vec<Result<lake::RunFile>> = match c {
                    Ok(c) => c
                        .files
                        .into_iter()
                        .zip(c.paths)
                        .map(|(json, path)| Ok(lake::RunFile { json, path }))
                        .collect(),
                    Err(e) => vec![Err(e)],
                };
                files
            }))
        })
    };
    let append = info.incremental.as_ref().is_some_and(|i| i.append);
    let mut props = HashMap::from([
        (lake::ROWS_PROP.to_string(), digest.rows.to_string()),
        (lake::FINGERPRINT_PROP.to_string(), digest.hex()),
        (
            lake::TABLE_INFO_PROP.to_string(),
            serde_json::to_string(&info)
                .map_err(|e| crate::error::Error::internal(e.to_string()))?,
        ),
    ]);
    if let Some(inc) = &info.incremental {
        props.insert("dag.cursor".into(), inc.cursor.clone());
        if let Some(lo) = inc.low {
            props.insert("dag.cursor-low".into(), lo.to_string());
        }
        if let Some(hi) = inc.high {
            props.insert("dag.cursor-high".into(), hi.to_string());
        }
    }
    let data_files = files.len();
    // A full refresh replaces the table's files; an incremental run adds its rows.
    let change = if append {
        lake::Change::Append
    } else {
        lake::Change::Replace
    };
    let published = ctx
        .lake
        .commit_run(
            &info,
            run,
            &files,
            change,
            digest,
            props,
            &lake::RewriteTuning {
                batch_rows: ctx.tuning.batch_rows(&info, grant.scale),
                row_group_rows: ctx.tuning.row_group_rows(&info, grant.scale),
                open_partitions: ctx.tuning.open_partitions,
            },
        )
        .await?;
    drop(files);
    crate::fault::point(&format!("after_publish:{table}"));
    rec.outputs.snapshot_id = Some(published.snapshot_id);
    rec.outputs.commit_found = published.found;
    rec.outputs.digest = Some(digest);
    rec.outputs.data_files = Some(data_files);
    match ctx.lake.expire(table, run).await {
        Ok(x) => {
            if !x.is_empty() {
                tracing::info!(table, "retention: {}", x.describe());
            }
            rec.outputs.snapshots = Some(x.left);
        }
        Err(e) => tracing::warn!(table, "retention could not expire old snapshots: {e}"),
    }
    ctx.succeed(rec)
}
