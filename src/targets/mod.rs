//! Targets: where tables go after the lake.
//!
//! A closed enum like the sources. The load reads the data files of the table's committed lake
//! snapshot (never the source again), so a failed load is retried without re-extracting, and a
//! load can run on its own later. Exactly-once rests on what each target can make atomic:
//! SQLite and MySQL commit each data file's rows and its ledger row in one transaction;
//! StarRocks dedups by deterministic Stream Load labels whose outcome the state store records.
//! A full run loads into a staging table that is swapped in at the end, so readers see the old
//! table or the new one, never half.

pub(crate) mod ledger;
pub mod mysql;
pub mod sqlite;
pub mod starrocks;

use arrow_array::RecordBatch;
use futures::stream::BoxStream;
use tokio::sync::mpsc;

use crate::config::{TableOverride, TargetConfig};
use crate::error::{Error, Result};
use crate::model::TableInfo;

#[derive(Debug, Clone)]
pub enum Target {
    Sqlite(sqlite::SqliteTarget),
    Mysql(mysql::MysqlTarget),
    StarRocks(Box<starrocks::StarRocksTarget>),
}

impl Target {
    pub fn build(cfg: &TargetConfig) -> Result<Target> {
        match cfg {
            TargetConfig::Sqlite { path } => {
                Ok(Target::Sqlite(sqlite::SqliteTarget { path: path.clone() }))
            }
            TargetConfig::Mysql(m) => Ok(Target::Mysql(mysql::MysqlTarget::new(m)?)),
            TargetConfig::StarRocks(s) => Ok(Target::StarRocks(Box::new(
                starrocks::StarRocksTarget::new(s)?,
            ))),
        }
    }

    pub fn describe_location(&self) -> String {
        match self {
            Target::Sqlite(t) => format!("sqlite {}", t.path.display()),
            Target::Mysql(t) => t.describe_location(),
            Target::StarRocks(t) => t.describe_location(),
        }
    }

    /// The published table read back as record batches typed like `info`.
    pub fn scan(
        &self,
        info: &TableInfo,
        batch_rows: usize,
    ) -> BoxStream<'static, Result<RecordBatch>> {
        match self {
            Target::Sqlite(t) => receiver_stream(t.scan(info, batch_rows)),
            Target::Mysql(t) => receiver_stream(t.scan(info, batch_rows)),
            Target::StarRocks(t) => receiver_stream(t.scan(info, batch_rows)),
        }
    }

    /// Rows in the published table.
    pub async fn count(&self, info: &TableInfo) -> Result<u64> {
        match self {
            Target::Sqlite(t) => {
                let (t, info) = (t.clone(), info.clone());
                tokio::task::spawn_blocking(move || t.count(&info))
                    .await
                    .map_err(|e| Error::internal(format!("count worker panicked: {e}")))?
            }
            Target::Mysql(t) => t.count(info).await,
            Target::StarRocks(t) => t.count(info).await,
        }
    }
}

/// What one table's load needs to know.
pub struct LoadJob<'a> {
    pub workflow: &'a str,
    pub run: &'a str,
    pub info: &'a TableInfo,
    pub ov: Option<&'a TableOverride>,
    /// The data files to load, sorted: the committed snapshot's (a full refresh), or those this
    /// run wrote (an incremental run that appends).
    pub files: &'a [String],
    /// Reads the data files (local or object store).
    pub io: &'a iceberg::io::FileIO,
    pub batch_rows: usize,
    /// The lake namespace, for `load = "lake"`.
    pub lake_namespace: String,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct LoadSummary {
    /// Units (data files; StarRocks: requests or INSERT jobs) that loaded rows in this attempt.
    pub loaded: u32,
    /// Units found already loaded (recorded by an earlier attempt, or a label StarRocks knew).
    pub found: u32,
}

/// A channel of batches as a stream.
pub fn receiver_stream(
    rx: mpsc::Receiver<Result<RecordBatch>>,
) -> BoxStream<'static, Result<RecordBatch>> {
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// `name` as a backquoted identifier (a backquote in it doubled), as MySQL and StarRocks quote
/// names.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}
