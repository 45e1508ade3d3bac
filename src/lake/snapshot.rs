//! Reading the lake tables back: the files of the current snapshot for a load, what the
//! snapshot says about its extract (`--from load`), its rows and fingerprint for verify, and how
//! the source's columns differ from the lake's.

use futures::TryStreamExt;

use super::{FINGERPRINT_PROP, Lake, LakeExtract, ROWS_PROP, RUN_ID_PROP, TABLE_INFO_PROP, schema};
use crate::error::{Error, Result};
use crate::model::TableInfo;
use crate::model::fingerprint::Digest128;

impl Lake {
    /// The data files of the table's current snapshot, sorted by path, after checking that the
    /// snapshot is `expected` (the one this run committed): a load must move exactly what the
    /// run published, so a table replaced in between is an error, not a silent mix.
    pub async fn snapshot_files(&self, table: &str, expected: Option<i64>) -> Result<Vec<String>> {
        let t = self.load_table(table).await?;
        let current = t.metadata().current_snapshot_id();
        if let Some(want) = expected
            && current != Some(want)
        {
            return Err(Error::state(format!(
                "lake table {table} is at snapshot {current:?}, not {want} that this run \
                 committed: another run replaced it; start a new run"
            )));
        }
        let Some(snapshot) = t.metadata().current_snapshot() else {
            return Ok(Vec::new());
        };
        // Only the paths are kept (see `for_each_live_file`).
        let mut files = Vec::new();
        for_each_live_file(&t, snapshot, |df| files.push(df.file_path().to_string())).await?;
        files.sort();
        files.dedup();
        Ok(files)
    }

    /// How the source's columns differ from the published lake table's (nothing when the table
    /// was never published).
    pub async fn schema_diff(&self, info: &TableInfo) -> Result<schema::SchemaDiff> {
        Ok(match self.current_table(&info.name).await? {
            Some(t) => schema::diff(t.metadata().current_schema(), info),
            None => schema::SchemaDiff::default(),
        })
    }

    /// The extract behind the table's current snapshot, from the properties `write_iceberg`
    /// put in its summary: enough to load and verify a target without the source.
    pub async fn published_extract(&self, table: &str) -> Result<LakeExtract> {
        let t = self.load_table(table).await.map_err(|e| {
            Error::config(format!(
                "lake table {}.{table} cannot be read ({e}): run the workflow without --from \
                 first",
                self.namespace()
            ))
        })?;
        let snap = t.metadata().current_snapshot().ok_or_else(|| {
            Error::config(format!(
                "lake table {}.{table} has no snapshot: run the workflow without --from first",
                self.namespace()
            ))
        })?;
        let props = &snap.summary().additional_properties;
        let missing = |key: &str| {
            Error::config(format!(
                "lake table {}.{table}: its current snapshot {} has no `{key}` (written by \
                 another tool or an older dag): run the workflow without --from first",
                self.namespace(),
                snap.snapshot_id()
            ))
        };
        let info: TableInfo = serde_json::from_str(
            props
                .get(TABLE_INFO_PROP)
                .ok_or_else(|| missing(TABLE_INFO_PROP))?,
        )
        .map_err(|e| Error::state(format!("lake table {table}: bad {TABLE_INFO_PROP}: {e}")))?;
        let rows = props
            .get(ROWS_PROP)
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| missing(ROWS_PROP))?;
        let fingerprint = props
            .get(FINGERPRINT_PROP)
            .ok_or_else(|| missing(FINGERPRINT_PROP))?;
        let digest = Digest128::from_parts(rows, fingerprint).ok_or_else(|| {
            Error::state(format!(
                "lake table {table}: bad {FINGERPRINT_PROP} {fingerprint:?}"
            ))
        })?;
        Ok(LakeExtract {
            info,
            digest,
            snapshot_id: snap.snapshot_id(),
            run: props.get(RUN_ID_PROP).cloned().unwrap_or_default(),
        })
    }

    /// Rows in the table's current snapshot, from its summary (no data read).
    pub async fn snapshot_rows(&self, table: &str) -> Result<u64> {
        let t = self.load_table(table).await?;
        Ok(t.metadata()
            .current_snapshot()
            .and_then(|s| {
                s.summary()
                    .additional_properties
                    .get("total-records")
                    .cloned()
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// The table's current snapshot as a stream of record batches of up to `batch_rows` rows.
    pub async fn batches(
        &self,
        table: &str,
        batch_rows: usize,
    ) -> Result<futures::stream::BoxStream<'static, Result<arrow_array::RecordBatch>>> {
        let t = self.load_table(table).await?;
        if t.metadata().current_snapshot().is_none() {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let stream = scan(&t, batch_rows)?.to_arrow().await?;
        Ok(Box::pin(stream.map_err(Error::from)))
    }

    /// Count and fingerprint of the table's current snapshot, read back a data file at a time
    /// in batches of up to `batch_rows` rows, each file's columns laid onto the current schema
    /// as a scan does (by name, widened types cast, columns a file predates null). Not through
    /// iceberg's scan: its planning holds a task per data file, thousands for a day-partitioned
    /// table, outside any reservation.
    pub async fn digest(&self, table: &str, batch_rows: usize) -> Result<Digest128> {
        let t = self.load_table(table).await?;
        if t.metadata().current_snapshot().is_none() {
            return Ok(Digest128::default());
        }
        let files = self
            .snapshot_files(table, t.metadata().current_snapshot_id())
            .await?;
        let schema = std::sync::Arc::new(iceberg::arrow::schema_to_arrow_schema(
            t.metadata().current_schema(),
        )?);
        let io = self.file_io().clone();
        tokio::task::spawn_blocking(move || {
            let mut d = Digest128::default();
            for f in &files {
                for b in super::read::open_parquet(&io, f, batch_rows, 0)? {
                    let b = super::read::conform(&b?, &schema)?;
                    d.add_batch(&b).map_err(Error::internal)?;
                }
            }
            Ok(d)
        })
        .await
        .map_err(|e| Error::internal(format!("lake reader panicked: {e}")))?
    }
}

/// The manifests of `snapshot` of a table with metadata `md`, from its manifest list (their
/// entries are read one manifest at a time by the callers, never all at once).
pub(super) async fn manifests(
    io: &iceberg::io::FileIO,
    md: &iceberg::spec::TableMetadata,
    snapshot: &iceberg::spec::Snapshot,
) -> Result<Vec<iceberg::spec::ManifestFile>> {
    let list = io.new_input(snapshot.manifest_list())?.read().await?;
    let list = iceberg::spec::ManifestList::parse_with_version(&list, md.format_version())?;
    Ok(list.consume_entries().into_iter().collect())
}

/// The manifests of `snapshot` (of table `name` with metadata `md`) that hold live data files:
/// those that only record files an earlier snapshot removed are left out. A snapshot with
/// delete files is refused: dag writes none, and ignoring them would read deleted rows.
pub(super) async fn data_manifests(
    io: &iceberg::io::FileIO,
    md: &iceberg::spec::TableMetadata,
    snapshot: &iceberg::spec::Snapshot,
    name: &str,
) -> Result<Vec<iceberg::spec::ManifestFile>> {
    let mut out = Vec::new();
    for m in manifests(io, md, snapshot).await? {
        if m.content != iceberg::spec::ManifestContentType::Data {
            return Err(Error::state(format!(
                "lake table {name} has delete files ({}), which dag does not write",
                m.manifest_path
            )));
        }
        if m.has_added_files() || m.has_existing_files() {
            out.push(m);
        }
    }
    Ok(out)
}

/// Calls `f` with each live data file of `snapshot` of table `t`, reading one manifest at a
/// time (a table of many small files, a partitioned one, would otherwise hold every file's
/// statistics at once, as a scan's planning does).
pub(super) async fn for_each_live_file(
    t: &iceberg::table::Table,
    snapshot: &iceberg::spec::Snapshot,
    mut f: impl FnMut(&iceberg::spec::DataFile),
) -> Result<()> {
    let io = t.file_io();
    for m in data_manifests(io, t.metadata(), snapshot, t.identifier().name()).await? {
        let manifest = m.load_manifest(io).await?;
        for e in manifest.entries().iter().filter(|e| e.is_alive()) {
            f(e.data_file());
        }
    }
    Ok(())
}

/// Data files a scan reads at once (and manifests it plans from at once). iceberg-rust's
/// default is the number of CPUs, and each file being read holds a row group's column chunks:
/// on a large machine that is dozens of row groups, outside any reservation.
const READ_FILES: usize = 2;

/// A scan of every column of the table's current snapshot, bounded in files read at once and
/// in rows per batch.
fn scan(t: &iceberg::table::Table, batch_rows: usize) -> Result<iceberg::scan::TableScan> {
    Ok(t.scan()
        .select_all()
        .with_batch_size(Some(batch_rows.max(1)))
        .with_concurrency_limit(READ_FILES)
        .build()?)
}
