//! The lake's catalog, SQL or REST, behind the few calls the lake makes: does a table exist,
//! load it, list the namespace's tables, and commit new metadata built on a known state.
//!
//! The SQL catalog's database is reached directly, beside the iceberg crate: a commit writes the
//! new metadata file and swaps the table's `iceberg_tables` row to it with a compare-and-swap on
//! the location the commit was built on (as the Java and Rust SQL catalogs commit), in SQLite's
//! or PostgreSQL's placeholder style. A REST catalog gets the metadata's changes with the
//! requirements of the state they were built on, and writes the metadata file itself (see
//! `rest`). Also the catalog URI's kind, its SQLite file, and the URI without its password for
//! messages.

use std::path::PathBuf;
use std::str::FromStr;

use iceberg::spec::{TableMetadata, TableMetadataBuildResult};
use iceberg::{Catalog, MetadataLocation, NamespaceIdent};
use iceberg_catalog_sql::SqlCatalog;
use sqlx::Row;

use super::Lake;
use super::rest::{self, RestCatalog};
use crate::error::{Error, Result};

/// What [`Lake::commit_metadata`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Committed {
    /// The new metadata is the table's.
    Yes,
    /// Another writer changed the table (or created it) first; nothing was committed.
    Conflict,
    /// A REST catalog created the table empty (a REST table is created before its first
    /// snapshot is committed); the snapshot was not committed.
    Created,
}

/// The catalog the lake's tables are registered in.
pub(super) enum Backend {
    Sql(SqlDb),
    Rest(RestCatalog),
}

/// An SQL catalog: the crate's catalog for reading, and our own pool on its database for
/// commits.
pub(super) struct SqlDb {
    pub(super) catalog: SqlCatalog,
    pub(super) db: sqlx::AnyPool,
    /// The catalog's name (`catalog_name` of its rows).
    pub(super) name: String,
    /// PostgreSQL (`$n` placeholders) rather than SQLite (`?`).
    pub(super) postgres: bool,
    /// Where dag versions before one table identity across runs kept each run's table until it
    /// was published (`<ns>_dag_staging`); rows left there by such runs are removed.
    pub(super) staging: NamespaceIdent,
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

pub(super) fn sqlite_file(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

impl SqlDb {
    /// Our own catalog statements in the database's placeholder style.
    fn sql(&self, sql: &str) -> String {
        if self.postgres {
            dollar_numeric(sql)
        } else {
            sql.to_string()
        }
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
        .bind(&self.name)
        .bind(ns.join("."))
        .bind(table)
        .fetch_optional(exec)
        .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    /// Writes `md` as the next metadata file of `table` and points the catalog row at it, if the
    /// row still points at `previous` (or, when `previous` is none, if there is no row yet).
    /// Returns whether the swap happened: false means another writer committed first and
    /// nothing was changed (the metadata file written stays unreferenced). Rows that dag
    /// versions before one table identity across runs left in the staging namespace for this
    /// table go in the same transaction.
    async fn swap_metadata(
        &self,
        lake: &Lake,
        table: &str,
        previous: Option<&str>,
        md: &TableMetadata,
    ) -> Result<bool> {
        let loc = match previous {
            Some(p) => MetadataLocation::from_str(p)?
                .with_next_version()
                .with_new_metadata(md),
            None => MetadataLocation::new_with_metadata(md.location(), md),
        };
        md.write_to(lake.file_io(), &loc).await?;
        let new_loc = loc.to_string();
        let mut tx = self.db.begin().await?;
        let swapped = match previous {
            Some(old) => sqlx::query(&self.sql(
                "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? \
                     WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? \
                     AND metadata_location = ?",
            ))
            .bind(&new_loc)
            .bind(old)
            .bind(&self.name)
            .bind(lake.namespace.join("."))
            .bind(table)
            .bind(old)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1,
            None => {
                if self
                    .locations(&mut *tx, &lake.namespace, table)
                    .await?
                    .is_some()
                {
                    false
                } else {
                    sqlx::query(&self.sql(
                        "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, \
                         metadata_location, iceberg_type) VALUES (?, ?, ?, ?, 'TABLE')",
                    ))
                    .bind(&self.name)
                    .bind(lake.namespace.join("."))
                    .bind(table)
                    .bind(&new_loc)
                    .execute(&mut *tx)
                    .await?;
                    true
                }
            }
        };
        if !swapped {
            tx.rollback().await?;
            return Ok(false);
        }
        let prefix = format!("{table}__");
        sqlx::query(&self.sql(
            "DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? \
             AND substr(table_name, 1, length(?)) = ?",
        ))
        .bind(&self.name)
        .bind(self.staging.join("."))
        .bind(&prefix)
        .bind(&prefix)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // Read back: a commit the database did not keep must not count as made.
        let row = self.locations(&self.db, &lake.namespace, table).await?;
        if row.as_ref().map(|(l, _)| l.as_str()) != Some(new_loc.as_str()) {
            return Err(Error::unavailable(format!(
                "lake commit of {table} was not stored by the catalog database; will retry"
            )));
        }
        Ok(true)
    }
}

impl Lake {
    /// The lake table `table` as the catalog has it now, if it exists.
    pub(super) async fn current_table(&self, table: &str) -> Result<Option<iceberg::table::Table>> {
        let ident = self.ident(table);
        match &self.backend {
            // The crate's load looks the table up itself: one lookup, not two.
            Backend::Sql(sql) => match sql.catalog.load_table(&ident).await {
                Ok(t) => Ok(Some(t)),
                Err(e) if e.kind() == iceberg::ErrorKind::TableNotFound => Ok(None),
                Err(e) => Err(e.into()),
            },
            Backend::Rest(cat) => {
                let Some(loaded) = cat.load(&self.namespace, table).await? else {
                    return Ok(None);
                };
                Ok(Some(
                    iceberg::table::Table::builder()
                        .metadata(loaded.metadata)
                        .metadata_location(loaded.metadata_location)
                        .identifier(ident)
                        .file_io(self.file_io().clone())
                        .runtime(iceberg::Runtime::try_current()?)
                        .readonly(true)
                        .build()?,
                ))
            }
        }
    }

    /// Tables of the namespace, sorted.
    pub async fn tables(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = match &self.backend {
            Backend::Sql(sql) => sql
                .catalog
                .list_tables(&self.namespace)
                .await?
                .into_iter()
                .map(|t| t.name().to_string())
                .collect(),
            Backend::Rest(cat) => cat.list_tables(&self.namespace).await?,
        };
        names.sort();
        Ok(names)
    }

    /// Makes `built` (new metadata of `table`, built on `previous`: its metadata and location,
    /// none for a table not created yet) the table's current metadata, if the catalog still has
    /// `previous`. Unless it says [`Committed::Yes`], nothing of `built` was committed and the
    /// commit must be built again on the table as it is now.
    pub(super) async fn commit_metadata(
        &self,
        table: &str,
        previous: Option<(&TableMetadata, &str)>,
        built: &TableMetadataBuildResult,
    ) -> Result<Committed> {
        let done = |yes: bool| {
            if yes {
                Committed::Yes
            } else {
                Committed::Conflict
            }
        };
        match &self.backend {
            Backend::Sql(sql) => Ok(done(
                sql.swap_metadata(self, table, previous.map(|(_, l)| l), &built.metadata)
                    .await?,
            )),
            Backend::Rest(cat) => match previous {
                Some((md, _)) => Ok(done(
                    cat.commit(
                        &self.namespace,
                        table,
                        &rest::requirements(md),
                        &built.changes,
                    )
                    .await?,
                )),
                None => {
                    if !cat.create(&self.namespace, table, &built.metadata).await? {
                        return Ok(Committed::Conflict);
                    }
                    self.check_created(table, &built.metadata).await?;
                    Ok(Committed::Created)
                }
            },
        }
    }

    /// A table the REST catalog created from `md` must have kept `md`'s field ids: the run's
    /// data files were written with them.
    async fn check_created(&self, table: &str, md: &TableMetadata) -> Result<()> {
        let Some(t) = self.current_table(table).await? else {
            return Err(Error::unavailable(format!(
                "lake table {}: the REST catalog created it but cannot load it",
                self.ident(table)
            )));
        };
        let ids = |m: &TableMetadata| -> Vec<(i32, String)> {
            m.current_schema()
                .as_struct()
                .fields()
                .iter()
                .map(|f| (f.id, f.name.clone()))
                .collect()
        };
        if ids(t.metadata()) != ids(md) {
            return Err(Error::internal(format!(
                "lake table {}: the REST catalog assigned other field ids than the ones the \
                 run's data files were written with ({:?} instead of {:?})",
                self.ident(table),
                ids(t.metadata()),
                ids(md)
            )));
        }
        Ok(())
    }
}
