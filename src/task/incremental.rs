//! Incremental tables (`mode = "incremental"`): which rows a run moves, and the watermark after.
//!
//! A run of an incremental table either *appends* the rows whose cursor is past the stored
//! watermark, up to the cursor's maximum taken when its extract starts (`low < cursor <= high`,
//! so rows written during the run are left for the next one), or makes a *full refresh* that
//! replaces the lake and target tables with every row up to `high`. The choice is made once, on
//! the extract's first attempt, and recorded in the extract's schema ([`TableInfo::incremental`])
//! so every later stage and every resumed attempt works on the same range. The watermark moves
//! to `high` only when verify has checked the target ([`advance`]); a crash before that resumes
//! the same run, whose lake append and target loads are idempotent.
//!
//! What cursors cannot see: a row deleted in the source leaves no cursor value behind, so it stays
//! in the lake and the target until a full refresh (`full_refresh = "weekly"`); a row updated
//! without moving its cursor forward is missed the same way.

use crate::config::{Mode, TableOverride};
use crate::error::{Error, Result};
use crate::model::{ColType, CursorValue, Incremental, TableInfo};
use crate::store::Watermark;

use super::Ctx;

/// The range of this run for `info` (`None` for a table in full mode), with a line saying why.
/// May adjust `info`: an append keeps the published table's partitioning.
pub async fn decide(
    ctx: &Ctx,
    table: &str,
    info: &mut TableInfo,
    ov: Option<&TableOverride>,
    schema_changed: bool,
) -> Result<Option<(Incremental, String)>> {
    let Some(ov) = ov.filter(|o| o.mode == Mode::Incremental) else {
        return Ok(None);
    };
    let wanted = ov.cursor.as_deref().unwrap_or_default();
    let Some(col) = info
        .columns
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(wanted))
    else {
        return Err(Error::config(format!(
            "table {table}: cursor column {wanted} is not among its columns ({})",
            info.columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    if !matches!(
        col.ty,
        ColType::Int32 | ColType::Int64 | ColType::Date | ColType::Timestamp | ColType::TimestampTz
    ) {
        return Err(Error::config(format!(
            "table {table}: cursor column {} is {:?}; a cursor must be an integer, rowversion, \
             date or datetime column that grows with every insert and update",
            col.name, col.ty
        )));
    }
    let cursor = col.name.clone();
    let wm = ctx.store.watermark(table)?;
    let published = if ctx.lake.is_published(table).await? {
        ctx.lake.published_extract(table).await.ok()
    } else {
        None
    };
    let refresh_due = |w: &Watermark| {
        ov.full_refresh_secs.is_some_and(|secs| {
            (chrono::Utc::now() - w.full_refresh_at.time()).num_seconds() >= secs as i64
        })
    };
    let full_reason = match (&wm, &published) {
        (None, _) => Some("first run of the table".to_string()),
        (_, None) => Some("the lake table is missing".to_string()),
        (Some(w), _) if !w.cursor.eq_ignore_ascii_case(&cursor) => {
            Some(format!("the cursor changed from {} to {cursor}", w.cursor))
        }
        _ if schema_changed => Some("the columns changed".to_string()),
        (Some(w), Some(p)) if p.run != w.run_id && p.run != w.full_refresh_run => {
            // The lake was replaced by a run that did not set this watermark (a run in full mode,
            // or one abandoned after it published): appending past the watermark would miss or
            // double rows.
            Some(format!(
                "the lake table was written by run {}, not by the run of the watermark ({})",
                p.run, w.run_id
            ))
        }
        (Some(w), _) if refresh_due(w) => Some(format!(
            "the last full refresh ({}) is older than full_refresh",
            w.full_refresh_at
        )),
        _ => None,
    };
    let high = ctx.source.cursor_max(info, &cursor).await?;
    let (inc, note) = match full_reason {
        Some(reason) => (
            Incremental {
                cursor: cursor.clone(),
                low: None,
                high,
                append: false,
            },
            format!(
                "full refresh ({reason}): rows with {cursor} up to {}",
                shown(high)
            ),
        ),
        None => {
            let low = wm.and_then(|w| w.value);
            if let Some(p) = &published {
                info.partition = p.info.partition.clone();
            }
            (
                Incremental {
                    cursor: cursor.clone(),
                    low,
                    high,
                    append: true,
                },
                format!(
                    "incremental: rows with {cursor} in ({}, {}]",
                    shown(low),
                    shown(high)
                ),
            )
        }
    };
    Ok(Some((inc, note)))
}

fn shown(v: Option<CursorValue>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}

/// Whether an append run has nothing to read (no cursor value past the watermark).
pub fn nothing_new(inc: &Incremental) -> bool {
    inc.append
        && match (inc.low, inc.high) {
            (_, None) => true,
            (Some(lo), Some(hi)) => hi <= lo,
            (None, Some(_)) => false,
        }
}

/// Moves the table's watermark to the end of the run's range, after its verify succeeded.
/// Repeating it (a verify resumed after a crash) writes the same record. `moved` is the rows the
/// run moved: a run that appended nothing leaves the lake at the snapshot of the watermark's run,
/// which stays the watermark's run (the next run checks that the lake is still at it).
pub fn advance(ctx: &Ctx, table: &str, inc: &Incremental, moved: u64) -> Result<()> {
    crate::fault::point(&format!("before_watermark:{table}"));
    let old = ctx.store.watermark(table)?;
    let now = crate::store::now();
    let (value, full_at, full_run) = if inc.append {
        let kept = old.as_ref().and_then(|w| w.value);
        let value = match (kept, inc.high) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => b.or(a),
        };
        let (at, run) = old
            .as_ref()
            .map(|w| (w.full_refresh_at, w.full_refresh_run.clone()))
            .unwrap_or_else(|| (now, ctx.run_id.clone()));
        (value, at, run)
    } else {
        (inc.high, now, ctx.run_id.clone())
    };
    let run_id = match &old {
        Some(w) if inc.append && moved == 0 => w.run_id.clone(),
        _ => ctx.run_id.clone(),
    };
    ctx.store.put_watermark(&Watermark {
        table: table.to_string(),
        cursor: inc.cursor.clone(),
        value,
        run_id,
        updated_at: now,
        full_refresh_at: full_at,
        full_refresh_run: full_run,
    })?;
    ctx.progress.line(&format!(
        "{table}: watermark {} = {}",
        inc.cursor,
        shown(value)
    ));
    Ok(())
}
