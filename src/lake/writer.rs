//! Writes one chunk's Arrow batches into Parquet data files of a (staging) Iceberg table.
//!
//! File names carry run, table, chunk and attempt, so a retried chunk can never overwrite a file
//! that an earlier attempt wrote (the local backend overwrites silently). Row groups are bounded
//! in rows so that the bytes the Parquet writer buffers stay inside the task's reservation.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use iceberg::spec::DataFileFormat;
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::{DataFileWriter, DataFileWriterBuilder};
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};

type Inner =
    DataFileWriter<ParquetWriterBuilder, DefaultLocationGenerator, DefaultFileNameGenerator>;

pub struct ChunkWriter {
    inner: Inner,
    schema: SchemaRef,
    partition_type: iceberg::spec::StructType,
    format_version: iceberg::spec::FormatVersion,
}

/// A data file as recorded in the state store.
pub struct WrittenFile {
    pub json: String,
    pub path: String,
    pub bytes: u64,
}

impl ChunkWriter {
    pub async fn new(table: &Table, prefix: String, row_group_rows: usize) -> Result<ChunkWriter> {
        let md = table.metadata();
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .set_max_row_group_row_count(Some(row_group_rows.max(1024)))
            .build();
        let schema = Arc::new(iceberg::arrow::schema_to_arrow_schema(md.current_schema())?);
        let rolling = RollingFileWriterBuilder::new_with_default_file_size(
            ParquetWriterBuilder::new(props, md.current_schema().clone()),
            table.file_io().clone(),
            DefaultLocationGenerator::new(md)?,
            DefaultFileNameGenerator::new(prefix, None, DataFileFormat::Parquet),
        );
        let inner = DataFileWriterBuilder::new(rolling).build(None).await?;
        Ok(ChunkWriter {
            inner,
            schema,
            partition_type: md.default_partition_type().clone(),
            format_version: md.format_version(),
        })
    }

    /// Writes a batch whose columns are in table-schema order.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())?;
        self.inner.write(batch).await?;
        Ok(())
    }

    pub async fn close(mut self) -> Result<Vec<WrittenFile>> {
        let files = self.inner.close().await?;
        files
            .into_iter()
            .map(|f| {
                let path = f.file_path().to_string();
                let bytes = f.file_size_in_bytes();
                let json = iceberg::spec::serialize_data_file_to_json(
                    f,
                    &self.partition_type,
                    self.format_version,
                )
                .map_err(Error::from)?;
                Ok(WrittenFile { json, path, bytes })
            })
            .collect()
    }
}
