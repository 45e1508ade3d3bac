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
//!
//! The warehouse is a local directory or `s3://bucket/prefix` (see `storage`); every location
//! is the warehouse URL followed by the same relative layout, so both kinds lay out their files
//! alike and everything here works on location strings.

pub mod partition;
pub mod read;
pub mod schema;
pub mod storage;
pub mod writer;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use futures::TryStreamExt;
use iceberg::spec::{
    NestedField, NullOrder, Schema, SortDirection, SortField, SortOrder, Transform,
};
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableCreation, TableIdent};
use iceberg_catalog_sql::{SqlCatalog, SqlCatalogBuilder};
use sqlx::Row;

use crate::error::{Error, Result};
use crate::model::TableInfo;
use crate::model::fingerprint::Digest128;

pub use storage::{LakeStorage, Warehouse};
pub use writer::ChunkWriter;

/// Snapshot summary keys we write.
pub const RUN_ID_PROP: &str = "dag.run-id";
pub const TASK_PROP: &str = "dag.task";
/// The table as the source described it (JSON of [`TableInfo`]): lets a later run load and
/// verify the target from the lake alone (`dag run --from load`).
pub const TABLE_INFO_PROP: &str = "dag.table-info";
/// Rows and fingerprint of what the source returned for the snapshot.
pub const ROWS_PROP: &str = "dag.rows";
pub const FINGERPRINT_PROP: &str = "dag.fingerprint";

/// What a published lake table says about the extract that produced it.
#[derive(Debug, Clone)]
pub struct LakeExtract {
    pub info: TableInfo,
    pub digest: Digest128,
    pub snapshot_id: i64,
    /// The run that wrote it.
    pub run: String,
}

pub struct Lake {
    catalog: Arc<SqlCatalog>,
    db: sqlx::AnyPool,
    catalog_name: String,
    namespace: NamespaceIdent,
    staging: NamespaceIdent,
    storage: LakeStorage,
    /// SQLite catalogs fail with "database is locked" on concurrent commits (not retried by the
    /// crate): catalog writes from this process go one at a time.
    commit_lock: tokio::sync::Mutex<()>,
    /// The catalog database is PostgreSQL (`$n` placeholders) rather than SQLite (`?`).
    postgres: bool,
    retention_secs: u64,
}

#[derive(Debug, Clone)]
pub struct LakeSettings {
    pub uri: String,
    pub catalog_name: String,
    pub warehouse: Warehouse,
    pub namespace: String,
    /// See [`crate::config::LakeConfig::retention_secs`].
    pub retention_secs: u64,
}

/// What `commit_and_publish` did.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    pub snapshot_id: i64,
    /// The commit had already been made by an earlier (crashed) attempt.
    pub found: bool,
}

/// `uri` with any password replaced by `***`, for messages.
pub fn redact_uri(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let auth = &uri[s + 3..at];
            match auth.find(':') {
                Some(c) => format!("{}{}:***{}", &uri[..s + 3], &auth[..c], &uri[at..]),
                None => uri.to_string(),
            }
        }
        _ => uri.to_string(),
    }
}

/// Is `uri` a PostgreSQL catalog database?
pub fn is_postgres(uri: &str) -> bool {
    uri.starts_with("postgres://") || uri.starts_with("postgresql://")
}

/// `?` placeholders as `$1, $2, ...` (sqlx's `Any` driver passes SQL through unchanged). Our
/// statements hold no literal question marks.
fn dollar_numeric(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// Bytes of Arrow data a Parquet row group is cut at. Readers like large row groups (fewer,
/// longer column chunks to scan), but the writer holds a whole row group per open file until it
/// is flushed, times the chunks written at once and the partitions open per chunk. 128 MB (the
/// Iceberg default) would cost that much per open file; 16 MiB of Arrow data, about 3 to 6 MiB
/// once encoded and compressed, still gives row groups of 10^4 to 10^5 rows for tables of the
/// widths we move, while keeping a wide table's extract inside a small reservation.
pub const ROW_GROUP_BYTES: u64 = 16 << 20;

/// Properties every lake table carries, so that other writers and readers (Spark, Trino,
/// StarRocks, pyiceberg) know how its files were written and write alike.
fn table_properties() -> HashMap<String, String> {
    [
        ("write.format.default", "parquet".to_string()),
        ("write.parquet.compression-codec", "zstd".to_string()),
        ("write.parquet.compression-level", "1".to_string()),
        (
            "write.parquet.row-group-size-bytes",
            ROW_GROUP_BYTES.to_string(),
        ),
        // The rolling writer's default: a chunk's rows go into one file unless it exceeds this.
        ("write.target-file-size-bytes", (512u64 << 20).to_string()),
        ("write.metadata.metrics.default", "truncate(16)".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The chunk key, ascending, as the table's sort order: every data file holds rows of one chunk,
/// which the sources read in chunk-key order, so readers can skip files and row groups by key
/// range. A table read without a key is unsorted.
fn sort_order(info: &TableInfo, schema: &Schema) -> Result<Option<SortOrder>> {
    let key: Vec<&String> = match &info.key {
        Some(k) => vec![k],
        None => info.chunk_key.iter().collect(),
    };
    if key.is_empty() {
        return Ok(None);
    }
    let mut b = SortOrder::builder();
    b.with_order_id(1);
    for k in key {
        let Some(field) = schema.field_by_name(k) else {
            // A key column left out of the copy (exclude_columns): no claim about order.
            return Ok(None);
        };
        b.with_sort_field(SortField {
            source_id: field.id,
            transform: Transform::Identity,
            direction: SortDirection::Ascending,
            null_order: NullOrder::First,
        });
    }
    Ok(Some(b.build(schema)?))
}

fn sqlite_file(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

impl Lake {
    pub async fn open(s: &LakeSettings) -> Result<Lake> {
        let storage = LakeStorage::open(&s.warehouse)?;
        let mut uri = s.uri.clone();
        let postgres = is_postgres(&uri);
        if !postgres && !uri.starts_with("sqlite:") {
            return Err(Error::config(format!(
                "lake.uri {}: not a catalog database (expected sqlite:<file> or \
                 postgres://user@host:port/database)",
                redact_uri(&uri)
            )));
        }
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
        let mut props = storage.props().clone();
        props.extend([
            ("uri".to_string(), uri.clone()),
            ("warehouse".to_string(), storage.url().to_string()),
            (
                "sql_bind_style".to_string(),
                if postgres { "DollarNumeric" } else { "QMark" }.to_string(),
            ),
        ]);
        let catalog = SqlCatalogBuilder::default()
            .with_storage_factory(storage.factory())
            .load(&s.catalog_name, props)
            .await
            .map_err(|e| Error::unavailable(format!("lake catalog {}: {e}", redact_uri(&s.uri))))?;
        sqlx::any::install_default_drivers();
        let db = sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&uri)
            .await
            .map_err(|e| Error::unavailable(format!("lake catalog {}: {e}", redact_uri(&s.uri))))?;
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
            storage,
            commit_lock: tokio::sync::Mutex::new(()),
            postgres,
            retention_secs: s.retention_secs,
        })
    }

    /// Our own catalog statements in the database's placeholder style.
    fn sql(&self, sql: &str) -> String {
        if self.postgres {
            dollar_numeric(sql)
        } else {
            sql.to_string()
        }
    }

    /// The namespace of the published tables, as configured (`lake.namespace`).
    pub fn namespace(&self) -> String {
        self.namespace.to_url_string()
    }

    /// The warehouse: an absolute local path or `s3://bucket[/prefix]`.
    pub fn warehouse(&self) -> &str {
        self.storage.url()
    }

    /// Reads and writes the lake's files, local or S3 (data files for the loads).
    pub fn file_io(&self) -> &iceberg::io::FileIO {
        self.storage.file_io()
    }

    fn staging_ident(&self, table: &str, run: &str) -> TableIdent {
        TableIdent::new(self.staging.clone(), format!("{table}__{run}"))
    }

    pub fn ident(&self, table: &str) -> TableIdent {
        TableIdent::new(self.namespace.clone(), table.to_string())
    }

    /// The directory of `table`'s runs, relative to the warehouse.
    fn table_dir(&self, table: &str) -> String {
        format!("{}/{table}", self.namespace.join("/"))
    }

    /// Where a run's files of `table` live.
    pub fn run_location(&self, table: &str, run: &str) -> String {
        self.storage
            .location(&format!("{}/{run}", self.table_dir(table)))
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
            .location(self.run_location(&info.name, run))
            .schema(schema.clone())
            .partition_spec_opt(spec)
            .sort_order_opt(sort_order(info, &schema)?)
            .properties(table_properties())
            .build();
        self.catalog.create_table(&self.staging, creation).await?;
        // Loaded back from the catalog database: the crate ignores a failed COMMIT of the row.
        Ok(self.catalog.load_table(&ident).await?)
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
                let id = self
                    .commit_files(
                        &staging,
                        &self.staging,
                        &info.name,
                        run,
                        files_json,
                        extra_props,
                    )
                    .await?;
                (id, false)
            }
        };
        crate::fault::point(&format!("after_commit:{}", info.name));
        self.publish(&info.name, run).await?;
        Ok(Published { snapshot_id, found })
    }

    /// Appends an incremental run's data files to the published table as one snapshot carrying
    /// the run id (skipped when a snapshot already does), then drops the run's staging entry
    /// (its files were written there, under the run's own directory). `dag.rows` and
    /// `dag.fingerprint` of the new snapshot are the table's totals: the previous snapshot's plus
    /// the run's `batch`. Safe to call again after a crash at any point.
    pub async fn append(
        &self,
        info: &TableInfo,
        run: &str,
        files_json: &[String],
        batch: Digest128,
        mut props: HashMap<String, String>,
    ) -> Result<Published> {
        let ident = self.ident(&info.name);
        let live = self.catalog.load_table(&ident).await?;
        let found = Self::snapshot_of_run(&live, run);
        let published = match found {
            Some(id) => Published {
                snapshot_id: id,
                found: true,
            },
            None if files_json.is_empty() => Published {
                snapshot_id: live.metadata().current_snapshot_id().unwrap_or_default(),
                found: false,
            },
            None => {
                let md = live.metadata();
                let mut total = batch;
                if let Some(cur) = md.current_snapshot() {
                    let p = &cur.summary().additional_properties;
                    if let (Some(rows), Some(fp)) = (
                        p.get(ROWS_PROP).and_then(|r| r.parse().ok()),
                        p.get(FINGERPRINT_PROP),
                    ) && let Some(before) = Digest128::from_parts(rows, fp)
                    {
                        total.add(before);
                    }
                }
                props.insert(ROWS_PROP.into(), total.rows.to_string());
                props.insert(FINGERPRINT_PROP.into(), total.hex());
                let id = self
                    .commit_files(&live, &self.namespace, &info.name, run, files_json, props)
                    .await?;
                Published {
                    snapshot_id: id,
                    found: false,
                }
            }
        };
        crate::fault::point(&format!("after_commit:{}", info.name));
        let _g = self.commit_lock.lock().await;
        sqlx::query(&self.sql(
            "DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? \
             AND table_name = ?",
        ))
        .bind(&self.catalog_name)
        .bind(self.staging.join("."))
        .bind(self.staging_ident(&info.name, run).name())
        .execute(&self.db)
        .await?;
        Ok(published)
    }

    /// Commits the data files `files_json` to table `t` (catalog row `ns`.`t`'s name) as one
    /// snapshot carrying the run id and `props`, then reads the catalog row back:
    /// iceberg-catalog-sql 0.10.1 ignores the database's COMMIT result, so a commit that did not
    /// persist must be an error, not a success. Returns the new snapshot's id.
    async fn commit_files(
        &self,
        t: &iceberg::table::Table,
        ns: &NamespaceIdent,
        table: &str,
        run: &str,
        files_json: &[String],
        mut props: HashMap<String, String>,
    ) -> Result<i64> {
        let md = t.metadata();
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
        props.insert(RUN_ID_PROP.into(), run.into());
        props.insert(TASK_PROP.into(), format!("{table}.write_iceberg"));
        let _g = self.commit_lock.lock().await;
        let tx = Transaction::new(t);
        let tx = tx
            .fast_append()
            .add_data_files(files)
            .set_snapshot_properties(props)
            .apply(tx)?;
        let committed = tx.commit(self.catalog.as_ref()).await?;
        let row = self.locations(&self.db, ns, t.identifier().name()).await?;
        let written = committed.metadata_location().unwrap_or_default();
        if row.as_ref().map(|(loc, _)| loc.as_str()) != Some(written) {
            return Err(Error::unavailable(format!(
                "lake commit of {table} was not stored by the catalog database; will retry"
            )));
        }
        Self::snapshot_of_run(&committed, run).ok_or_else(|| {
            Error::internal("the commit succeeded but its snapshot is not in the table")
        })
    }

    /// Whether the table exists in the lake with at least one snapshot.
    pub async fn is_published(&self, table: &str) -> Result<bool> {
        let ident = self.ident(table);
        if !self.catalog.table_exists(&ident).await? {
            return Ok(false);
        }
        let t = self.catalog.load_table(&ident).await?;
        Ok(t.metadata().current_snapshot().is_some())
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
        let row = sqlx::query(&self.sql(
            "SELECT metadata_location, previous_metadata_location FROM iceberg_tables \
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?",
        ))
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
                let n = sqlx::query(&self.sql(
                    "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? \
                     WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? \
                     AND metadata_location = ?",
                ))
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
                sqlx::query(&self.sql(
                    "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, \
                     metadata_location, iceberg_type) VALUES (?, ?, ?, ?, 'TABLE')",
                ))
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
        sqlx::query(&self.sql(
            "DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? \
             AND substr(table_name, 1, length(?)) = ? AND length(table_name) = length(?) + ?",
        ))
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
    pub async fn remove_unrecorded_files(
        &self,
        table: &str,
        run: &str,
        keep: &HashSet<String>,
    ) -> Result<usize> {
        // A partitioned table's files sit one directory deeper, in `data/<col>_day=<day>/`.
        let dir = format!("{}/{run}/data", self.table_dir(table));
        let mut n = 0;
        for file in self.storage.list_files_below(&dir).await? {
            if file.ends_with(".parquet") && !keep.contains(&file) {
                self.storage.delete_file(&file).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Deletes the files of earlier runs of `table` that started more than `retention` ago,
    /// except the version published before this one (readers that opened it keep working). Runs
    /// that never published are removed too.
    pub async fn prune_old_runs(&self, table: &str, run: &str) -> Result<usize> {
        let Some((current, previous)) = self.locations(&self.db, &self.namespace, table).await?
        else {
            return Ok(0);
        };
        let dir = self.table_dir(table);
        // <table dir>/<run>/metadata/<file>.metadata.json: the run whose directory holds a
        // version's metadata is the full run it grew from; incremental runs after it appended
        // files from their own (later) directories, so everything from the oldest of the two
        // versions' runs on is kept.
        let base = |loc: &str| {
            let mut parts = loc.rsplit('/');
            parts.nth(2).map(str::to_string)
        };
        let floor = [base(&current), previous.as_deref().and_then(base)]
            .into_iter()
            .flatten()
            .chain(std::iter::once(run.to_string()))
            .min()
            .unwrap_or_else(|| run.to_string());
        let runs: Vec<String> = self
            .storage
            .list_dirs(&dir)
            .await?
            .into_iter()
            .filter(|n| n.as_str() < floor.as_str())
            .filter(|n| self.past_retention(n))
            .collect();
        for r in &runs {
            self.storage.delete_dir(&format!("{dir}/{r}")).await?;
        }
        Ok(runs.len())
    }

    /// Did run `run` (its id starts with its start time, `%Y%m%d%H%M%S`) start more than
    /// `retention` ago? A name that is not a run id counts as old.
    fn past_retention(&self, run: &str) -> bool {
        if self.retention_secs == 0 {
            return true;
        }
        let Some(started) = run
            .get(..14)
            .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y%m%d%H%M%S").ok())
        else {
            return true;
        };
        let age = chrono::Utc::now().naive_utc() - started;
        age.num_seconds() > self.retention_secs as i64
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

    /// How the source's columns differ from the published lake table's (nothing when the table
    /// was never published).
    pub async fn schema_diff(&self, info: &TableInfo) -> Result<schema::SchemaDiff> {
        let ident = self.ident(&info.name);
        if !self.catalog.table_exists(&ident).await? {
            return Ok(schema::SchemaDiff::default());
        }
        let t = self.catalog.load_table(&ident).await?;
        Ok(schema::diff(t.metadata().current_schema(), info))
    }

    /// Tables of the namespace (published ones only).
    pub async fn tables(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .catalog
            .list_tables(&self.namespace)
            .await?
            .into_iter()
            .map(|t| t.name().to_string())
            .collect();
        names.sort();
        Ok(names)
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
