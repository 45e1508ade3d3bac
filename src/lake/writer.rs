//! Writes one chunk's Arrow batches into Parquet data files of a lake table (through the table
//! the run's writers write with, see `Lake::writer_table`).
//!
//! File names carry run, table, chunk and attempt, so a retried chunk can never overwrite a file
//! that an earlier attempt wrote (the local backend overwrites silently). Row groups are bounded
//! in rows so that the bytes the Parquet writer buffers stay inside the task's reservation.
//!
//! A day-partitioned table needs one Parquet writer per partition it writes to, and each writer
//! buffers a row group: the system this one replaces kept one per day and ran out of heap on long
//! histories. Here a chunk keeps at most `open_partitions` writers open and closes the least
//! recently used one when a row of another day arrives; its file stays part of the chunk and a
//! later row of that day opens a new writer and a new file. Rows ordered by day therefore need a
//! single open writer (clustered writing). Unordered rows would make a file per day per batch,
//! so a partitioned chunk first gathers rows up to the bytes its open writers may buffer anyway
//! (`buffer_rows`) and writes them grouped by day: a flush writes each day once, and files per
//! chunk are about flushes x days, not batches x days. Memory stays bounded either way.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use iceberg::io::FileIO;
use iceberg::spec::{DataFile, DataFileFormat, Literal, PartitionKey, Struct};
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

/// What every data-file writer of a chunk is built from.
struct Factory {
    parquet: ParquetWriterBuilder,
    file_io: FileIO,
    locations: DefaultLocationGenerator,
    prefix: String,
    /// Writers built so far: part of each writer's file-name prefix, because a name generator's
    /// counter starts at 0 for every writer and a partition may be reopened after eviction.
    built: u32,
}

impl Factory {
    async fn build(&mut self, key: Option<PartitionKey>) -> Result<Inner> {
        // The unpartitioned writer keeps the plain prefix (names as before partitioning existed).
        let prefix = match key {
            None => self.prefix.clone(),
            Some(_) => format!("{}-w{:05}", self.prefix, self.built),
        };
        self.built += 1;
        let rolling = RollingFileWriterBuilder::new_with_default_file_size(
            self.parquet.clone(),
            self.file_io.clone(),
            self.locations.clone(),
            DefaultFileNameGenerator::new(prefix, None, DataFileFormat::Parquet),
        );
        Ok(DataFileWriterBuilder::new(rolling).build(key).await?)
    }
}

/// An open partition writer and when it was last written to.
struct Open {
    /// The partition: days since 1970-01-01, `None` for the null partition.
    day: Option<i32>,
    writer: Inner,
    used: u64,
}

/// The writers of a partitioned table's chunk.
struct Partitioned {
    spec: iceberg::spec::PartitionSpecRef,
    iceberg_schema: iceberg::spec::SchemaRef,
    /// Index of the partition column in the batches.
    column: usize,
    open: Vec<Open>,
    max_open: usize,
    tick: u64,
    /// Batches gathered until `buffer_rows` rows are held, then written grouped by partition.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    buffer_rows: usize,
    /// Files of writers already closed.
    closed: Vec<DataFile>,
}

impl Partitioned {
    /// Writes the gathered rows, one slice per day, through the day's open writer or a new one
    /// (closing the least recently used when `max_open` are open).
    ///
    /// The day of each row is computed here rather than with iceberg's batch splitter, which
    /// builds a literal struct per row (over 100 bytes each, uncounted in the reservation):
    /// a day number per row and a sort permutation cost 8 bytes a row.
    async fn flush(&mut self, schema: &SchemaRef, factory: &mut Factory) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let all = arrow_select::concat::concat_batches(schema, &self.pending)?;
        self.pending.clear();
        self.pending_rows = 0;
        let days = day_numbers(all.column(self.column))?;
        let mut order: Vec<u32> = (0..all.num_rows() as u32).collect();
        order.sort_by_key(|&i| days[i as usize]);
        let order = arrow_array::UInt32Array::from(order);
        let sorted = arrow_select::take::take_record_batch(&all, &order)?;
        let order = order.values();
        drop(all);
        // Runs of one day in the sorted rows, open writers' days first: they need no new writer
        // and cannot be evicted by this flush's new ones before they are written.
        let mut runs = Vec::new();
        let mut start = 0;
        for i in 1..=order.len() {
            if i == order.len() || days[order[i] as usize] != days[order[start] as usize] {
                runs.push((days[order[start] as usize], start, i - start));
                start = i;
            }
        }
        runs.sort_by_key(|(d, _, _)| !self.open.iter().any(|o| o.day == *d));
        for (day, offset, len) in runs {
            self.tick += 1;
            // (A separate statement: an iterator in the match would be held across the awaits
            // below, and writers are not `Sync`.)
            let found = self.open.iter().position(|o| o.day == day);
            let at = match found {
                Some(i) => i,
                None => {
                    if self.open.len() >= self.max_open {
                        let lru = self
                            .open
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, o)| o.used)
                            .map_or(0, |(i, _)| i);
                        let mut old = self.open.swap_remove(lru);
                        self.closed.extend(old.writer.close().await?);
                    }
                    let key = PartitionKey::new(
                        self.spec.as_ref().clone(),
                        self.iceberg_schema.clone(),
                        Struct::from_iter([day.map(Literal::date)]),
                    );
                    let writer = factory.build(Some(key)).await?;
                    self.open.push(Open {
                        day,
                        writer,
                        used: 0,
                    });
                    self.open.len() - 1
                }
            };
            let o = &mut self.open[at];
            o.used = self.tick;
            o.writer.write(sorted.slice(offset, len)).await?;
        }
        Ok(())
    }
}

/// Days since 1970-01-01 of a DATE or timestamp (microseconds) column; `None` for NULL.
fn day_numbers(col: &arrow_array::ArrayRef) -> Result<Vec<Option<i32>>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, TimestampMicrosecondType};
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    match col.data_type() {
        arrow_schema::DataType::Date32 => Ok(col.as_primitive::<Date32Type>().iter().collect()),
        arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, _) => Ok(col
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .map(|v| v.map(|us| us.div_euclid(MICROS_PER_DAY) as i32))
            .collect()),
        other => Err(Error::internal(format!(
            "partition column of type {other} is not a date or timestamp"
        ))),
    }
}

enum Mode {
    Plain(Box<Inner>),
    Partitioned(Box<Partitioned>),
}

pub struct ChunkWriter {
    factory: Factory,
    mode: Mode,
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
    /// A writer of one chunk. `open_partitions` bounds the partition writers open at once when
    /// the table has a partition spec (ignored otherwise); `row_group_rows` is per writer, and a
    /// partitioned chunk gathers `row_group_rows * open_partitions` rows before writing them.
    pub async fn new(
        table: &Table,
        prefix: String,
        row_group_rows: usize,
        open_partitions: usize,
    ) -> Result<ChunkWriter> {
        let row_group_rows = row_group_rows.max(1024);
        let md = table.metadata();
        let page = super::page_bytes(md.current_schema().as_struct().fields().len());
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .set_max_row_group_row_count(Some(row_group_rows))
            .set_data_page_size_limit(page)
            .set_dictionary_page_size_limit(page)
            .build();
        let schema = Arc::new(iceberg::arrow::schema_to_arrow_schema(md.current_schema())?);
        let mut factory = Factory {
            parquet: ParquetWriterBuilder::new(props, md.current_schema().clone()),
            file_io: table.file_io().clone(),
            locations: DefaultLocationGenerator::new(md)?,
            prefix,
            built: 0,
        };
        let spec = md.default_partition_spec();
        let mode = if spec.is_unpartitioned() {
            Mode::Plain(Box::new(factory.build(None).await?))
        } else {
            let source = spec
                .fields()
                .first()
                .map(|f| f.source_id)
                .ok_or_else(|| Error::internal("partition spec without fields"))?;
            let column = md
                .current_schema()
                .as_struct()
                .fields()
                .iter()
                .position(|f| f.id == source)
                .ok_or_else(|| Error::internal("partition source column not in the schema"))?;
            Mode::Partitioned(Box::new(Partitioned {
                spec: spec.clone(),
                iceberg_schema: md.current_schema().clone(),
                column,
                open: Vec::new(),
                max_open: open_partitions.max(1),
                tick: 0,
                pending: Vec::new(),
                pending_rows: 0,
                buffer_rows: row_group_rows * open_partitions.max(1),
                closed: Vec::new(),
            }))
        };
        Ok(ChunkWriter {
            factory,
            mode,
            schema,
            partition_type: md.default_partition_type().clone(),
            format_version: md.format_version(),
        })
    }

    /// Writes a batch whose columns are in table-schema order.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())?;
        match &mut self.mode {
            Mode::Plain(w) => w.write(batch).await?,
            Mode::Partitioned(p) => {
                p.pending_rows += batch.num_rows();
                p.pending.push(batch);
                if p.pending_rows >= p.buffer_rows {
                    p.flush(&self.schema, &mut self.factory).await?;
                }
            }
        }
        Ok(())
    }

    pub async fn close(self) -> Result<Vec<WrittenFile>> {
        let files = match self.mode {
            Mode::Plain(mut w) => w.close().await?,
            Mode::Partitioned(mut p) => {
                let mut factory = self.factory;
                p.flush(&self.schema, &mut factory).await?;
                let p = *p;
                let mut files = p.closed;
                for mut o in p.open {
                    files.extend(o.writer.close().await?);
                }
                files
            }
        };
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
