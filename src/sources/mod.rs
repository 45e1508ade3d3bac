//! Sources: where tables come from.
//!
//! Each kind of database is its own type in its own module ([`sqlite::SqliteSource`],
//! [`mssql::MssqlSource`]); [`Source`] is the closed set of them that the rest of `dag` holds.
//! Adding a source is its module, one config variant, and one line in each of [`Source`],
//! [`Source::build`] and the `each!` registry below. An enum rather than a trait object: calls
//! stay statically dispatched, the futures keep their concrete (`Send`) types without boxing,
//! and the compiler checks that every kind answers every call.
//!
//! Every source describes a table as a [`TableInfo`], splits it into key-range chunks and
//! streams a chunk as bounded Arrow batches through a channel of capacity one, so at most a few
//! batches per chunk exist at any moment whatever the table's size.

pub mod mssql;
pub mod sqlite;

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use tokio::sync::mpsc;

use crate::config::{SourceConfig, TableOverride};
use crate::error::{Error, Result};
use crate::model::fingerprint::Digest128;
use crate::model::{ChunkRange, CursorValue, TableInfo};

use mssql::MssqlSource;
use sqlite::SqliteSource;

/// One batch of a chunk with what the reader learnt while producing it.
#[derive(Debug)]
pub struct Piece {
    pub batch: RecordBatch,
    /// Fingerprint of the batch's rows, computed beside the reader.
    pub digest: Digest128,
    /// Values converted with a loss of precision, by column (only columns with any).
    pub lossy: BTreeMap<String, u64>,
}

#[derive(Debug, Clone)]
pub enum Source {
    Sqlite(SqliteSource),
    Mssql(MssqlSource),
}

/// The registry of kinds: runs `$call` with `$s` bound to whichever kind `$self` is.
macro_rules! each {
    ($self:expr, $s:ident => $call:expr) => {
        match $self {
            Source::Sqlite($s) => $call,
            Source::Mssql($s) => $call,
        }
    };
}

/// Bytes a batch may hold before it is cut early: wide text keeps batches bounded in memory.
pub const BATCH_BYTES: usize = 4 << 20;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("source worker panicked: {e}")))?
}

impl Source {
    /// Relative paths are taken from the directory `dag` runs in, as the workflow file says.
    pub fn build(cfg: &SourceConfig) -> Result<Source> {
        Ok(match cfg {
            SourceConfig::Sqlite {
                path,
                generate_demo,
                demo_big_rows,
            } => Source::Sqlite(SqliteSource::new(
                path,
                generate_demo.then_some(*demo_big_rows),
            )),
            SourceConfig::Mssql(settings) => Source::Mssql(MssqlSource::new(settings)?),
        })
    }

    /// Human-readable description without secrets.
    pub fn describe_location(&self) -> String {
        each!(self, s => s.describe_location())
    }

    /// Creates the embedded demo database if it is configured and missing.
    pub async fn prepare(&self) -> Result<()> {
        each!(self, s => s.prepare().await)
    }

    pub async fn tables(&self) -> Result<Vec<String>> {
        each!(self, s => s.tables().await)
    }

    /// Describes a table; its `[table.<NAME>]` settings may set the chunk key and exclude or
    /// cast columns.
    pub async fn describe(&self, table: &str, ov: Option<&TableOverride>) -> Result<TableInfo> {
        each!(self, s => s.describe(table, ov).await)
    }

    pub async fn plan_chunks(&self, info: &TableInfo, chunk_rows: u64) -> Result<Vec<ChunkRange>> {
        each!(self, s => s.plan_chunks(info, chunk_rows).await)
    }

    /// The largest value of `cursor` in the table now: the upper end of an incremental run.
    pub async fn cursor_max(&self, info: &TableInfo, cursor: &str) -> Result<Option<CursorValue>> {
        each!(self, s => s.cursor_max(info, cursor).await)
    }

    /// Days (since 1970-01-01) of the earliest and the latest value of a date/datetime column,
    /// `None` when no row has one (`partition = "auto"` weighs rows per day with it).
    pub async fn day_span(&self, info: &TableInfo, column: &str) -> Result<Option<(i64, i64)>> {
        each!(self, s => s.day_span(info, column).await)
    }

    /// Current row count (verify compares it with what was extracted).
    pub async fn count(&self, table: &str) -> Result<u64> {
        each!(self, s => s.count(table).await)
    }

    /// Streams one chunk as batches of at most `batch_rows` rows, each with its digest. The
    /// channel holds one batch, so the reader waits for the writer: memory stays at a few
    /// batches per chunk.
    pub fn stream_chunk(
        &self,
        info: &TableInfo,
        range: ChunkRange,
        batch_rows: usize,
    ) -> mpsc::Receiver<Result<Piece>> {
        each!(self, s => s.stream_chunk(info, range, batch_rows))
    }
}
