//! verify: read-only comparison of what the source returned, what the lake holds and what the
//! target holds, by row count and content fingerprint.
//!
//! The source side is the fingerprint recorded at extraction (the rows that were moved); the
//! lake is read back through Iceberg and the target through its own reader. The source's current
//! count is also taken: a difference there means the source moved on since extraction, which is
//! reported, not treated as a failed copy.

use crate::error::{Error, ErrorKind, Result};
use crate::sched::Grant;
use crate::store::Stage;
use crate::target::Target;

use super::Ctx;

pub async fn run(ctx: &Ctx, table: &str, grant: &Grant) -> Result<()> {
    let mut rec = ctx.start(table, Stage::Verify, grant)?;
    let (info, source) = ctx.extracted(table)?;
    let lake = ctx.lake.digest(table).await?;
    let mut problems = Vec::new();
    if lake != source {
        problems.push(format!("lake has {lake}, source gave {source}"));
    }
    rec.outputs.lake = Some(lake);
    if let Some(Target::Sqlite(t)) = ctx.target.clone() {
        let batch_rows = ctx.tuning.batch_rows(grant.scale);
        let info = info.clone();
        let target = tokio::task::spawn_blocking(move || t.digest(&info, batch_rows))
            .await
            .map_err(|e| Error::internal(format!("verify worker panicked: {e}")))??;
        if target != source {
            problems.push(format!("target has {target}, source gave {source}"));
        }
        rec.outputs.target = Some(target);
    }
    rec.outputs.digest = Some(source);
    let now_rows = ctx.source.count(table).await?;
    rec.outputs.source_rows_now = Some(now_rows);
    if now_rows != source.rows {
        rec.outputs.note = Some(format!(
            "the source now has {now_rows} rows; {} were extracted (it changed since)",
            source.rows
        ));
    }
    if !problems.is_empty() {
        return Err(Error::new(ErrorKind::Mismatch, problems.join("; ")));
    }
    ctx.progress.line(&format!("{table}.verify: OK, {source}"));
    ctx.succeed(rec)
}
