//! The Iceberg lake: catalog, chunk writers, the per-run commit and retention.
//!
//! Each lake table keeps one identity across runs: a full refresh commits one `overwrite`
//! snapshot that removes every current data file and adds the run's, an incremental run one
//! `append` snapshot, both to the same table (same table-uuid), so engines holding the table keep
//! working and earlier loads stay readable by snapshot id until `[lake] retention` expires them.
//! iceberg 0.10.1 can only append, so the snapshot's manifests, manifest list and metadata are
//! written here with the crate's public writers (`produce`, `metadata`) and the catalog's
//! pointer is swapped, guarded by the location the snapshot was built on (`catalog`).
//!
//! A table lives at `<warehouse>/<ns>/<table>`: its metadata in `metadata/`, each run's data
//! files in `<run>/data/` (found and removed by run: leftovers of an attempt that died before
//! recording its chunk). Tables written before this layout keep their location (the directory
//! of the run that created them) and gain the same per-run data directories beside it.
//!
//! The warehouse is a local directory or `s3://bucket/prefix` (see `storage`); every location
//! is the warehouse URL followed by the same relative layout, so both kinds lay out their files
//! alike and everything here works on location strings.
//!
//! The catalog is an SQL catalog (SQLite or PostgreSQL, the JDBC catalog's tables, whose row is
//! swapped with a compare-and-swap) or a REST catalog (the commit's updates posted with the
//! requirements of the state they were built on, see `rest`); `catalog` hides which.
//!
//! `impl Lake` is spread by concern: opening and naming here, the commit in `commit`, the
//! catalog's reads and writes in `catalog`, reading tables back in `snapshot`, and expiring
//! snapshots and removing unreferenced files in `history`.

mod catalog;
mod commit;
mod history;
mod metadata;
pub mod partition;
mod produce;
pub mod read;
mod rest;
mod rewrite;
pub mod schema;
mod snapshot;
pub mod storage;
pub mod writer;

use std::collections::HashMap;

use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableIdent};
use iceberg_catalog_sql::SqlCatalogBuilder;

use crate::config::RestCatalogConfig;
use crate::error::{Error, Result};
use crate::model::TableInfo;
use crate::model::fingerprint::Digest128;

use catalog::{Backend, SqlDb, sqlite_file};

pub use catalog::{is_postgres, redact_uri};
pub use commit::{RewriteTuning, RunFile, RunFileIter, RunFiles};
pub use produce::Change;
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
    backend: Backend,
    namespace: NamespaceIdent,
    storage: LakeStorage,
    /// SQLite catalogs fail with "database is locked" on concurrent commits (not retried by the
    /// crate): catalog writes from this process go one at a time.
    commit_lock: tokio::sync::Mutex<()>,
    retention_secs: u64,
}

#[derive(Debug, Clone)]
pub struct LakeSettings {
    /// The SQL catalog's database URI, or the REST catalog's base URL.
    pub uri: String,
    pub catalog_name: String,
    /// Set for a REST catalog.
    pub rest: Option<RestCatalogConfig>,
    pub warehouse: Warehouse,
    pub namespace: String,
    /// See [`crate::config::LakeConfig::retention_secs`].
    pub retention_secs: u64,
}

/// What `commit_run` did.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    pub snapshot_id: i64,
    /// The commit had already been made by an earlier (crashed) attempt.
    pub found: bool,
}

/// Bytes of Arrow data a Parquet row group is cut at. Readers like large row groups (fewer,
/// longer column chunks to scan), but the writer holds a whole row group per open file until it
/// is flushed, times the chunks written at once and the partitions open per chunk. 128 MB (the
/// Iceberg default) would cost that much per open file. 8 MiB of Arrow data (about 1 to 3 MiB
/// once encoded and compressed) still gives row groups of thousands to 10^5 rows for the widths
/// we move. Measured on the 66-column, 1M-row TDS table with two connections at the default
/// budget: halving it from 16 MiB (with the page buffers halved too) took the process's peak
/// from 107 to 95 MiB with the same rows/s and the same lake size within 0.1%.
pub const ROW_GROUP_BYTES: u64 = 8 << 20;

/// Bytes a data-file writer may buffer in its columns' open pages (data and dictionary pages
/// each), shared among the columns: Parquet's default of 1 MiB a page per column lets a wide
/// table's writer hold many MiB of pages not yet compressed, and each column's zstd context
/// grows with the largest page it compressed.
pub const PAGE_BUFFER_BYTES: u64 = 4 << 20;

/// The data and dictionary page size limit of a writer of `columns` columns: its share of
/// [`PAGE_BUFFER_BYTES`], between 64 KiB and Parquet's default 1 MiB.
pub fn page_bytes(columns: usize) -> usize {
    (PAGE_BUFFER_BYTES / columns.max(1) as u64).clamp(64 << 10, 1 << 20) as usize
}

/// What one open data-file writer of a table of `columns` columns holds besides its row group
/// (whose encoded pages, open or compressed, stay within the row group's bytes): a zstd
/// compression and decompression context per column (the parquet crate's codec creates both,
/// about 100 KiB each once used, though a writer never decompresses) and about 1 MiB of
/// encoder state.
pub fn writer_bytes(columns: usize) -> u64 {
    (1 << 20) + columns.max(1) as u64 * (200 << 10)
}

impl Lake {
    pub async fn open(s: &LakeSettings) -> Result<Lake> {
        let storage = LakeStorage::open(&s.warehouse, s.rest.is_some())?;
        let namespace = NamespaceIdent::new(s.namespace.clone());
        let backend = match &s.rest {
            Some(rest) => {
                let cat = rest::RestCatalog::connect(&s.uri, rest).await?;
                cat.ensure_namespace(&namespace).await?;
                Backend::Rest(cat)
            }
            None => {
                let sql = Self::open_sql(s, &storage).await?;
                if !sql.catalog.namespace_exists(&namespace).await? {
                    sql.catalog
                        .create_namespace(&namespace, HashMap::new())
                        .await?;
                }
                Backend::Sql(sql)
            }
        };
        Ok(Lake {
            backend,
            namespace,
            storage,
            commit_lock: tokio::sync::Mutex::new(()),
            retention_secs: s.retention_secs,
        })
    }

    /// The SQL catalog of `s`: the crate's catalog, and a pool of our own on its database.
    async fn open_sql(s: &LakeSettings, storage: &LakeStorage) -> Result<SqlDb> {
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
        Ok(SqlDb {
            catalog,
            db,
            name: s.catalog_name.clone(),
            postgres,
            staging: NamespaceIdent::new(format!("{}_dag_staging", s.namespace)),
        })
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

    pub fn ident(&self, table: &str) -> TableIdent {
        TableIdent::new(self.namespace.clone(), table.to_string())
    }

    /// The directory of `table`'s runs, relative to the warehouse.
    fn table_dir(&self, table: &str) -> String {
        format!("{}/{table}", self.namespace.join("/"))
    }

    /// Where a new lake table `table` is created.
    fn table_location(&self, table: &str) -> String {
        self.storage.location(&self.table_dir(table))
    }

    /// The directory of run `run`'s data files of `table`, relative to the warehouse.
    fn run_data_dir(&self, table: &str, run: &str) -> String {
        format!("{}/{run}/data", self.table_dir(table))
    }

    /// The lake table `table`; an error when it does not exist.
    pub async fn load_table(&self, table: &str) -> Result<iceberg::table::Table> {
        self.current_table(table).await?.ok_or_else(|| {
            Error::state(format!(
                "lake table {} does not exist in the catalog",
                self.ident(table)
            ))
        })
    }

    /// Whether the table exists in the lake with at least one snapshot.
    pub async fn is_published(&self, table: &str) -> Result<bool> {
        Ok(self
            .current_table(table)
            .await?
            .is_some_and(|t| t.metadata().current_snapshot().is_some()))
    }
}
