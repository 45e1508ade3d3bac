//! The SQL catalog's database as this crate reaches it directly, beside the iceberg crate: the
//! publish and the check after each commit read and write `iceberg_tables` rows themselves, in
//! SQLite's or PostgreSQL's placeholder style. Also the catalog URI's kind, its SQLite file, and
//! the URI without its password for messages.

use std::path::PathBuf;

use iceberg::NamespaceIdent;
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
}
