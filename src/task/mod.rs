//! The four stages of a table: extract, write_iceberg, load, verify.
//!
//! Each stage is one file with one entry point taking the shared [`Ctx`]. They share a life
//! cycle, kept here: mark the task running (durably), do the work, record outputs and success
//! (durably) before returning, so the scheduler starts successors only after that. The [`Runner`]
//! impl maps scheduler callbacks (failure, retry, skip, interruption by a stop) onto task records.

mod extract;
pub mod incremental;
mod load;
mod verify;
mod write_iceberg;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::model::Stage;
use crate::model::TableInfo;
use crate::model::fingerprint::Digest128;
use crate::progress::Progress;
use crate::sched::{Grant, Runner};
use crate::sources::Source;
use crate::store::{Store, TaskRecord, TaskStatus, now};
use crate::targets::Target;

/// Buffers and sizes derived from the limits (before a grant's scale is applied).
#[derive(Debug, Clone)]
pub struct Tuning {
    pub batch_rows: usize,
    /// Most bytes a Parquet row group may buffer before it is flushed.
    pub row_group_bytes: u64,
    pub default_chunk_rows: u64,
    /// Bytes the target's load holds besides batches (request bodies, INSERT statements).
    pub load_bytes: u64,
    /// Bytes a data file being written holds in the lake's storage layer: nothing on local disk;
    /// on S3 the multipart part being filled (5 MiB, S3's smallest part) and the one uploading.
    pub lake_write_bytes: u64,
    /// Partition writers an extract chunk of a day-partitioned table keeps open at once.
    pub open_partitions: usize,
}

impl Tuning {
    pub fn batch_rows(&self, scale: f64) -> usize {
        ((self.batch_rows as f64 * scale) as usize).max(64)
    }

    /// Rows per Parquet row group of one data-file writer. A day-partitioned table's chunk has
    /// up to `open_partitions` writers buffering a row group each, so they share the bytes one
    /// writer of an unpartitioned table gets: the extract's peak does not grow with them.
    pub fn row_group_rows(&self, info: &TableInfo, scale: f64) -> usize {
        let rows = (self.row_group_bytes as f64 * scale) as u64
            / self.writers(info) as u64
            / info.row_width();
        rows.clamp(1024, 1 << 20) as usize
    }

    /// Data-file writers an extract chunk of `info` may hold open at once.
    pub fn writers(&self, info: &TableInfo) -> usize {
        if info.partition.is_some() {
            self.open_partitions.max(1)
        } else {
            1
        }
    }

    /// Bytes a task holds while streaming: batches in flight and the Parquet row group being
    /// built, never more than the whole table would take.
    pub fn estimate(&self, stage: Stage, info: &TableInfo) -> u64 {
        const MIB: u64 = 1 << 20;
        let w = info.row_width();
        let whole = info.rows.max(1) * w;
        let batch = (self.batch_rows as u64 * w).min(whole);
        match stage {
            Stage::Extract => {
                let rg = (self.row_group_rows(info, 1.0) as u64 * w).min(whole);
                // builders + one batch in the channel + one being encoded, plus the row group
                let plain = 3 * batch + 2 * rg + self.lake_write_bytes + 8 * MIB;
                if info.partition.is_none() {
                    return plain;
                }
                // Partitioned: `open_partitions` writers each buffer a row group of their own
                // (row_group_rows already divided the bytes among them, but its 1024-row floor
                // can make the sum larger, so count each) plus about 1 MiB of page buffers and
                // encoder state per writer for Parquet's per-column pages that a row group of
                // a few thousand rows does not amortise. The writer gathers n row groups of
                // rows before writing them grouped by day, and a flush holds them twice (the
                // gathered batches and their concatenation, then that and its copy sorted by
                // day) plus 8 bytes a row of day numbers and sort order: counted as three.
                let n = self.writers(info) as u64;
                let gathered = (n * rg).min(whole);
                // Each open writer on S3 also fills a multipart part of its own.
                3 * batch + 2 * n * rg + 3 * gathered + n * (MIB + self.lake_write_bytes) + 8 * MIB
            }
            Stage::WriteIceberg => 16 * MIB,
            // Reading a data file holds a row group's column chunks besides the batches.
            Stage::Load => {
                let rg = (self.row_group_rows(info, 1.0) as u64 * w).min(whole);
                2 * batch + rg + self.load_bytes + 8 * MIB
            }
            Stage::Verify => 4 * batch + 16 * MIB,
        }
    }
}

/// What one table needs during the run.
#[derive(Debug, Clone)]
pub struct TablePlan {
    pub info: TableInfo,
    pub chunk_rows: u64,
    /// The table's `[table.<NAME>]` settings, if any.
    pub ov: Option<crate::config::TableOverride>,
    /// Connections its extract may read chunks with at once.
    pub connections: usize,
}

pub struct Ctx {
    pub store: Arc<Store>,
    pub run_id: String,
    pub source: Source,
    pub lake: Arc<Lake>,
    pub target: Option<Target>,
    pub tables: HashMap<String, TablePlan>,
    pub tuning: Tuning,
    pub progress: Progress,
    pub verify: crate::config::VerifyMode,
    /// The workflow's name (part of every Stream Load label).
    pub workflow: String,
    /// The run works from the lake alone (`--from load`): the source is never contacted.
    pub from_lake: bool,
    /// The workflow's `schema_changes` (tables may override).
    pub schema_changes: crate::config::SchemaChanges,
    /// The `[lake]` settings (partitioning of a table described only at its extract).
    pub lake_cfg: crate::config::LakeConfig,
}

impl Ctx {
    fn record(&self, table: &str, stage: Stage) -> Result<TaskRecord> {
        Ok(self
            .store
            .task(&self.run_id, table, stage)?
            .unwrap_or_else(|| TaskRecord::new(&self.run_id, table, stage)))
    }

    /// Marks a task running, durably, and returns its record.
    fn start(&self, table: &str, stage: Stage, grant: &Grant) -> Result<TaskRecord> {
        let mut rec = self.record(table, stage)?;
        rec.status = TaskStatus::Running;
        rec.attempts += 1;
        rec.started_at = Some(now());
        rec.ended_at = None;
        rec.mem_estimate = grant.reservation.bytes();
        self.store.put_task(&rec)?;
        crate::fault::fail(table, stage.name(), grant.attempt)?;
        Ok(rec)
    }

    fn succeed(&self, mut rec: TaskRecord) -> Result<()> {
        rec.status = TaskStatus::Succeeded;
        rec.ended_at = Some(now());
        rec.last_error = None;
        self.store.put_task(&rec)
    }

    /// The data files this run's extract wrote for `table`, sorted: what an incremental run
    /// appends to the lake, loads and verifies.
    fn run_files(&self, table: &str) -> Result<Vec<String>> {
        let mut files: Vec<String> = self
            .store
            .chunks(&self.run_id, table)?
            .into_iter()
            .flat_map(|c| c.paths)
            .collect();
        files.sort();
        Ok(files)
    }

    /// What the table's extract recorded: the schema it moved and the digest of the rows the
    /// source returned. Every later stage works from these, never from the source again.
    fn extracted(&self, table: &str) -> Result<(TableInfo, Digest128)> {
        let rec = self
            .store
            .task(&self.run_id, table, Stage::Extract)?
            .ok_or_else(|| Error::internal("extract has no record"))?;
        let info = rec
            .outputs
            .schema
            .ok_or_else(|| Error::internal("extract recorded no schema"))?;
        Ok((info, rec.outputs.digest.unwrap_or_default()))
    }

    /// `verify` of the table's override, else of the workflow.
    fn verify_mode(&self, table: &str) -> crate::config::VerifyMode {
        self.tables
            .get(table)
            .and_then(|p| p.ov.as_ref())
            .and_then(|o| o.verify)
            .unwrap_or(self.verify)
    }

    fn plan(&self, table: &str) -> Result<&TablePlan> {
        self.tables
            .get(table)
            .ok_or_else(|| Error::internal(format!("table {table} is not in the plan")))
    }
}

pub async fn run_stage(ctx: Arc<Ctx>, table: String, stage: Stage, grant: Grant) -> Result<()> {
    let res = match stage {
        Stage::Extract => extract::run(&ctx, &table, &grant).await,
        Stage::WriteIceberg => write_iceberg::run(&ctx, &table, &grant).await,
        Stage::Load => load::run(&ctx, &table, &grant).await,
        Stage::Verify => verify::run(&ctx, &table, &grant).await,
    };
    drop(grant);
    res.map_err(|e| e.context(format!("table {table}, task {stage}")))
}

pub struct TaskRunner {
    pub ctx: Arc<Ctx>,
    pub nodes: Vec<(String, Stage)>,
}

impl TaskRunner {
    fn update(&self, idx: usize, f: impl FnOnce(&mut TaskRecord)) {
        let (table, stage) = &self.nodes[idx];
        match self.ctx.record(table, *stage) {
            Ok(mut rec) => {
                f(&mut rec);
                if let Err(e) = self.ctx.store.put_task(&rec) {
                    tracing::error!(table, task = %stage, "cannot record the task's state: {e}");
                }
            }
            Err(e) => tracing::error!(table, task = %stage, "cannot read the task's state: {e}"),
        }
    }
}

impl Runner for TaskRunner {
    fn run(&self, idx: usize, grant: Grant) -> BoxFuture<'static, Result<()>> {
        let (table, stage) = self.nodes[idx].clone();
        let ctx = Arc::clone(&self.ctx);
        Box::pin(run_stage(ctx, table, stage, grant))
    }

    fn failed(&self, idx: usize, err: &Error, attempt: u32, retry_in: Option<Duration>) {
        let (table, stage) = &self.nodes[idx];
        match retry_in {
            Some(d) => self.ctx.progress.line(&format!(
                "{table}.{stage}: attempt {attempt} failed, retrying in {:.1}s: {err}",
                d.as_secs_f64()
            )),
            None => self
                .ctx
                .progress
                .line(&format!("{table}.{stage}: FAILED: {err}")),
        }
        self.update(idx, |r| {
            r.status = if retry_in.is_some() {
                TaskStatus::Pending
            } else {
                TaskStatus::Failed
            };
            r.ended_at = Some(now());
            r.last_error = Some(err.to_string());
        });
    }

    fn skipped(&self, idx: usize, cause: usize) {
        let (ct, cs) = &self.nodes[cause];
        let msg = format!("skipped because {ct}.{cs} did not succeed");
        self.update(idx, |r| {
            r.status = TaskStatus::Skipped;
            r.last_error = Some(msg);
        });
    }

    fn interrupted(&self, idx: usize, why: &str) {
        let (table, stage) = &self.nodes[idx];
        self.ctx.progress.line(&format!("{table}.{stage}: {why}"));
        self.update(idx, |r| {
            // A task aborted right after recording its success did finish: keep that, so the
            // next run does not redo it.
            if r.status != TaskStatus::Succeeded {
                r.status = TaskStatus::Pending;
                r.ended_at = Some(now());
                r.last_error = Some(why.to_string());
            }
        });
    }
}
