//! The SQL catalog's database as this crate reaches it directly, beside the iceberg crate: a
//! commit writes the new metadata file and swaps the table's `iceberg_tables` row to it with a
//! compare-and-swap on the location the commit was built on (as the Java and Rust SQL catalogs
//! commit), in SQLite's or PostgreSQL's placeholder style. Also the catalog URI's kind, its
//! SQLite file, and the URI without its password for messages.

use std::path::PathBuf;
use std::str::FromStr;

use iceberg::spec::TableMetadata;
use iceberg::{MetadataLocation, NamespaceIdent};
use sqlx::Row;

use super::Lake;
use crate::error::Result;

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

impl Lake {
    /// Our own catalog statements in the database's placeholder style.
    pub(super) fn sql(&self, sql: &str) -> String {
        if self.postgres {
            dollar_numeric(sql)
        } else {
            sql.to_string()
        }
    }

    /// The catalog row of `ns.table`: its metadata location and the one before it.
    pub(super) async fn locations<'e, E>(
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

    /// Writes `md` as the next metadata file of `table` and points the catalog row at it, if the
    /// row still points at `previous` (or, when `previous` is none, if there is no row yet).
    /// Returns whether the swap happened: false means another writer committed first and
    /// nothing was changed (the metadata file written stays unreferenced). Rows that dag
    /// versions before one table identity across runs left in the staging namespace for this
    /// table go in the same transaction.
    pub(super) async fn swap_metadata(
        &self,
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
        md.write_to(self.file_io(), &loc).await?;
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
            .bind(&self.catalog_name)
            .bind(self.namespace.join("."))
            .bind(table)
            .bind(old)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1,
            None => {
                if self
                    .locations(&mut *tx, &self.namespace, table)
                    .await?
                    .is_some()
                {
                    false
                } else {
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
        .bind(&self.catalog_name)
        .bind(self.staging.join("."))
        .bind(&prefix)
        .bind(&prefix)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // Read back: a commit the database did not keep must not count as made.
        let row = self.locations(&self.db, &self.namespace, table).await?;
        if row.as_ref().map(|(l, _)| l.as_str()) != Some(new_loc.as_str()) {
            return Err(crate::error::Error::unavailable(format!(
                "lake commit of {table} was not stored by the catalog database; will retry"
            )));
        }
        Ok(true)
    }
}
