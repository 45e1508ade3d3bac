//! write_iceberg: one commit of the run's data files, then the atomic publish.
//!
//! The commit carries the run id in its snapshot summary; [`crate::lake::Lake::commit_and_publish`]
//! looks for it first, so a task that crashed after committing skips straight to publishing.

use std::collections::HashMap;

use crate::error::Result;
use crate::lake;
use crate::model::Stage;

use super::{Allowance, Ctx};

pub async fn run(ctx: &Ctx, table: &str, grant: &Allowance) -> Result<()> {
    let mut rec = ctx.start(table, Stage::WriteIceberg, grant)?;
    let run = &ctx.run_id;
    let (info, digest) = ctx.extracted(table)?;
    let files: Vec<String> = ctx
        .store
        .chunks(run, table)?
        .into_iter()
        .flat_map(|c| c.files)
        .collect();
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
    let published = if append {
        // An incremental run adds its rows to the published table as a new snapshot.
        ctx.lake.append(&info, run, files, digest, props).await?
    } else {
        ctx.lake
            .commit_and_publish(&info, run, files, props)
            .await?
    };
    crate::fault::point(&format!("after_publish:{table}"));
    rec.outputs.snapshot_id = Some(published.snapshot_id);
    rec.outputs.commit_found = published.found;
    rec.outputs.digest = Some(digest);
    rec.outputs.data_files = Some(data_files);
    match ctx.lake.prune_old_runs(table, run).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(table, "removed the files of {n} older run(s)"),
        Err(e) => tracing::warn!(table, "could not remove files of older runs: {e}"),
    }
    ctx.succeed(rec)
}
