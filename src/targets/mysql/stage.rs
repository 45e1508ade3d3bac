//! The staging table's life and the ledger's: a full refresh prepares the run's staging table,
//! publishes it with one `RENAME TABLE` swap and then forgets what other runs left; an
//! incremental run prepares the live table instead and only forgets. Every step is safe to
//! repeat after a crash (see the module docs of `mysql` for how the table comments tell).

use std::collections::HashSet;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use super::ddl::key_plan;
use super::names::{
    check_name, check_run, is_stage_name, old_name, quote, stage_comment, stage_name, stage_of,
    string_literal,
};
use super::{LEDGER, MysqlTarget};
use crate::error::{Error, Result};
use crate::model::TableInfo;

impl MysqlTarget {
    /// Whether this run's staging table was already swapped in (publish finished).
    pub async fn is_published(&self, info: &TableInfo, run: &str) -> Result<bool> {
        check_name(&info.name, "table")?;
        check_run(run)?;
        let mut c = self.conn().await?;
        Ok(self.comment_of(&mut c, &info.name).await?.as_deref()
            == Some(stage_comment(&info.name, run).as_str()))
    }

    /// Creates the run's staging table (from the mapping when `create_tables`, else like the
    /// existing table) and returns the load units already in the ledger for (run, table).
    pub async fn prepare(&self, info: &TableInfo, run: &str) -> Result<HashSet<u32>> {
        check_name(&info.name, "table")?;
        check_run(run)?;
        let mut c = self.conn().await?;
        self.ensure_ledger(&mut c).await?;
        let fail = self.at_table(&info.name);
        let comment = stage_comment(&info.name, run);
        let published =
            self.comment_of(&mut c, &info.name).await?.as_deref() == Some(comment.as_str());
        if !published {
            let stage = stage_name(&info.name, run);
            let exists = self.comment_of(&mut c, &stage).await?.is_some();
            if !exists {
                // Ledger rows without their staging table (dropped by a later run's publish, or
                // a crash between the two statements below) describe rows that are gone.
                c.exec_drop(
                    format!(
                        "DELETE FROM {} WHERE run_id = ? AND table_name = ?",
                        self.qualified(LEDGER)
                    ),
                    (run, &info.name),
                )
                .await
                .map_err(&fail)?;
            }
            if self.create_tables {
                let ddl = self.create_table_sql(info, &stage, &comment)?;
                c.query_drop(ddl).await.map_err(&fail)?;
            } else {
                if self.comment_of(&mut c, &info.name).await?.is_none() {
                    return Err(Error::config(format!(
                        "{}: table {} does not exist and create_tables is false",
                        self.describe_location(),
                        info.name
                    )));
                }
                c.query_drop(format!(
                    "CREATE TABLE IF NOT EXISTS {} LIKE {}",
                    self.qualified(&stage),
                    self.qualified(&info.name)
                ))
                .await
                .map_err(&fail)?;
                // Also repairs a crash between the two statements.
                c.query_drop(format!(
                    "ALTER TABLE {} COMMENT = {}",
                    self.qualified(&stage),
                    string_literal(&comment)
                ))
                .await
                .map_err(&fail)?;
                self.add_new_columns(&mut c, info, &stage).await?;
            }
        }
        self.ledger_units(&mut c, info, run).await
    }

    /// For an incremental run that appends: creates the live table if it is missing (from the
    /// mapping when `create_tables`, with this run's comment), adds columns the source gained,
    /// checks that a keyed table has the source's key as its primary key (an upsert needs it),
    /// and returns the units of (run, table) already in the ledger. No staging table.
    pub async fn prepare_append(&self, info: &TableInfo, run: &str) -> Result<HashSet<u32>> {
        check_name(&info.name, "table")?;
        check_run(run)?;
        let mut c = self.conn().await?;
        self.ensure_ledger(&mut c).await?;
        let fail = self.at_table(&info.name);
        if self.comment_of(&mut c, &info.name).await?.is_none() {
            if !self.create_tables {
                return Err(Error::config(format!(
                    "{}: table {} does not exist and create_tables is false",
                    self.describe_location(),
                    info.name
                )));
            }
            let ddl = self.create_table_sql(info, &info.name, &stage_comment(&info.name, run))?;
            c.query_drop(ddl).await.map_err(&fail)?;
        } else {
            self.add_new_columns(&mut c, info, &info.name).await?;
        }
        if !info.primary_key.is_empty() {
            let rows: Vec<(String, String)> = c
                .exec(
                    "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
                     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' \
                     ORDER BY ORDINAL_POSITION",
                    (&self.database, &info.name),
                )
                .await
                .map_err(&fail)?;
            let have: Vec<String> = rows
                .into_iter()
                .filter(|(t, _)| *t == info.name)
                .map(|(_, col)| col)
                .collect();
            let mut a: Vec<String> = have.iter().map(|k| k.to_lowercase()).collect();
            let mut b: Vec<String> = info.primary_key.iter().map(|k| k.to_lowercase()).collect();
            a.sort();
            b.sort();
            if a != b {
                let found = if have.is_empty() {
                    "has no primary key".to_string()
                } else {
                    format!("has the primary key ({})", have.join(", "))
                };
                let why = if key_plan(info).is_none() {
                    " (dag creates it without that key because a key column is nullable or \
                     the key is longer than InnoDB's 3072-byte limit: make the key fit, or use \
                     mode = \"full\" for this table)"
                } else {
                    ", or run a full refresh of the table, which creates it with the key"
                };
                return Err(Error::config(format!(
                    "{}: table {} {found}, not the source's key ({}): an incremental run \
                     upserts by that key; add it with ALTER TABLE {} ADD PRIMARY KEY ({}){why}",
                    self.describe_location(),
                    info.name,
                    info.primary_key.join(", "),
                    self.qualified(&info.name),
                    info.primary_key
                        .iter()
                        .map(|k| quote(k))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        self.ledger_units(&mut c, info, run).await
    }

    /// Ends an incremental run's load: what earlier runs left of this table (staging tables of
    /// runs that never published, their ledger rows) goes, as a publish would drop it. Safe to
    /// repeat; this run's ledger rows stay, so a repeated load applies nothing again.
    pub async fn finish_append(&self, info: &TableInfo, run: &str) -> Result<()> {
        check_name(&info.name, "table")?;
        check_run(run)?;
        let mut c = self.conn().await?;
        self.forget_other_runs(&mut c, &info.name, run).await
    }

    /// Drops staging tables of `table` other than `run`'s, and the previous table a swap of
    /// `run` set aside, and forgets the other runs' ledger rows for it.
    async fn forget_other_runs(&self, c: &mut Conn, table: &str, run: &str) -> Result<()> {
        let fail = self.at_table(table);
        let old = old_name(table, run);
        for (name, comment) in self.tables(c, None).await? {
            if name != table
                && (name == old || stage_of(&comment) == Some(table) || is_stage_name(&name, table))
            {
                c.query_drop(format!("DROP TABLE IF EXISTS {}", self.qualified(&name)))
                    .await
                    .map_err(&fail)?;
            }
        }
        c.exec_drop(
            format!(
                "DELETE FROM {} WHERE table_name = ? AND run_id <> ?",
                self.qualified(LEDGER)
            ),
            (table, run),
        )
        .await
        .map_err(&fail)?;
        Ok(())
    }

    /// Swaps the staging table in as the table (one `RENAME TABLE`), then drops the previous
    /// table and staging tables of other runs, and forgets those runs' ledger rows. Idempotent:
    /// once the table carries this run's comment the swap is never repeated.
    pub async fn publish(&self, info: &TableInfo, run: &str) -> Result<()> {
        let table = info.name.as_str();
        check_name(table, "table")?;
        check_run(run)?;
        let fail = self.at_table(table);
        let mut c = self.conn().await?;
        let comment = stage_comment(table, run);
        let stage = stage_name(table, run);
        let old = old_name(table, run);
        let current = self.comment_of(&mut c, table).await?;
        if current.as_deref() != Some(comment.as_str()) {
            if self.comment_of(&mut c, &stage).await?.is_none() {
                return Err(Error::internal(format!(
                    "{}: table {table}: staging table {stage} of run {run} is missing, \
                     nothing to publish",
                    self.describe_location()
                )));
            }
            let rename = if current.is_some() {
                // A leftover of this run under the old name cannot be the live table.
                c.query_drop(format!("DROP TABLE IF EXISTS {}", self.qualified(&old)))
                    .await
                    .map_err(&fail)?;
                format!(
                    "RENAME TABLE {t} TO {o}, {s} TO {t}",
                    t = self.qualified(table),
                    o = self.qualified(&old),
                    s = self.qualified(&stage)
                )
            } else {
                format!(
                    "RENAME TABLE {} TO {}",
                    self.qualified(&stage),
                    self.qualified(table)
                )
            };
            c.query_drop(rename).await.map_err(&fail)?;
            tracing::info!(table, run, "staging table swapped in");
        }
        // Cleanup, safe to repeat.
        self.forget_other_runs(&mut c, table, run).await
    }
}
