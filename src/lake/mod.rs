//! The Iceberg lake: catalog, chunk writers, the per-run commit and the atomic publish.
//!
//! iceberg 0.10.1 can only append (no overwrite action), yet a full run must replace a table so
//! that readers see the old contents or the new, never half and never both. So each run writes
//! into its own *staging* table (namespace `<ns>_dag_staging`, name `<table>__<run>`, location
//! `<warehouse>/<ns>/<table>/<run>`), commits there once with the run id in the snapshot summary,
//! and then *publishes*: one transaction on the SQL catalog's database points the real table's
//! `metadata_location` at the staging metadata (compare-and-swap on the old location, as the
//! catalog itself commits) and drops the staging row. Every step can be repeated after a crash:
//! the commit is skipped when a snapshot already carries the run id, and the publish is skipped
//! when the real table already points at this run's metadata.

pub mod partition;
pub mod writer;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use iceberg::spec::{NestedField, Schema};
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableCreation, TableIdent};
use iceberg_catalog_sql::{SqlCatalog, SqlCatalogBuilder};
use sqlx::Row;

use crate::error::{Error, Result};
use crate::fingerprint::Digest128;
use crate::types::TableInfo;

pub use writer::ChunkWriter;

/// Snapshot summary keys we write.
pub const RUN_ID_PROP: &str = "dag.run-id";
pub const TASK_PROP: &str = "dag.task";

pub struct Lake {
    catalog: Arc<SqlCatalog>,
    db: sqlx::AnyPool,
    catalog_name: String,
    namespace: NamespaceIdent,
    staging: NamespaceIdent,
    warehouse: PathBuf,
    /// SQLite catalogs fail with "database is locked" on concurrent commits (not retried by the
    /// crate): catalog writes from this process go one at a time.
    commit_lock: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone)]
pub struct LakeSettings {
    pub uri: String,
    pub catalog_name: String,
    pub warehouse: PathBuf,
    pub namespace: String,
}

/// What `commit_and_publish` did.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    pub snapshot_id: i64,
    /// The commit had already been made by an earlier (crashed) attempt.
    pub found: bool,
}

fn sqlite_file(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

impl Lake {
    pub async fn open(s: &LakeSettings) -> Result<Lake> {
        std::fs::create_dir_all(&s.warehouse).map_err(|e| {
            Error::config(format!(
                "lake.warehouse: cannot create {}: {e}",
                s.warehouse.display()
            ))
        })?;
        let warehouse = s.warehouse.canonicalize()?;
        let mut uri = s.uri.clone();
        if let Some(file) = sqlite_file(&uri) {
            if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            // WAL lets readers (pyiceberg, `dag status`) in while we commit; it is a property of
            // the file, so set it once here.
            let c = rusqlite::Connection::open(&file)?;
            c.pragma_update(None, "journal_mode", "WAL")?;
            drop(c);
            if !uri.contains('?') {
                uri.push_str("?mode=rwc");
            }
        }
        let props = HashMap::from([
            ("uri".to_string(), uri.clone()),
            (
                "warehouse".to_string(),
                warehouse.to_string_lossy().into_owned(),
            ),
            ("sql_bind_style".to_string(), "QMark".to_string()),
        ]);
        let catalog = SqlCatalogBuilder::default()
            .with_storage_factory(Arc::new(iceberg::io::LocalFsStorageFactory))
            .load(&s.catalog_name, props)
            .await
            .map_err(|e| Error::unavailable(format!("lake catalog {}: {e}", s.uri)))?;
        sqlx::any::install_default_drivers();
        let db = sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&uri)
            .await?;
        let namespace = NamespaceIdent::new(s.namespace.clone());
        let staging = NamespaceIdent::new(format!("{}_dag_staging", s.namespace));
        for ns in [&namespace, &staging] {
            if !catalog.namespace_exists(ns).await? {
                catalog.create_namespace(ns, HashMap::new()).await?;
            }
        }
        Ok(Lake {
            catalog: Arc::new(catalog),
            db,
            catalog_name: s.catalog_name.clone(),
            namespace,
            staging,
            warehouse,
            commit_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The namespace of the published tables, as configured (`lake.namespace`).
    pub fn namespace(&self) -> String {
        self.namespace.to_url_string()
    }

    pub fn warehouse(&self) -> &Path {
        &self.warehouse
    }

    fn staging_ident(&self, table: &str, run: &str) -> TableIdent {
        TableIdent::new(self.staging.clone(), format!("{table}__{run}"))
    }

    pub fn ident(&self, table: &str) -> TableIdent {
        TableIdent::new(self.namespace.clone(), table.to_string())
    }

    /// Where a run's files of `table` live.
    pub fn run_location(&self, table: &str, run: &str) -> PathBuf {
        self.warehouse
            .join(self.namespace.join("/"))
            .join(table)
            .join(run)
    }

    fn iceberg_schema(info: &TableInfo) -> Result<Schema> {
        let fields = info
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Arc::new(if c.nullable {
                    NestedField::optional(i as i32 + 1, &c.name, c.ty.iceberg())
                } else {
                    NestedField::required(i as i32 + 1, &c.name, c.ty.iceberg())
                })
            })
            .collect::<Vec<_>>();
        Ok(Schema::builder().with_fields(fields).build()?)
    }

    /// `day(<col>)` when the run decided to partition the table (`info.partition`), with the
    /// partition field named `<col>_day` as Spark and pyiceberg name it.
    fn partition_spec(
        info: &TableInfo,
        schema: &Schema,
    ) -> Result<Option<iceberg::spec::UnboundPartitionSpec>> {
        let Some(col) = &info.partition else {
            return Ok(None);
        };
        let field = schema.field_by_name(col).ok_or_else(|| {
            Error::internal(format!(
                "table {}: partition column {col} is not in the lake schema",
                info.name
            ))
        })?;
        let spec = iceberg::spec::UnboundPartitionSpec::builder()
            .add_partition_field(
                field.id,
                format!("{col}_day"),
                iceberg::spec::Transform::Day,
            )?
            .build();
        Ok(Some(spec))
    }

    /// The run's staging table for `info`, created on first use (partitioned by day when
    /// `info.partition` names a column).
    pub async fn staging_table(
        &self,
        info: &TableInfo,
        run: &str,
    ) -> Result<iceberg::table::Table> {
        let ident = self.staging_ident(&info.name, run);
        let _g = self.commit_lock.lock().await;
        if self.catalog.table_exists(&ident).await? {
            return Ok(self.catalog.load_table(&ident).await?);
        }
        let schema = Self::iceberg_schema(info)?;
        let spec = Self::partition_spec(info, &schema)?;
        let creation = TableCreation::builder()
            .name(ident.name().to_string())
            .location(
                self.run_location(&info.name, run)
                    .to_string_lossy()
                    .into_owned(),
            )
            .schema(schema)
            .partition_spec_opt(spec)
            .properties(HashMap::from([(
                "write.parquet.compression-codec".to_string(),
                "zstd".to_string(),
            )]))
            .build();
        Ok(self.catalog.create_table(&self.staging, creation).await?)
    }

    pub async fn load_table(&self, table: &str) -> Result<iceberg::table::Table> {
        Ok(self.catalog.load_table(&self.ident(table)).await?)
    }

    fn snapshot_of_run(t: &iceberg::table::Table, run: &str) -> Option<i64> {
        t.metadata()
            .snapshots()
            .find(|s| {
                s.summary()
                    .additional_properties
                    .get(RUN_ID_PROP)
                    .map(String::as_str)
                    == Some(run)
            })
            .map(|s| s.snapshot_id())
    }

    /// Commits the run's data files of `table` once, then publishes the staging table as the
    /// real one. Safe to call again after a crash at any point.
    pub async fn commit_and_publish(
        &self,
        info: &TableInfo,
        run: &str,
        files_json: &[String],
        extra_props: HashMap<String, String>,
    ) -> Result<Published> {
        // Already published by an earlier attempt?
        let ident = self.ident(&info.name);
        if self.catalog.table_exists(&ident).await? {
            let t = self.catalog.load_table(&ident).await?;
            if let Some(id) = Self::snapshot_of_run(&t, run)
                && t.metadata().current_snapshot_id() == Some(id)
            {
                return Ok(Published {
                    snapshot_id: id,
                    found: true,
                });
            }
        }
        let staging = self.staging_table(info, run).await?;
        let (snapshot_id, found) = match Self::snapshot_of_run(&staging, run) {
            Some(id) => (id, true),
            None => {
                let md = staging.metadata();
                let files = files_json
                    .iter()
                    .map(|j| {
                        iceberg::spec::deserialize_data_file_from_json(
                            j,
                            md.default_partition_spec_id(),
                            md.default_partition_type(),
                            md.current_schema(),
                        )
                    })
                    .collect::<iceberg::Result<Vec<_>>>()?;
                let mut props = extra_props;
                props.insert(RUN_ID_PROP.into(), run.into());
                props.insert(TASK_PROP.into(), format!("{}.write_iceberg", info.name));
                let _g = self.commit_lock.lock().await;
                let tx = Transaction::new(&staging);
                let tx = tx
                    .fast_append()
                    .add_data_files(files)
                    .set_snapshot_properties(props)
                    .apply(tx)?;
                let t = tx.commit(self.catalog.as_ref()).await?;
                let id = Self::snapshot_of_run(&t, run).ok_or_else(|| {
                    Error::internal("the commit succeeded but its snapshot is not in the table")
                })?;
                (id, false)
            }
        };
        crate::fault::point(&format!("after_commit:{}", info.name));
        self.publish(&info.name, run).await?;
        Ok(Published { snapshot_id, found })
    }

    /// The catalog row of `ns.table`: its metadata location and the one before it.
    async fn locations<'e, E>(
        &self,
        exec: E,
        ns: &NamespaceIdent,
        table: &str,
    ) -> Result<Option<(String, Option<String>)>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let row = sqlx::query(
            "SELECT metadata_location, previous_metadata_location FROM iceberg_tables \
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?",
        )
        .bind(&self.catalog_name)
        .bind(ns.join("."))
        .bind(table)
        .fetch_optional(exec)
        .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    /// Points the real table at the staging table's metadata and drops the staging entry, in one
    /// catalog transaction.
    async fn publish(&self, table: &str, run: &str) -> Result<()> {
        let staging = self.staging_ident(table, run);
        let _g = self.commit_lock.lock().await;
        let mut tx = self.db.begin().await?;
        let staged = self
            .locations(&mut *tx, &self.staging, staging.name())
            .await?;
        let Some((new_loc, _)) = staged else {
            // Nothing staged: published before (checked by the caller) or never staged.
            return Err(Error::internal(format!(
                "staging table {} is missing: nothing to publish",
                staging.name()
            )));
        };
        match self.locations(&mut *tx, &self.namespace, table).await? {
            Some((old, _)) => {
                let n = sqlx::query(
                    "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? \
                     WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? \
                     AND metadata_location = ?",
                )
                .bind(&new_loc)
                .bind(&old)
                .bind(&self.catalog_name)
                .bind(self.namespace.join("."))
                .bind(table)
                .bind(&old)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n != 1 {
                    return Err(Error::unavailable(format!(
                        "table {table} changed while publishing; will retry"
                    )));
                }
            }
            None => {
                sqlx::query(
                    "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, \
                     metadata_location, iceberg_type) VALUES (?, ?, ?, ?, 'TABLE')",
                )
                .bind(&self.catalog_name)
                .bind(self.namespace.join("."))
                .bind(table)
                .bind(&new_loc)
                .execute(&mut *tx)
                .await?;
            }
        }
        // Drop this run's staging entry and those that abandoned runs of the table left behind
        // (same prefix and a run id of the same shape, so table `A__B` is not mistaken for one).
        let prefix = format!("{table}__");
        sqlx::query(
            "DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? \
             AND substr(table_name, 1, length(?)) = ? AND length(table_name) = length(?) + ?",
        )
        .bind(&self.catalog_name)
        .bind(self.staging.join("."))
        .bind(&prefix)
        .bind(&prefix)
        .bind(&prefix)
        .bind(run.len() as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes files under the run's data directory of `table` that no finished chunk recorded:
    /// leftovers of attempts that died before recording their chunk. Returns how many.
    pub fn remove_unrecorded_files(
        &self,
        table: &str,
        run: &str,
        keep: &HashSet<String>,
    ) -> Result<usize> {
        // A partitioned table's files sit one directory deeper, in `data/<col>_day=<day>/`.
        let mut dirs = vec![self.run_location(table, run).join("data")];
        let mut n = 0;
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "parquet")
                    && !keep.contains(p.to_string_lossy().as_ref())
                {
                    std::fs::remove_file(&p)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Deletes the files of earlier runs of `table`, except the version published before this
    /// one (readers that opened it keep working). Runs that never published are removed too.
    pub async fn prune_old_runs(&self, table: &str, run: &str) -> Result<usize> {
        let previous = self
            .locations(&self.db, &self.namespace, table)
            .await?
            .and_then(|(_, previous)| previous);
        let dir = self.warehouse.join(self.namespace.join("/")).join(table);
        // <table dir>/<run>/metadata/<file>.metadata.json
        let keep = previous
            .as_deref()
            .map(Path::new)
            .and_then(|p| p.parent()?.parent()?.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        let runs: Vec<String> = std::fs::read_dir(&dir)?
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.as_str() < run && Some(n) != keep.as_ref())
            .collect();
        for r in &runs {
            std::fs::remove_dir_all(dir.join(r))?;
        }
        Ok(runs.len())
    }

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
        if current.is_none() {
            return Ok(Vec::new());
        }
        let tasks: Vec<_> = t
            .scan()
            .select_all()
            .build()?
            .plan_files()
            .await?
            .try_collect()
            .await?;
        let mut files: Vec<String> = tasks.into_iter().map(|t| t.data_file_path).collect();
        files.sort();
        files.dedup();
        Ok(files)
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

    /// The table's current snapshot as a stream of record batches.
    pub async fn batches(
        &self,
        table: &str,
    ) -> Result<futures::stream::BoxStream<'static, Result<arrow_array::RecordBatch>>> {
        let t = self.load_table(table).await?;
        if t.metadata().current_snapshot().is_none() {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let stream = t.scan().select_all().build()?.to_arrow().await?;
        Ok(Box::pin(stream.map_err(Error::from)))
    }

    /// Count and fingerprint of the table's current snapshot, read back through Iceberg.
    pub async fn digest(&self, table: &str) -> Result<Digest128> {
        let t = self.load_table(table).await?;
        let mut d = Digest128::default();
        if t.metadata().current_snapshot().is_none() {
            return Ok(d);
        }
        let mut stream = t.scan().select_all().build()?.to_arrow().await?;
        while let Some(batch) = stream.try_next().await? {
            d.add_batch(&batch).map_err(Error::internal)?;
        }
        Ok(d)
    }
}
