//! MySQL and MariaDB as a target.
//!
//! Exactly-once rests on two things MySQL can make atomic. Each load unit (one Parquet data file
//! of the committed lake snapshot) goes into the run's staging table together with its row in
//! the `_dag_ledger` table, in one InnoDB transaction: a unit is either loaded and recorded or
//! neither, so a crash followed by a retry skips exactly the recorded units. Publishing swaps
//! the staging table in with one `RENAME TABLE t TO old, stage TO t` statement, so readers see
//! the old table or the new one, never half. The staging table carries the comment
//! `dag run <run> for <table>` and the rename carries it onto the real table, which is how a
//! repeated publish (after a crash anywhere in it) knows the swap already happened and never
//! swaps back; the same comment lets the cleanup find staging tables of other runs even when
//! their names had to be shortened.
//!
//! An incremental run that appends (`Incremental::append`) has no staging table: each unit goes
//! straight into the live table as `INSERT ... ON DUPLICATE KEY UPDATE c = VALUES(c), ...` (an
//! upsert by the primary key, which the table must have when the source has one; plain INSERT
//! for a keyless table), again with its ledger row in the same transaction. The ledger is what
//! makes a keyless append exactly-once; for a keyed table it also spares re-applying units.
//! (`VALUES(c)` in that clause works on MariaDB and MySQL 8, where 8.0.20+ only warns.)
//!
//! Session settings are fixed on every pooled connection (`setup` runs after each reset): a
//! strict `sql_mode` so the server refuses values instead of truncating them, UTC for any
//! TIMESTAMP column of a table the user created, and utf8mb4 for the connection.
//!
//! Tables are created from the type mapping (`create_tables`) with `utf8mb4_bin`: a binary
//! collation, so key values that differ only in case (distinct in a case-sensitive source) never
//! collide. Like every MySQL `*_bin` collation before MySQL 8's `utf8mb4_0900_bin`, it is PAD
//! SPACE: stored values keep their trailing spaces, but two keys differing only in trailing
//! spaces compare equal. SQL Server compares keys the same way, so its keys never differ like
//! that; a source that does (the SQLite demo) fails with a clear duplicate-key data error instead
//! of losing a row.

mod ddl;
mod load;
mod names;
pub mod rows;
pub mod scan;
mod stage;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use arrow_array::RecordBatch;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Pool, PoolConstraints, PoolOpts};
use tokio::sync::mpsc;

use crate::config::MysqlTargetConfig;
use crate::error::{Error, Result};
use crate::model::TableInfo;
use crate::model::fingerprint::Digest128;
use crate::store::LoadRequestRecord;
use crate::targets::ledger::{self, Dest, UnitLedger};
use crate::targets::{FromConfig, Kind, LoadJob, LoadSummary, RecordRequests, receiver_stream};
use names::check_name;
pub use names::{quote, stage_name};
use rows::map_error;

/// The ledger of loaded units, in the target database.
const LEDGER: &str = "_dag_ledger";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The session every pooled connection gets (see the module docs). No `NO_BACKSLASH_ESCAPES`:
/// the few string literals written outside [`rows::sql_literal`] (table comments) escape backslashes.
const SESSION_SETUP: [&str; 3] = [
    "SET NAMES utf8mb4",
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,\
     ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO'",
    "SET SESSION time_zone = '+00:00'",
];

#[derive(Clone)]
pub struct MysqlTarget {
    pool: Pool,
    host: String,
    port: u16,
    database: String,
    create_tables: bool,
    insert_bytes: u64,
}

/// Without the pool: its options hold the password.
impl fmt::Debug for MysqlTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("create_tables", &self.create_tables)
            .field("insert_bytes", &self.insert_bytes)
            .finish_non_exhaustive()
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

impl MysqlTarget {
    /// Reads `mysql://user:password@host:port[/database]`; `cfg.user`, `cfg.password` and a
    /// non-empty `cfg.database` win over the URL's parts. No I/O.
    pub fn new(cfg: &MysqlTargetConfig) -> Result<Self> {
        // Errors never quote the URL: it holds the password.
        let url = url::Url::parse(cfg.url.expose()).map_err(|_| {
            Error::config(
                "target.url is not a valid URL (expected mysql://user:password@host:port/database)",
            )
        })?;
        if !matches!(url.scheme(), "mysql" | "mariadb") {
            return Err(Error::config(format!(
                "target.url must start with mysql://, not {}://",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::config("target.url has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port().unwrap_or(3306);
        let user = cfg
            .user
            .clone()
            .or_else(|| Some(decode(url.username())).filter(|u| !u.is_empty()));
        let pass = match &cfg.password {
            Some(p) => Some(p.expose().to_string()),
            None => url.password().map(decode),
        };
        let database = if cfg.database.is_empty() {
            decode(url.path().trim_start_matches('/'))
        } else {
            cfg.database.clone()
        };
        if database.is_empty() {
            return Err(Error::config("target.database is missing"));
        }
        check_name(&database, "database")?;
        // Loads and scans each hold a connection for their whole length.
        let constraints = PoolConstraints::new(0, 64).unwrap_or_default();
        let opts = OptsBuilder::default()
            .ip_or_hostname(host.clone())
            .tcp_port(port)
            .user(user)
            .pass(pass)
            .prefer_socket(false)
            .setup(SESSION_SETUP.to_vec())
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_inactive_connection_ttl(Duration::from_secs(60)),
            );
        Ok(MysqlTarget {
            pool: Pool::new(opts),
            host,
            port,
            database,
            create_tables: cfg.create_tables,
            insert_bytes: cfg.insert_bytes.max(1024),
        })
    }

    /// `mysql host:port/database`, never the password.
    pub fn describe_location(&self) -> String {
        format!("mysql {}:{}/{}", self.host, self.port, self.database)
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    fn at(&self, e: mysql_async::Error) -> Error {
        map_error(e).context(self.describe_location())
    }

    fn at_table(&self, table: &str) -> impl Fn(mysql_async::Error) -> Error + '_ {
        let table = table.to_string();
        move |e| {
            map_error(e)
                .context(format!("table {table}"))
                .context(self.describe_location())
        }
    }

    async fn conn(&self) -> Result<Conn> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.pool.get_conn()).await {
            Ok(c) => c.map_err(|e| self.at(e)),
            Err(_) => Err(Error::unavailable(format!(
                "{}: no connection within {} s",
                self.describe_location(),
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    fn qualified(&self, table: &str) -> String {
        format!("{}.{}", quote(&self.database), quote(table))
    }

    /// Connects, creates the database if `create_tables` (else checks that it exists), and
    /// creates the ledger table.
    pub async fn check(&self) -> Result<()> {
        let mut c = self.conn().await?;
        if self.create_tables {
            c.query_drop(format!(
                "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                quote(&self.database)
            ))
            .await
            .map_err(|e| self.at(e))?;
        } else {
            let found: Option<String> = c
                .exec_first(
                    "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                    (&self.database,),
                )
                .await
                .map_err(|e| self.at(e))?;
            if found.is_none() {
                return Err(Error::config(format!(
                    "{}: database {} does not exist (create it, or set create_tables = true)",
                    self.describe_location(),
                    self.database
                )));
            }
        }
        self.ensure_ledger(&mut c).await
    }

    async fn ensure_ledger(&self, c: &mut Conn) -> Result<()> {
        c.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {} (\n  \
               run_id VARCHAR(64) NOT NULL,\n  \
               table_name VARCHAR(64) NOT NULL,\n  \
               unit INT UNSIGNED NOT NULL,\n  \
               `rows` BIGINT UNSIGNED NOT NULL,\n  \
               fingerprint CHAR(32) NOT NULL,\n  \
               loaded_at DATETIME(6) NOT NULL,\n  \
               PRIMARY KEY (run_id, table_name, unit)\n\
             ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
            self.qualified(LEDGER)
        ))
        .await
        .map_err(|e| self.at(e))
    }

    /// The units of `run` the ledger says are in for `info`'s table.
    async fn ledger_units(
        &self,
        c: &mut Conn,
        info: &TableInfo,
        run: &str,
    ) -> Result<HashSet<u32>> {
        let units: Vec<u32> = c
            .exec(
                format!(
                    "SELECT unit FROM {} WHERE run_id = ? AND table_name = ?",
                    self.qualified(LEDGER)
                ),
                (run, &info.name),
            )
            .await
            .map_err(self.at_table(&info.name))?;
        Ok(units.into_iter().collect())
    }

    /// Comment of the table named `name`, `None` when there is no such table.
    async fn comment_of(&self, c: &mut Conn, name: &str) -> Result<Option<String>> {
        Ok(self
            .tables(c, Some(name))
            .await?
            .into_iter()
            .next()
            .map(|(_, comment)| comment))
    }

    /// Names and comments of the database's tables (only `name` when given). Compared here, not
    /// in SQL: information_schema compares names without regard to case.
    async fn tables(&self, c: &mut Conn, name: Option<&str>) -> Result<Vec<(String, String)>> {
        let rows: Vec<(String, String, String)> = c
            .exec(
                "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_COMMENT FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = COALESCE(?, TABLE_NAME)",
                (&self.database, name),
            )
            .await
            .map_err(|e| self.at(e))?;
        Ok(rows
            .into_iter()
            .filter(|(db, n, _)| *db == self.database && name.is_none_or(|x| x == n))
            .map(|(_, n, comment)| (n, comment))
            .collect())
    }

    /// The published table's rows as Arrow batches typed like `info` (binary protocol, so floats
    /// come back bit for bit; columns in `info` order).
    pub fn scan(&self, info: &TableInfo, batch_rows: usize) -> mpsc::Receiver<Result<RecordBatch>> {
        let columns = info
            .columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT {columns} FROM {}", self.qualified(&info.name));
        scan::scan(self.pool.clone(), sql, info.clone(), batch_rows, true)
    }

    /// The largest statement a load sends under a grant of `scale` (below 1 when the load's
    /// estimate exceeded the whole budget): `insert_bytes` shrunk like the other buffers, but
    /// not below 64 KiB (or `insert_bytes`, if smaller).
    fn statement_bytes(&self, scale: f64) -> u64 {
        let floor = self.insert_bytes.min(64 << 10);
        ((self.insert_bytes as f64 * scale.min(1.0)) as u64).max(floor)
    }

    pub async fn count(&self, info: &TableInfo) -> Result<u64> {
        let mut c = self.conn().await?;
        let n: Option<u64> = c
            .query_first(format!(
                "SELECT COUNT(*) FROM {}",
                self.qualified(&info.name)
            ))
            .await
            .map_err(self.at_table(&info.name))?;
        Ok(n.unwrap_or(0))
    }
}

impl Kind for MysqlTarget {
    fn describe_location(&self) -> String {
        MysqlTarget::describe_location(self)
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
        receiver_stream(MysqlTarget::scan(self, info, batch_rows))
    }

    fn count<'a>(&'a self, info: &'a TableInfo) -> BoxFuture<'a, Result<u64>> {
        Box::pin(MysqlTarget::count(self, info))
    }
}

impl FromConfig for MysqlTarget {
    type Config = MysqlTargetConfig;

    fn from_config(cfg: &MysqlTargetConfig) -> Result<Self> {
        MysqlTarget::new(cfg)
    }

    /// Statements of at most `insert_bytes`: the one being built and the one running, and the
    /// driver's two copies of the running one (its packet buffer and its write buffer, each
    /// grown by doubling, so up to two statements each).
    fn load_buffer_bytes(cfg: &MysqlTargetConfig) -> u64 {
        6 * cfg.insert_bytes
    }

    /// A load reads batches of about one statement (see `load`).
    fn load_batch_bytes(cfg: &MysqlTargetConfig) -> Option<u64> {
        Some(cfg.insert_bytes)
    }
}

/// The unit ledger's steps are the target's own (see the module docs).
impl UnitLedger for MysqlTarget {
    async fn check(&self) -> Result<()> {
        MysqlTarget::check(self).await
    }

    async fn is_published(&self, info: &TableInfo, run: &str) -> Result<bool> {
        MysqlTarget::is_published(self, info, run).await
    }

    /// Publishes again: idempotent, it finishes a cleanup a crash cut short after the swap.
    async fn finish_publish(&self, info: &TableInfo, run: &str) -> Result<()> {
        MysqlTarget::publish(self, info, run).await
    }

    async fn prepare(&self, info: &TableInfo, run: &str) -> Result<HashSet<u32>> {
        MysqlTarget::prepare(self, info, run).await
    }

    async fn load_unit(
        &self,
        dest: Dest,
        job: &LoadJob<'_>,
        unit: u32,
        file: &str,
    ) -> Result<Digest128> {
        self.load_unit_to(
            dest,
            job.info,
            job.run,
            unit,
            file,
            job.io,
            job.batch_rows,
            self.statement_bytes(job.scale),
        )
        .await
    }

    async fn publish(&self, info: &TableInfo, run: &str) -> Result<()> {
        MysqlTarget::publish(self, info, run).await
    }

    async fn prepare_append(&self, info: &TableInfo, run: &str) -> Result<HashSet<u32>> {
        MysqlTarget::prepare_append(self, info, run).await
    }

    async fn finish_append(&self, info: &TableInfo, run: &str) -> Result<()> {
        MysqlTarget::finish_append(self, info, run).await
    }
}
