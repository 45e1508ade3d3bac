//! Reading the lake's data files back: the Parquet reader every stage after write_iceberg uses
//! (the targets' loads, verify's read of an incremental run's files).
//!
//! A load reads the committed snapshot's files, never the source again, so the lake must be
//! readable on its own, locally or from an object store, a batch at a time.

use arrow_array::{Array, ArrayRef, RecordBatch};
use futures::StreamExt;
use iceberg::arrow::ArrowFileReader;
use iceberg::io::FileIO;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::async_reader::ParquetRecordBatchStream;
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};

use crate::error::{Error, Result};

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
    open(io, location, batch_rows, offset, None)
}

/// Like [`open_parquet`] from the first row, reading only the top-level column `only` when
/// given (an incremental run's key check reads the key column alone).
pub fn open_parquet_columns(
    io: &FileIO,
    location: &str,
    batch_rows: usize,
    only: Option<&str>,
) -> Result<ParquetBatches> {
    open(io, location, batch_rows, 0, only)
}

/// The projection of `only` (a top-level column name) over a file's Parquet schema.
fn projection(
    meta: &parquet::file::metadata::ParquetMetaData,
    schema: &arrow_schema::SchemaRef,
    only: Option<&str>,
    location: &str,
) -> Result<Option<ProjectionMask>> {
    let Some(name) = only else {
        return Ok(None);
    };
    let i = schema
        .fields()
        .iter()
        .position(|f| f.name() == name)
        .ok_or_else(|| Error::internal(format!("data file {location} has no column {name}")))?;
    Ok(Some(ProjectionMask::roots(
        meta.file_metadata().schema_descr(),
        [i],
    )))
}

fn open(
    io: &FileIO,
    location: &str,
    batch_rows: usize,
    offset: usize,
    only: Option<&str>,
) -> Result<ParquetBatches> {
    if is_local(location) {
        let path = local_path(location);
        let file = std::fs::File::open(path)
            .map_err(|e| Error::internal(format!("cannot open data file {path}: {e}")))?;
        let mut b =
            ParquetRecordBatchReaderBuilder::try_new(file)?.with_batch_size(batch_rows.max(1));
        if let Some(mask) = projection(b.metadata(), b.schema(), only, location)? {
            b = b.with_projection(mask);
        }
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
        if let Some(mask) = projection(b.metadata(), b.schema(), only, location)? {
            b = b.with_projection(mask);
        }
        if offset > 0 {
            b = b.with_offset(offset);
        }
        Ok::<_, Error>(b.build()?)
    });
    let stream = opened.map_err(|e| e.context(format!("cannot open data file {location}")))?;
    Ok(ParquetBatches::Remote { rt, stream })
}

/// `b`'s columns as `schema` has them: by name, cast where a column was widened, null where the
/// file predates a column.
pub fn conform(b: &RecordBatch, schema: &arrow_schema::SchemaRef) -> Result<RecordBatch> {
    let cols = schema
        .fields()
        .iter()
        .map(|f| match b.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => Ok(arrow_cast::cast(c, f.data_type())?),
            None => Ok(arrow_array::new_null_array(f.data_type(), b.num_rows())),
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        cols,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
    )?)
}
