//! The four stages of a table: extract, write_iceberg, load, verify.
//!
//! Each stage is one file with one entry point taking the shared [`Ctx`]. They share a life
//! cycle, kept here: mark the task running (durably), do the work, record outputs and success
//! (durably) before returning, so the scheduler starts successors only after that. The stages
//! know nothing of the executor: they get an [`Allowance`] (what their grant lets them hold).

mod extract;
pub mod incremental;
mod load;
mod verify;
mod write_iceberg;

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::model::Stage;
use crate::model::TableInfo;
use crate::model::fingerprint::Digest128;
use crate::progress::Progress;
use crate::sources::Source;
use crate::store::{Store, TaskRecord, TaskStatus, now};
use crate::targets::Target;

/// Most bytes (by the table's estimated row width) of rows in one Arrow batch. On the 66-column
/// table, batches of 4 MiB (about 1,500 rows) move rows as fast as batches of 8,192 rows (about
/// 20 MiB), and every batch in flight (being filled, queued, encoded) costs its size.
pub const BATCH_BYTES: u64 = 4 << 20;

/// Buffers and sizes derived from the limits (before a grant's scale is applied).
#[derive(Debug, Clone)]
pub struct Tuning {
    pub batch_rows: usize,
    /// Most bytes a Parquet row group may buffer before it is flushed.
    pub row_group_bytes: u64,
    pub default_chunk_rows: u64,
    /// Bytes the target's load holds besides batches (request bodies, INSERT statements).
    pub load_bytes: u64,
    /// Most bytes of rows a load reads at a time, when the target bounds them (MySQL).
    pub load_batch_bytes: Option<u64>,
    /// Bytes a data file being written holds in the lake's storage layer: nothing on local disk;
    /// on S3 the multipart part being filled (5 MiB, S3's smallest part) and the one uploading.
    pub lake_write_bytes: u64,
    /// Partition writers an extract chunk of a day-partitioned table keeps open at once.
    pub open_partitions: usize,
}

impl Tuning {
    /// Rows per Arrow batch for `info`: `limits.batch_rows`, but no more than [`BATCH_BYTES`]
    /// of rows (so a wide table's batches, and the builders filling them, stay as small in bytes
    /// as a narrow one's), times `scale` under a tight grant.
    pub fn batch_rows(&self, info: &TableInfo, scale: f64) -> usize {
        let by_bytes = (BATCH_BYTES / info.row_width().max(1)) as usize;
        ((self.batch_rows.min(by_bytes) as f64 * scale) as usize).max(64)
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

/// What a table's extract recorded: the table as the source described it, the digest of what
/// it read, and the number of data files its chunks wrote (none in records of older versions).
struct Extracted {
    info: TableInfo,
    digest: Digest128,
    data_files: Option<usize>,
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
    /// The task's record, or a new one.
    pub fn record(&self, table: &str, stage: Stage) -> Result<TaskRecord> {
        Ok(self
            .store
            .task(&self.run_id, table, stage)?
            .unwrap_or_else(|| TaskRecord::new(&self.run_id, table, stage)))
    }

    /// Marks a task running, durably, and returns its record.
    fn start(&self, table: &str, stage: Stage, grant: &Allowance) -> Result<TaskRecord> {
        let mut rec = self.record(table, stage)?;
        rec.status = TaskStatus::Running;
        rec.attempts += 1;
        rec.started_at = Some(now());
        rec.ended_at = None;
        rec.mem_estimate = grant.bytes;
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
        let mut files = Vec::new();
        for c in self.store.chunk_iter(&self.run_id, table) {
            files.extend(c?.paths);
        }
        files.sort();
        Ok(files)
    }

    /// What the table's extract recorded: the schema it moved and the digest of the rows the
    /// source returned. Every later stage works from these, never from the source again.
    fn extracted(&self, table: &str) -> Result<Extracted> {
        let rec = self
            .store
            .task(&self.run_id, table, Stage::Extract)?
            .ok_or_else(|| Error::internal("extract has no record"))?;
        let info = rec
            .outputs
            .schema
            .ok_or_else(|| Error::internal("extract recorded no schema"))?;
        Ok(Extracted {
            info,
            digest: rec.outputs.digest.unwrap_or_default(),
            data_files: rec.outputs.data_files,
        })
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

/// What the executor granted a task for one attempt.
#[derive(Debug, Clone, Copy)]
pub struct Allowance {
    /// Bytes reserved for it from the memory budget (held by the executor while it runs).
    pub bytes: u64,
    /// 1.0 normally; below 1 when its estimate exceeded the whole budget and it runs alone:
    /// it shrinks its buffers by this factor.
    pub scale: f64,
    pub attempt: u32,
    /// Source connections it may read with at once.
    pub slots: usize,
}

pub async fn run_stage(ctx: Arc<Ctx>, table: String, stage: Stage, grant: Allowance) -> Result<()> {
    let res = match stage {
        Stage::Extract => extract::run(&ctx, &table, &grant).await,
        Stage::WriteIceberg => write_iceberg::run(&ctx, &table, &grant).await,
        Stage::Load => load::run(&ctx, &table, &grant).await,
        Stage::Verify => verify::run(&ctx, &table, &grant).await,
    };
    res.map_err(|e| e.context(format!("table {table}, task {stage}")))
}
