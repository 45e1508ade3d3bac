//! Targets: where tables go after the lake.
//!
//! A closed enum like the sources. The load reads the data files of the table's committed lake
//! snapshot (never the source again), so a failed load is retried without re-extracting, and a
//! load can run on its own later. Exactly-once rests on what each target can make atomic:
//! SQLite and MySQL commit each data file's rows and its ledger row in one transaction;
//! StarRocks dedups by deterministic Stream Load labels whose outcome the state store records.
//! A full run loads into a staging table that is swapped in at the end, so readers see the old
//! table or the new one, never half.

pub mod mysql;
pub mod mysql_rows;
pub mod sqlite;
pub mod starrocks;

use arrow_array::RecordBatch;
use futures::StreamExt;
use futures::stream::BoxStream;
use iceberg::arrow::ArrowFileReader;
use iceberg::io::FileIO;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::async_reader::ParquetRecordBatchStream;
use tokio::sync::mpsc;

use crate::config::TargetConfig;
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

/// Local path of a data file location (`file:///x` or `/x`).
pub fn local_path(location: &str) -> &str {
    location.strip_prefix("file://").unwrap_or(location)
}

/// Whether a location names a local file (a plain path or `file://`), not an object store.
fn is_local(location: &str) -> bool {
    location.starts_with("file://") || !location.contains("://")
}

/// The record batches of one Parquet data file, read on a blocking thread.
///
/// Local files are read with the synchronous reader, as always. Object-store files (`s3://`) are
/// read through the lake's `FileIO` with iceberg's `ArrowFileReader`, which fetches the footer
/// and then only the byte ranges of the row group being decoded, so a file is never held in
/// memory whole; the async stream is driven from the blocking thread with the runtime handle.
pub enum ParquetBatches {
    Local(ParquetRecordBatchReader),
    Remote {
        rt: tokio::runtime::Handle,
        stream: ParquetRecordBatchStream<ArrowFileReader>,
    },
}

impl Iterator for ParquetBatches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        match self {
            ParquetBatches::Local(r) => r.next().map(|b| b.map_err(Error::from)),
            ParquetBatches::Remote { rt, stream } => {
                rt.block_on(stream.next()).map(|b| b.map_err(Error::from))
            }
        }
    }
}

/// Opens one Parquet data file for reading in batches of `batch_rows`, skipping its first
/// `offset` rows. Call it on a blocking thread (`spawn_blocking`) of the runtime: object-store
/// files are fetched through `io` on that runtime.
pub fn open_parquet(
    io: &FileIO,
    location: &str,
    batch_rows: usize,
    offset: usize,
) -> Result<ParquetBatches> {
    if is_local(location) {
        let path = local_path(location);
        let file = std::fs::File::open(path)
            .map_err(|e| Error::internal(format!("cannot open data file {path}: {e}")))?;
        let mut b =
            ParquetRecordBatchReaderBuilder::try_new(file)?.with_batch_size(batch_rows.max(1));
        if offset > 0 {
            b = b.with_offset(offset);
        }
        return Ok(ParquetBatches::Local(b.build()?));
    }
    let rt = tokio::runtime::Handle::try_current().map_err(|e| {
        Error::internal(format!(
            "reading data file {location} outside the runtime: {e}"
        ))
    })?;
    let opened = rt.block_on(async {
        let input = io.new_input(location)?;
        let reader = ArrowFileReader::new(input.metadata().await?, input.reader().await?);
        let mut b = ParquetRecordBatchStreamBuilder::new(reader)
            .await?
            .with_batch_size(batch_rows.max(1));
        if offset > 0 {
            b = b.with_offset(offset);
        }
        Ok::<_, Error>(b.build()?)
    });
    let stream = opened.map_err(|e| e.context(format!("cannot open data file {location}")))?;
    Ok(ParquetBatches::Remote { rt, stream })
}
