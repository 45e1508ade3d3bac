//! SQLite as a target: the embedded demo's stand-in for StarRocks.
//!
//! Values are stored in the same forms the SQLite source reads (decimals, dates and timestamps as
//! text), so the verifier reads the target back with the source's own reader and compares
//! fingerprints of the same canonical values.
//!
//! A full run loads a staging table and swaps it in; an incremental (append) run upserts its data
//! files straight into the live table with `INSERT ... ON CONFLICT (key) DO UPDATE`, each file
//! with its ledger row in one transaction, so a resumed load skips exactly the files already in.
//! Tables of incremental workflow tables carry the source's PRIMARY KEY for that.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use rusqlite::types::{ToSqlOutput, Value};

use crate::error::{Error, Result};
use crate::model::TableInfo;
use crate::model::cells::Cells;
use crate::model::codec::{date_text, decimal_text, timestamp_text};
use crate::model::fingerprint::Digest128;
use crate::sqlite::{self as reader, quote};
use crate::store::LoadRequestRecord;
use crate::targets::ledger::{self, Dest, UnitLedger};
use crate::targets::{FromConfig, Kind, LoadJob, LoadSummary, RecordRequests, receiver_stream};

#[derive(Debug, Clone)]
pub struct SqliteTarget {
    pub path: PathBuf,
}

fn stage_name(table: &str, run: &str) -> String {
    format!("{table}__dag_{run}")
}

impl SqliteTarget {
    fn conn(&self) -> Result<rusqlite::Connection> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let c = reader::open(&self.path, true)?;
        c.pragma_update(None, "journal_mode", "WAL")?;
        // The ledger's `chunk` column holds the unit's number (one data file each): the column
        // keeps its name so targets written by earlier versions stay readable.
        c.execute_batch(
            "CREATE TABLE IF NOT EXISTS _dag_ledger (run_id TEXT NOT NULL, table_name TEXT NOT NULL, \
               chunk INTEGER NOT NULL, rows INTEGER NOT NULL, loaded_at TEXT NOT NULL, \
               PRIMARY KEY (run_id, table_name, chunk));
             CREATE TABLE IF NOT EXISTS _dag_published (run_id TEXT NOT NULL, table_name TEXT NOT NULL, \
               published_at TEXT NOT NULL, PRIMARY KEY (run_id, table_name));",
        )?;
        Ok(c)
    }

    pub fn is_published(&self, run: &str, table: &str) -> Result<bool> {
        let c = self.conn()?;
        let n: i64 = c.query_row(
            "SELECT COUNT(*) FROM _dag_published WHERE run_id = ?1 AND table_name = ?2",
            [run, table],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Creates the run's staging table (if missing) and returns the units already loaded into it.
    pub fn prepare(&self, info: &TableInfo, run: &str) -> Result<HashSet<u32>> {
        let c = self.conn()?;
        c.execute_batch(&create_sql(info, &stage_name(&info.name, run)))?;
        ledger_units(&c, info, run)
    }

    /// For an incremental run that appends: creates the live table if it is missing (with the
    /// key), checks that an existing one has the key to upsert by, and returns the units of
    /// `run` already upserted into it.
    pub fn prepare_append(&self, info: &TableInfo, run: &str) -> Result<HashSet<u32>> {
        let c = self.conn()?;
        c.execute_batch(&create_sql(info, &info.name))?;
        if !info.primary_key.is_empty() {
            let mut have: Vec<(i64, String)> = {
                let mut st = c.prepare(&format!("PRAGMA table_info({})", quote(&info.name)))?;
                st.query_map([], |r| Ok((r.get::<_, i64>(5)?, r.get::<_, String>(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            };
            have.retain(|(pk, _)| *pk > 0);
            have.sort();
            let have: Vec<String> = have.into_iter().map(|(_, n)| n).collect();
            let same = have.len() == info.primary_key.len()
                && have
                    .iter()
                    .zip(&info.primary_key)
                    .all(|(a, b)| a.eq_ignore_ascii_case(b));
            if !same {
                return Err(Error::config(format!(
                    "SQLite target {}: table {} has primary key ({}), not the source's ({}), so \
                     an incremental run cannot upsert into it; run a full refresh of the table, \
                     which creates it with the key",
                    self.path.display(),
                    info.name,
                    have.join(", "),
                    info.primary_key.join(", ")
                )));
            }
        }
        ledger_units(&c, info, run)
    }

    /// Loads one unit (one Parquet data file) into the staging table and records it in the
    /// ledger, in one transaction. Returns the digest of the rows inserted.
    pub fn load_unit(
        &self,
        info: &TableInfo,
        run: &str,
        unit: u32,
        file: &str,
        io: &iceberg::io::FileIO,
        batch_rows: usize,
    ) -> Result<Digest128> {
        let sql = format!(
            "INSERT INTO {} VALUES ({})",
            quote(&stage_name(&info.name, run)),
            placeholders(info)
        );
        self.load_into(info, run, unit, file, io, batch_rows, &sql)
    }

    /// Upserts one unit (one Parquet data file) into the live table (by the source's key; a
    /// keyless table gets plain inserts) and records the unit in the ledger, in one transaction.
    /// Returns the digest of the rows written.
    pub fn load_unit_append(
        &self,
        info: &TableInfo,
        run: &str,
        unit: u32,
        file: &str,
        io: &iceberg::io::FileIO,
        batch_rows: usize,
    ) -> Result<Digest128> {
        self.load_into(info, run, unit, file, io, batch_rows, &upsert_sql(info))
    }

    #[allow(clippy::too_many_arguments)]
    fn load_into(
        &self,
        info: &TableInfo,
        run: &str,
        unit: u32,
        file: &str,
        io: &iceberg::io::FileIO,
        batch_rows: usize,
        insert: &str,
    ) -> Result<Digest128> {
        let mut c = self.conn()?;
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut digest = Digest128::default();
        {
            let mut st = tx.prepare(insert)?;
            let mid_point = format!("mid_load:{}:{unit}", info.name);
            let reader = crate::lake::read::open_parquet(io, file, batch_rows, 0)?;
            for (bi, batch) in reader.enumerate() {
                let batch = batch?;
                insert_batch(&mut st, &batch)
                    .map_err(|e| e.context(format!("table {}", info.name)))?;
                digest.add_batch(&batch).map_err(Error::internal)?;
                if bi == 0 {
                    // Rows are in, the ledger row and the commit are not.
                    crate::fault::point(&mid_point);
                }
            }
        }
        tx.execute(
            "INSERT INTO _dag_ledger (run_id, table_name, chunk, rows, loaded_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![run, info.name, unit, digest.rows as i64, crate::store::now().to_string()],
        )?;
        tx.commit()?;
        Ok(digest)
    }

    /// Swaps the staging table in as the real one and forgets staging tables of other runs, in one
    /// transaction. Idempotent.
    pub fn publish(&self, table: &str, run: &str) -> Result<()> {
        let mut c = self.conn()?;
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let already: i64 = tx.query_row(
            "SELECT COUNT(*) FROM _dag_published WHERE run_id = ?1 AND table_name = ?2",
            [run, table],
            |r| r.get(0),
        )?;
        if already > 0 {
            return Ok(());
        }
        let stale: Vec<String> = {
            let mut st = tx.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
            st.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .filter(|n| {
                    n.strip_prefix(table).is_some_and(|rest| {
                        rest.starts_with("__dag_") && *n != stage_name(table, run)
                    })
                })
                .collect()
        };
        for s in stale {
            tx.execute_batch(&format!("DROP TABLE {}", quote(&s)))?;
        }
        tx.execute_batch(&format!(
            "DROP TABLE IF EXISTS {t}; ALTER TABLE {s} RENAME TO {t};",
            t = quote(table),
            s = quote(&stage_name(table, run))
        ))?;
        tx.execute(
            "INSERT INTO _dag_published (run_id, table_name, published_at) VALUES (?1, ?2, ?3)",
            [run, table, &crate::store::now().to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The published table read back with the SQLite source's reader, from the blocking pool.
    pub fn scan(
        &self,
        info: &TableInfo,
        batch_rows: usize,
    ) -> tokio::sync::mpsc::Receiver<Result<RecordBatch>> {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let (path, info) = (self.path.clone(), info.clone());
        tokio::task::spawn_blocking(move || {
            let res = reader::open(&path, false).and_then(|c| {
                reader::read(&c, &info, "", batch_rows, |b| {
                    Ok(tx.blocking_send(Ok(b)).is_ok())
                })
            });
            if let Err(e) = res {
                let _ = tx.blocking_send(Err(e));
            }
        });
        rx
    }

    pub fn count(&self, info: &TableInfo) -> Result<u64> {
        let c = reader::open(&self.path, false)?;
        let n: i64 = c.query_row(
            &format!("SELECT COUNT(*) FROM {}", quote(&info.name)),
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Kind for SqliteTarget {
    fn describe_location(&self) -> String {
        format!("sqlite {}", self.path.display())
    }

    fn load<'a>(
        &'a self,
        job: LoadJob<'a>,
        append: bool,
        _requests: &'a mut Vec<LoadRequestRecord>,
        _record: &'a mut RecordRequests<'_>,
    ) -> BoxFuture<'a, Result<LoadSummary>> {
        Box::pin(async move { ledger::load(self, &job, append).await })
    }

    fn scan(&self, info: &TableInfo, batch_rows: usize) -> BoxStream<'static, Result<RecordBatch>> {
        receiver_stream(SqliteTarget::scan(self, info, batch_rows))
    }

    fn count<'a>(&'a self, info: &'a TableInfo) -> BoxFuture<'a, Result<u64>> {
        let (t, info) = (self.clone(), info.clone());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || t.count(&info))
                .await
                .map_err(|e| Error::internal(format!("count worker panicked: {e}")))?
        })
    }
}

impl FromConfig for SqliteTarget {
    type Config = Path;

    fn from_config(path: &Path) -> Result<Self> {
        Ok(SqliteTarget {
            path: path.to_path_buf(),
        })
    }
}

/// The unit ledger's steps, each on the blocking pool: SQLite's calls block.
impl UnitLedger for SqliteTarget {
    async fn check(&self) -> Result<()> {
        Ok(())
    }

    async fn is_published(&self, info: &TableInfo, run: &str) -> Result<bool> {
        let (t, table, run) = (self.clone(), info.name.clone(), run.to_string());
        blocking(move || t.is_published(&run, &table)).await
    }

    /// Nothing: a publish is one transaction, so there is nothing a crash could cut short.
    async fn finish_publish(&self, _info: &TableInfo, _run: &str) -> Result<()> {
        Ok(())
    }

    async fn prepare(&self, info: &TableInfo, run: &str) -> Result<HashSet<u32>> {
        let (t, info, run) = (self.clone(), info.clone(), run.to_string());
        blocking(move || t.prepare(&info, &run)).await
    }

    async fn load_unit(
        &self,
        dest: Dest,
        job: &LoadJob<'_>,
        unit: u32,
        file: &str,
    ) -> Result<Digest128> {
        let (t, info, run) = (self.clone(), job.info.clone(), job.run.to_string());
        let (file, io, batch_rows) = (file.to_string(), job.io.clone(), job.batch_rows);
        blocking(move || match dest {
            Dest::Stage => t.load_unit(&info, &run, unit, &file, &io, batch_rows),
            Dest::Live => t.load_unit_append(&info, &run, unit, &file, &io, batch_rows),
        })
        .await
    }

    async fn publish(&self, info: &TableInfo, run: &str) -> Result<()> {
        let (t, table, run) = (self.clone(), info.name.clone(), run.to_string());
        blocking(move || t.publish(&table, &run)).await
    }

    async fn prepare_append(&self, info: &TableInfo, run: &str) -> Result<HashSet<u32>> {
        let (t, info, run) = (self.clone(), info.clone(), run.to_string());
        blocking(move || t.prepare_append(&info, &run)).await
    }

    /// Nothing: an append leaves no staging table behind.
    async fn finish_append(&self, _info: &TableInfo, _run: &str) -> Result<()> {
        Ok(())
    }
}

/// Runs one step of a load on the blocking pool.
async fn blocking<T: Send + 'static>(
    step: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(step)
        .await
        .map_err(|e| Error::internal(format!("load worker panicked: {e}")))?
}

/// `CREATE TABLE IF NOT EXISTS` of `table` with `info`'s columns. Tables of incremental workflow
/// tables get the source's PRIMARY KEY, which their upserts need.
fn create_sql(info: &TableInfo, table: &str) -> String {
    let mut cols: Vec<String> = info
        .columns
        .iter()
        .map(|col| {
            format!(
                "{} {}{}",
                quote(&col.name),
                col.ty.sqlite_decl(),
                if col.nullable { "" } else { " NOT NULL" }
            )
        })
        .collect();
    if info.incremental.is_some() && !info.primary_key.is_empty() {
        cols.push(format!("PRIMARY KEY ({})", key_list(info)));
    }
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        quote(table),
        cols.join(", ")
    )
}

fn key_list(info: &TableInfo) -> String {
    info.primary_key
        .iter()
        .map(|k| quote(k))
        .collect::<Vec<_>>()
        .join(", ")
}

fn placeholders(info: &TableInfo) -> String {
    (1..=info.columns.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statement that writes one row into the live table: an upsert by the source's key (a row
/// whose key is there replaces its values), a plain insert without a key.
fn upsert_sql(info: &TableInfo) -> String {
    let head = format!(
        "INSERT INTO {} VALUES ({})",
        quote(&info.name),
        placeholders(info)
    );
    if info.primary_key.is_empty() {
        return head;
    }
    let set: Vec<String> = info
        .columns
        .iter()
        .filter(|c| {
            !info
                .primary_key
                .iter()
                .any(|k| k.eq_ignore_ascii_case(&c.name))
        })
        .map(|c| format!("{n} = excluded.{n}", n = quote(&c.name)))
        .collect();
    if set.is_empty() {
        // Every column is in the key: a row already there is already equal.
        return format!("{head} ON CONFLICT ({}) DO NOTHING", key_list(info));
    }
    format!(
        "{head} ON CONFLICT ({}) DO UPDATE SET {}",
        key_list(info),
        set.join(", ")
    )
}

fn ledger_units(c: &rusqlite::Connection, info: &TableInfo, run: &str) -> Result<HashSet<u32>> {
    let mut st =
        c.prepare("SELECT chunk FROM _dag_ledger WHERE run_id = ?1 AND table_name = ?2")?;
    let done = st
        .query_map([run, &info.name], |r| r.get::<_, u32>(0))?
        .collect::<rusqlite::Result<HashSet<_>>>()?;
    Ok(done)
}

fn insert_batch(st: &mut rusqlite::Statement<'_>, batch: &RecordBatch) -> Result<()> {
    let cols: Vec<Cells<'_>> = batch
        .columns()
        .iter()
        .map(Cells::new)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::data(format!("cannot store in SQLite: {e}")))?;
    for row in 0..batch.num_rows() {
        for (i, col) in cols.iter().enumerate() {
            st.raw_bind_parameter(i + 1, cell(col, row))?;
        }
        st.raw_execute()?;
    }
    Ok(())
}

fn cell<'a>(col: &Cells<'a>, row: usize) -> ToSqlOutput<'a> {
    use ToSqlOutput::{Borrowed, Owned};
    use rusqlite::types::ValueRef;
    if col.is_null(row) {
        return Owned(Value::Null);
    }
    match col {
        Cells::Bool(a) => Owned(Value::Integer(i64::from(a.value(row)))),
        Cells::I32(a) => Owned(Value::Integer(i64::from(a.value(row)))),
        Cells::I64(a) => Owned(Value::Integer(a.value(row))),
        Cells::F32(a) => Owned(Value::Real(f64::from(a.value(row)))),
        Cells::F64(a) => Owned(Value::Real(a.value(row))),
        Cells::Dec(a, s) => Owned(Value::Text(decimal_text(a.value(row), *s))),
        Cells::Date(a) => Owned(Value::Text(date_text(a.value(row)))),
        Cells::Ts(a) => Owned(Value::Text(timestamp_text(a.value(row)))),
        Cells::Str(a) => Borrowed(ValueRef::Text(a.value(row).as_bytes())),
        Cells::LStr(a) => Borrowed(ValueRef::Text(a.value(row).as_bytes())),
        Cells::Bin(a) => Borrowed(ValueRef::Blob(a.value(row))),
        Cells::LBin(a) => Borrowed(ValueRef::Blob(a.value(row))),
    }
}

#[cfg(test)]
mod tests;
