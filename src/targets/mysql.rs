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

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use arrow_array::RecordBatch;
use iceberg::io::FileIO;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Pool, PoolConstraints, PoolOpts, TxOpts};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::mysql_rows::{self, map_error, sql_literal};
use crate::config::MysqlTargetConfig;
use crate::error::{Error, Result};
use crate::model::cells::Cells;
use crate::model::fingerprint::Digest128;
use crate::model::{ColType, TableInfo};

/// The ledger of loaded units, in the target database.
const LEDGER: &str = "_dag_ledger";
/// MySQL's longest identifier, in characters.
const MAX_NAME: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The session every pooled connection gets (see the module docs). No `NO_BACKSLASH_ESCAPES`:
/// the few string literals written outside [`sql_literal`] (table comments) escape backslashes.
const SESSION_SETUP: [&str; 3] = [
    "SET NAMES utf8mb4",
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,\
     ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO'",
    "SET SESSION time_zone = '+00:00'",
];

/// Row-size accounting (see [`MysqlTarget::create_table_sql`]), measured on MariaDB 10.11.
/// The server's limit on a row's declared size, BLOB/TEXT bodies not counted, with a margin.
const ROW_LIMIT: u64 = 65_535 - 32;
/// InnoDB's limit on the part of a row kept in its 16 KiB page, and the record header around it.
const PAGE_LIMIT: u64 = 8_126;
const PAGE_HEADER: u64 = 26;
/// What a TEXT/BLOB column counts towards the row size (length bytes and pointer).
const LOB_ROW: u64 = 12;
/// What a column that InnoDB may store off-page (over 255 bytes) counts in the page.
const OFF_PAGE: u64 = 21;
/// InnoDB's longest index key, in bytes (DYNAMIC rows).
const KEY_LIMIT: u64 = 3_072;

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

    /// Comment of the table named `name`, `None` when there is no such table.
    /// Columns the source gained since the user made the table (`create_tables = false`) are
    /// added to the staging table before rows flow, so the swap publishes them; dropped or
    /// retyped columns were refused by extract already.
    async fn add_new_columns(&self, c: &mut Conn, info: &TableInfo, stage: &str) -> Result<()> {
        let have: Vec<String> = c
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&self.database, stage),
            )
            .await
            .map_err(|e| self.at(e))?;
        for (i, col) in info.columns.iter().enumerate() {
            // MySQL column names ignore case.
            if have.iter().any(|h| h.eq_ignore_ascii_case(&col.name)) {
                continue;
            }
            check_name(&col.name, &format!("table {}: column", info.name))?;
            let d = decl(info, i, None);
            let sql = d.lob.map_or(d.sql, |l| l.sql);
            tracing::info!(table = %info.name, column = %col.name, "adding the new column to the target table");
            c.query_drop(format!(
                "ALTER TABLE {} ADD COLUMN {} {}{}",
                self.qualified(stage),
                quote(&col.name),
                sql,
                if col.nullable { "" } else { " NOT NULL" }
            ))
            .await
            .map_err(|e| self.at(e).context(format!("table {}", info.name)))?;
        }
        Ok(())
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

    /// Loads one unit (one Parquet data file) into the staging table and records it in the
    /// ledger, in one transaction; returns the digest of the rows inserted. A unit already in
    /// the ledger is not loaded again: its recorded digest is returned.
    pub async fn load_unit(
        &self,
        info: &TableInfo,
        run: &str,
        unit: u32,
        file: &str,
        io: &FileIO,
        batch_rows: usize,
    ) -> Result<Digest128> {
        self.load_unit_to(Dest::Stage, info, run, unit, file, io, batch_rows)
            .await
    }

    /// For an incremental run that appends: upserts one unit (one Parquet data file) into the
    /// live table by its primary key (plain inserts for a keyless table) and records it in the
    /// ledger, in one transaction; returns the digest of the rows written. A unit already in the
    /// ledger is not applied again: its recorded digest is returned.
    pub async fn load_unit_append(
        &self,
        info: &TableInfo,
        run: &str,
        unit: u32,
        file: &str,
        io: &FileIO,
        batch_rows: usize,
    ) -> Result<Digest128> {
        self.load_unit_to(Dest::Live, info, run, unit, file, io, batch_rows)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn load_unit_to(
        &self,
        dest: Dest,
        info: &TableInfo,
        run: &str,
        unit: u32,
        file: &str,
        io: &FileIO,
        batch_rows: usize,
    ) -> Result<Digest128> {
        check_name(&info.name, "table")?;
        check_run(run)?;
        let fail = self.at_table(&info.name);
        let mut c = self.conn().await?;
        let packet: Option<u64> = c
            .query_first("SELECT @@max_allowed_packet")
            .await
            .map_err(&fail)?;
        // Room for the packet header and the statement's own overhead.
        let cap = self
            .insert_bytes
            .min(packet.unwrap_or(4 << 20).saturating_sub(1024))
            .max(1024) as usize;
        let mut tx = c
            .start_transaction(TxOpts::default())
            .await
            .map_err(&fail)?;
        let result = self
            .load_in(&mut tx, dest, info, run, unit, file, io, batch_rows, cap)
            .await;
        match result {
            Ok(d) => {
                tx.commit().await.map_err(&fail)?;
                tracing::debug!(table = %info.name, unit, rows = d.rows, "unit loaded into MySQL");
                Ok(d)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                // Another loader of the same unit may have won (our rows then collided with its
                // rows or its ledger row): the unit is loaded exactly once, by that loader.
                match self.recorded(&mut c, info, run, unit).await {
                    Ok(Some(d)) => Ok(d),
                    _ => Err(e),
                }
            }
        }
    }

    /// The digest recorded in the ledger for a unit, if it was loaded.
    async fn recorded<Q: Queryable>(
        &self,
        q: &mut Q,
        info: &TableInfo,
        run: &str,
        unit: u32,
    ) -> Result<Option<Digest128>> {
        let done: Option<(u64, String)> = q
            .exec_first(
                format!(
                    "SELECT `rows`, fingerprint FROM {} \
                     WHERE run_id = ? AND table_name = ? AND unit = ?",
                    self.qualified(LEDGER)
                ),
                (run, &info.name, unit),
            )
            .await
            .map_err(self.at_table(&info.name))?;
        let Some((rows, fp)) = done else {
            return Ok(None);
        };
        let sum = u128::from_str_radix(&fp, 16).map_err(|_| {
            Error::state(format!(
                "table {}: ledger fingerprint {fp:?} of unit {unit} is not hex",
                info.name
            ))
        })?;
        Ok(Some(Digest128 { rows, sum }))
    }

    #[allow(clippy::too_many_arguments)]
    async fn load_in(
        &self,
        tx: &mut mysql_async::Transaction<'_>,
        dest: Dest,
        info: &TableInfo,
        run: &str,
        unit: u32,
        file: &str,
        io: &FileIO,
        batch_rows: usize,
        cap: usize,
    ) -> Result<Digest128> {
        let fail = self.at_table(&info.name);
        let ledger = self.qualified(LEDGER);
        // A plain read, no locking read: `FOR UPDATE` on a missing row takes a gap lock, and
        // loaders of neighbouring units would deadlock on each other's ledger inserts. Two
        // loaders of the same unit are kept apart by the ledger's primary key instead (below).
        if let Some(d) = self.recorded(tx, info, run, unit).await? {
            return Ok(d);
        }
        let columns = info
            .columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let (into, tail) = match dest {
            Dest::Stage => (stage_name(&info.name, run), String::new()),
            Dest::Live => (info.name.clone(), upsert_clause(info)),
        };
        let head = format!("INSERT INTO {} ({columns}) VALUES ", self.qualified(&into));
        let mut pieces = produce(
            file.to_string(),
            io.clone(),
            batch_rows,
            info.clone(),
            (head, tail),
            cap,
        );
        let mid_point = format!("mid_load:{}:{unit}", info.name);
        let mut first = true;
        let mut digest = None;
        while let Some(piece) = pieces.recv().await {
            match piece? {
                Piece::Insert {
                    sql,
                    batch,
                    first_row,
                } => {
                    if let Err(e) = tx.query_drop(sql).await {
                        return Err(explain(fail(e), &batch, first_row));
                    }
                    if first {
                        first = false;
                        // Rows are in, the ledger row and the commit are not.
                        crate::fault::point(&mid_point);
                    }
                }
                Piece::Done(d) => digest = Some(d),
            }
        }
        let digest = digest.ok_or_else(|| {
            Error::internal(format!(
                "table {}: reading data file of unit {unit} stopped early",
                info.name
            ))
        })?;
        tx.exec_drop(
            format!(
                "INSERT INTO {ledger} (run_id, table_name, unit, `rows`, fingerprint, loaded_at) \
                 VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(6))"
            ),
            (run, &info.name, unit, digest.rows, digest.hex()),
        )
        .await
        .map_err(|e| match e {
            // Another loader recorded this unit first; this transaction's rows roll back and
            // the retry finds the unit in the ledger.
            mysql_async::Error::Server(s) if s.code == 1062 => Error::unavailable(format!(
                "{}: table {}: unit {unit} was loaded meanwhile by another loader",
                self.describe_location(),
                info.name
            )),
            e => fail(e),
        })?;
        Ok(digest)
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
        mysql_rows::scan(self.pool.clone(), sql, info.clone(), batch_rows, true)
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

    /// The `CREATE TABLE IF NOT EXISTS` statement for `table_name` in the target database, from
    /// the type mapping (MySQL column of `type-mapping.md`).
    ///
    /// Strings and binaries are VARCHAR/VARBINARY sized from the source's declared length while
    /// the row fits, else TEXT/BLOB types. Two limits decide (both measured on MariaDB 10.11):
    /// the server's 65,535-byte row size, where VARCHAR(n) counts 4n+2 bytes in utf8mb4 and a
    /// TEXT 12, and InnoDB's 8,126 bytes kept in the page, where a column of at most 255 bytes
    /// counts whole and a longer one (which may go off-page) 21. While either is exceeded, the
    /// non-key column that saves most becomes TEXT/BLOB (ties: the first such column). Key
    /// columns stay VARCHAR/VARBINARY so they can be indexed: unbounded ones share InnoDB's
    /// 3,072-byte key limit (VARCHAR(768) for a lone one); a key that cannot fit, or with a
    /// nullable or unknown column, is left out (rows are still checked by the source's key).
    pub fn create_table_sql(
        &self,
        info: &TableInfo,
        table_name: &str,
        comment: &str,
    ) -> Result<String> {
        check_name(&info.name, "table")?;
        check_name(table_name, "table")?;
        if info.columns.is_empty() {
            return Err(Error::config(format!("table {}: no columns", info.name)));
        }
        let mut seen = HashSet::new();
        for col in &info.columns {
            check_name(&col.name, &format!("table {}: column", info.name))?;
            // MySQL column names ignore case.
            if !seen.insert(col.name.to_lowercase()) {
                return Err(Error::config(format!(
                    "table {}: two columns named {} (MySQL column names ignore case)",
                    info.name, col.name
                )));
            }
        }
        let key = key_plan(info);
        let mut decls: Vec<Decl> = (0..info.columns.len())
            .map(|i| decl(info, i, key.as_ref().and_then(|k| k.get(&i).copied())))
            .collect();
        let nullable = info.columns.iter().filter(|c| c.nullable).count() as u64;
        let null_bytes = nullable.div_ceil(8);
        loop {
            let row: u64 = decls.iter().map(|d| d.row).sum::<u64>() + null_bytes;
            let page: u64 = decls.iter().map(|d| d.page).sum::<u64>() + null_bytes + PAGE_HEADER;
            let over_row = row > ROW_LIMIT;
            if !over_row && page <= PAGE_LIMIT {
                break;
            }
            let saving = |d: &Decl| {
                d.lob.as_ref().map(|l| {
                    if over_row {
                        d.row.saturating_sub(l.row)
                    } else {
                        d.page.saturating_sub(l.page)
                    }
                })
            };
            let best = decls
                .iter()
                .enumerate()
                .filter_map(|(i, d)| saving(d).filter(|s| *s > 0).map(|s| (s, i)))
                // Largest saving, then the first column.
                .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            match best {
                Some((_, i)) => {
                    if let Some(l) = decls[i].lob.take() {
                        decls[i] = *l;
                    }
                }
                // Nothing left to shrink: let the server judge (its error names the table).
                None => break,
            }
        }
        let mut lines: Vec<String> = info
            .columns
            .iter()
            .zip(&decls)
            .map(|(c, d)| {
                format!(
                    "  {} {}{}",
                    quote(&c.name),
                    d.sql,
                    if c.nullable { "" } else { " NOT NULL" }
                )
            })
            .collect();
        if key.is_some() {
            lines.push(format!(
                "  PRIMARY KEY ({})",
                info.primary_key
                    .iter()
                    .map(|k| quote(k))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(format!(
            "CREATE TABLE IF NOT EXISTS {} (\n{}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 \
             COLLATE=utf8mb4_bin COMMENT={}",
            self.qualified(table_name),
            lines.join(",\n"),
            string_literal(comment)
        ))
    }
}

/// One column's declaration and what it counts towards the row limits.
struct Decl {
    sql: String,
    /// Bytes towards the server's row size.
    row: u64,
    /// Bytes towards InnoDB's in-page size.
    page: u64,
    /// The TEXT/BLOB declaration it becomes when the row is too wide (none: it stays).
    lob: Option<Box<Decl>>,
}

impl Decl {
    fn fixed(sql: impl Into<String>, bytes: u64) -> Decl {
        Decl {
            sql: sql.into(),
            row: bytes,
            page: bytes,
            lob: None,
        }
    }

    fn lob(sql: &str) -> Decl {
        Decl {
            sql: sql.into(),
            row: LOB_ROW,
            page: OFF_PAGE,
            lob: None,
        }
    }

    /// A variable-length column of at most `bytes` bytes.
    fn var(sql: String, bytes: u64, lob: Option<Decl>) -> Decl {
        Decl {
            sql,
            row: bytes + if bytes > 255 { 2 } else { 1 },
            page: if bytes > 255 { OFF_PAGE } else { bytes + 1 },
            lob: lob.map(Box::new),
        }
    }
}

fn text_type(bytes: u64) -> &'static str {
    match bytes {
        0..=65_535 => "TEXT",
        65_536..=16_777_215 => "MEDIUMTEXT",
        _ => "LONGTEXT",
    }
}

fn blob_type(bytes: u64) -> &'static str {
    match bytes {
        0..=65_535 => "BLOB",
        65_536..=16_777_215 => "MEDIUMBLOB",
        _ => "LONGBLOB",
    }
}

/// Bytes of a DECIMAL(p,s) (9 digits in 4 bytes, the rest in 1 to 4).
fn decimal_bytes(precision: u8, scale: i8) -> u64 {
    const REST: [u64; 9] = [0, 1, 1, 2, 2, 3, 3, 4, 4];
    let part = |d: u64| d / 9 * 4 + REST[(d % 9) as usize];
    let s = u64::try_from(scale.max(0)).unwrap_or(0);
    part(u64::from(precision).saturating_sub(s)) + part(s)
}

fn source_base(info: &TableInfo, i: usize) -> String {
    info.source_type(i)
        .unwrap_or("")
        .split('(')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Column `i`'s declaration; `key_len`: it is a key column of that many characters (strings) or
/// bytes (binaries).
fn decl(info: &TableInfo, i: usize, key_len: Option<u64>) -> Decl {
    let col = &info.columns[i];
    let base = source_base(info, i);
    let max = info.max_len(i).map(u64::from);
    match col.ty {
        ColType::Bool => Decl::fixed("BOOLEAN", 1),
        ColType::Int32 => match base.as_str() {
            "tinyint" => Decl::fixed("TINYINT UNSIGNED", 1),
            "smallint" => Decl::fixed("SMALLINT", 2),
            _ => Decl::fixed("INT", 4),
        },
        ColType::Int64 => Decl::fixed("BIGINT", 8),
        ColType::Float32 => Decl::fixed("FLOAT", 4),
        ColType::Float64 => Decl::fixed("DOUBLE", 8),
        ColType::Decimal { precision, scale } => Decl::fixed(
            format!("DECIMAL({precision},{scale})"),
            decimal_bytes(precision, scale),
        ),
        ColType::Date => Decl::fixed("DATE", 3),
        ColType::Timestamp | ColType::TimestampTz => Decl::fixed("DATETIME(6)", 8),
        ColType::String => match (key_len, max) {
            (Some(n), _) => Decl::var(format!("VARCHAR({n})"), 4 * n, None),
            (None, Some(36)) if base == "uniqueidentifier" => {
                Decl::var("CHAR(36)".into(), 144, Some(Decl::lob("TEXT")))
            }
            (None, Some(n)) if 4 * n <= 65_532 => Decl::var(
                format!("VARCHAR({n})"),
                4 * n,
                Some(Decl::lob(text_type(4 * n))),
            ),
            (None, Some(n)) => Decl::lob(text_type(4 * n)),
            (None, None) => Decl::lob("LONGTEXT"),
        },
        ColType::Binary => match (key_len, max) {
            (Some(n), _) => Decl::var(format!("VARBINARY({n})"), n, None),
            (None, Some(n)) if n <= 65_532 => {
                Decl::var(format!("VARBINARY({n})"), n, Some(Decl::lob(blob_type(n))))
            }
            (None, Some(n)) => Decl::lob(blob_type(n)),
            (None, None) => Decl::lob("LONGBLOB"),
        },
    }
}

/// Lengths of the primary key's string and binary columns (characters and bytes), `None` when
/// the table gets no primary key (see [`MysqlTarget::create_table_sql`]).
fn key_plan(info: &TableInfo) -> Option<std::collections::HashMap<usize, u64>> {
    if info.primary_key.is_empty() {
        return None;
    }
    let skip = |why: &str| {
        tracing::warn!(table = %info.name, "MySQL table created without its primary key: {why}");
        None
    };
    let mut idx = Vec::new();
    for k in &info.primary_key {
        match info.columns.iter().position(|c| &c.name == k) {
            Some(i) if !info.columns[i].nullable => idx.push(i),
            Some(_) => return skip(&format!("key column {k} is nullable")),
            None => return skip(&format!("key column {k} is not a column")),
        }
    }
    let mut used = 0u64;
    let mut open = Vec::new();
    let mut lens = std::collections::HashMap::new();
    for &i in &idx {
        let col = &info.columns[i];
        match (col.ty, info.max_len(i).map(u64::from)) {
            (ColType::String, Some(n)) => {
                used += 4 * n;
                lens.insert(i, n);
            }
            (ColType::Binary, Some(n)) => {
                used += n;
                lens.insert(i, n);
            }
            (ColType::String | ColType::Binary, None) => open.push(i),
            _ => used += decl(info, i, None).row,
        }
    }
    if used > KEY_LIMIT {
        return skip("its columns are longer than InnoDB's 3072-byte key limit");
    }
    if !open.is_empty() {
        let share = (KEY_LIMIT - used) / open.len() as u64;
        for i in open {
            let n = if info.columns[i].ty == ColType::String {
                share / 4
            } else {
                share
            };
            if n == 0 {
                return skip("no room left under InnoDB's 3072-byte key limit");
            }
            lens.insert(i, n);
        }
    }
    Some(lens)
}

/// Where a unit's rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    /// The run's staging table (a full refresh).
    Stage,
    /// The live table, by upsert (an incremental run that appends).
    Live,
}

/// ` ON DUPLICATE KEY UPDATE c = VALUES(c), ...` over the non-key columns, so a row whose key is
/// already in the table replaces its values; empty for a keyless table (plain inserts).
fn upsert_clause(info: &TableInfo) -> String {
    if info.primary_key.is_empty() {
        return String::new();
    }
    let is_key = |name: &str| {
        info.primary_key
            .iter()
            .any(|k| k.eq_ignore_ascii_case(name))
    };
    let mut set: Vec<String> = info
        .columns
        .iter()
        .filter(|c| !is_key(&c.name))
        .map(|c| format!("{n} = VALUES({n})", n = quote(&c.name)))
        .collect();
    if set.is_empty() {
        // Every column is in the key: the row already there is equal. Assigning a key column
        // its own value keeps the statement an upsert without IGNORE, which would also swallow
        // the strict mode's errors about bad values.
        let k = quote(&info.primary_key[0]);
        set.push(format!("{k} = {k}"));
    }
    format!(" ON DUPLICATE KEY UPDATE {}", set.join(", "))
}

/// What the producer of a unit's statements sends.
enum Piece {
    /// One multi-row INSERT; `batch` and `first_row` locate its rows for error messages.
    Insert {
        sql: String,
        batch: RecordBatch,
        first_row: usize,
    },
    /// Everything sent; the digest of all rows.
    Done(Digest128),
}

/// Reads the data file on the blocking pool and turns it into INSERT statements of at most
/// `cap` bytes (a single longer row goes alone): `head`, the rows, `tail` (an upsert's
/// `ON DUPLICATE KEY UPDATE ...`, or nothing). Two statements wait at most.
fn produce(
    file: String,
    io: FileIO,
    batch_rows: usize,
    info: TableInfo,
    (head, tail): (String, String),
    cap: usize,
) -> mpsc::Receiver<Result<Piece>> {
    let (tx, rx) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let cap = cap.saturating_sub(tail.len());
        if let Err(e) = produce_into(&file, &io, batch_rows, &info, (&head, &tail), cap, &tx) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

fn produce_into(
    file: &str,
    io: &FileIO,
    batch_rows: usize,
    info: &TableInfo,
    (head, tail): (&str, &str),
    cap: usize,
    tx: &mpsc::Sender<Result<Piece>>,
) -> Result<()> {
    let reader = crate::lake::read::open_parquet(io, file, batch_rows, 0)?;
    let mut digest = Digest128::default();
    let mut row_text = String::new();
    for batch in reader {
        let batch = in_table_order(batch?, info)?;
        digest.add_batch(&batch).map_err(Error::internal)?;
        let cells: Vec<Cells<'_>> = batch
            .columns()
            .iter()
            .map(Cells::new)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::data(format!("table {}: {e}", info.name)))?;
        let mut sql = String::with_capacity(cap.min(1 << 20));
        sql.push_str(head);
        let mut rows = 0usize;
        let mut first_row = 0usize;
        for row in 0..batch.num_rows() {
            row_text.clear();
            row_text.push('(');
            for (i, c) in cells.iter().enumerate() {
                if i > 0 {
                    row_text.push(',');
                }
                sql_literal(c, row, &mut row_text).map_err(|m| {
                    Error::data(format!(
                        "table {}, column {}: {m}",
                        info.name, info.columns[i].name
                    ))
                })?;
            }
            row_text.push(')');
            if rows > 0 && sql.len() + 1 + row_text.len() > cap {
                sql.push_str(tail);
                let full = std::mem::replace(&mut sql, String::with_capacity(cap.min(1 << 20)));
                let piece = Piece::Insert {
                    sql: full,
                    batch: batch.clone(),
                    first_row,
                };
                if tx.blocking_send(Ok(piece)).is_err() {
                    return Ok(());
                }
                sql.push_str(head);
                rows = 0;
                first_row = row;
            }
            if rows > 0 {
                sql.push(',');
            }
            sql.push_str(&row_text);
            rows += 1;
        }
        if rows > 0 {
            sql.push_str(tail);
            let piece = Piece::Insert {
                sql,
                batch: batch.clone(),
                first_row,
            };
            if tx.blocking_send(Ok(piece)).is_err() {
                return Ok(());
            }
        }
    }
    let _ = tx.blocking_send(Ok(Piece::Done(digest)));
    Ok(())
}

/// The batch's columns in `info` order, found by name (the digest and the INSERT column list
/// both follow `info`).
fn in_table_order(batch: RecordBatch, info: &TableInfo) -> Result<RecordBatch> {
    let schema = batch.schema();
    let idx = info
        .columns
        .iter()
        .map(|c| {
            schema.index_of(&c.name).map_err(|_| {
                Error::internal(format!(
                    "table {}: the data file has no column {}",
                    info.name, c.name
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if idx.iter().copied().eq(0..schema.fields().len()) {
        return Ok(batch);
    }
    Ok(batch.project(&idx)?)
}

/// Adds the offending column and value to a server error about a value, when the server names
/// them ("... for column 'c' at row 3").
fn explain(mut e: Error, batch: &RecordBatch, first_row: usize) -> Error {
    let msg = e.message.clone();
    let column = msg.split_once("column ").and_then(|(_, rest)| {
        if let Some(r) = rest.strip_prefix('\'') {
            r.split_once('\'').map(|(c, _)| c.to_string())
        } else if rest.starts_with('`') {
            // MariaDB: `db`.`table`.`column`
            let end = rest.find(" at row").unwrap_or(rest.len());
            rest[..end]
                .trim()
                .trim_end_matches('`')
                .rsplit("`.`")
                .next()
                .map(|c| c.trim_start_matches('`').replace("``", "`"))
        } else {
            None
        }
    });
    let row: Option<usize> = msg
        .split_once(" at row ")
        .and_then(|(_, r)| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok());
    let (Some(column), Some(row)) = (column, row) else {
        return e;
    };
    let Ok(i) = batch.schema().index_of(&column) else {
        return e;
    };
    let at = first_row + row.saturating_sub(1);
    if at >= batch.num_rows() {
        return e;
    }
    let mut value = String::new();
    match Cells::new(batch.column(i)) {
        Ok(c) if sql_literal(&c, at, &mut value).is_ok() => {
            if value.len() > 120 {
                let mut end = 120;
                while !value.is_char_boundary(end) {
                    end -= 1;
                }
                value.truncate(end);
                value.push_str("...");
            }
            e.message = format!("{msg} (column {column}, value {value})");
        }
        _ => {}
    }
    e
}

/// A backquoted identifier.
pub use super::quote_ident as quote;

/// A quoted string for DDL (comments), for sessions without `NO_BACKSLASH_ESCAPES` (ours).
fn string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Refuses names MySQL cannot hold: empty, over 64 characters, ending with a space, or with
/// NUL or characters outside the Basic Multilingual Plane.
fn check_name(name: &str, what: &str) -> Result<()> {
    let why = if name.is_empty() {
        "is empty"
    } else if name.chars().count() > MAX_NAME {
        "is longer than 64 characters, the MySQL limit"
    } else if name.ends_with(' ') {
        "ends with a space, which MySQL does not allow"
    } else if name.chars().any(|c| c == '\0' || c > '\u{FFFF}') {
        "holds NUL or a character outside the Basic Multilingual Plane, which MySQL names cannot"
    } else {
        return Ok(());
    };
    Err(Error::config(format!(
        "{what} {name:?} {why}: rename it for the MySQL target"
    )))
}

fn check_run(run: &str) -> Result<()> {
    if run.is_empty()
        || run.len() > MAX_NAME
        || !run
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::internal(format!(
            "run id {run:?} is not usable in MySQL table names"
        )));
    }
    Ok(())
}

/// `{table}__dag_{suffix}`, or when that is over 64 characters a prefix of the table, `__dag_`
/// and 12 hex digits of a hash of the whole name: deterministic, and different per run.
fn dag_name(table: &str, suffix: &str) -> String {
    let full = format!("{table}__dag_{suffix}");
    if full.chars().count() <= MAX_NAME {
        return full;
    }
    let h = Sha256::digest(full.as_bytes());
    let hash: String = h[..6].iter().map(|b| format!("{b:02x}")).collect();
    let prefix: String = table.chars().take(MAX_NAME - 6 - 12).collect();
    format!("{prefix}__dag_{hash}")
}

/// The staging table of `run` for `table`.
pub fn stage_name(table: &str, run: &str) -> String {
    dag_name(table, run)
}

/// Where the previous table goes during the swap.
fn old_name(table: &str, run: &str) -> String {
    dag_name(table, &format!("old_{run}"))
}

fn stage_comment(table: &str, run: &str) -> String {
    format!("dag run {run} for {table}")
}

/// The table a staging comment belongs to.
fn stage_of(comment: &str) -> Option<&str> {
    let (run, table) = comment.strip_prefix("dag run ")?.split_once(" for ")?;
    (!run.is_empty() && !run.contains(' ')).then_some(table)
}

/// Names of staging tables left without their comment (a crash between `CREATE TABLE ... LIKE`
/// and the comment): `{table}__dag_[old_]<run id as made by the state store>`.
fn is_stage_name(name: &str, table: &str) -> bool {
    let Some(rest) = name
        .strip_prefix(table)
        .and_then(|r| r.strip_prefix("__dag_"))
    else {
        return false;
    };
    let rest = rest.strip_prefix("old_").unwrap_or(rest);
    let Some((time, tag)) = rest.split_once('_') else {
        return false;
    };
    time.len() == 17
        && time.bytes().all(|b| b.is_ascii_digit())
        && tag.len() == 4
        && tag.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::model::Column;
    use crate::model::ColumnOrigin;
    use arrow_array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
        Int32Array, Int64Array, LargeBinaryArray, StringArray, TimestampMicrosecondArray,
    };
    use std::sync::Arc;

    /// Data files in the tests are local.
    fn local_io() -> FileIO {
        FileIO::new_with_fs()
    }

    fn col(name: &str, ty: ColType, nullable: bool) -> Column {
        Column {
            name: name.into(),
            ty,
            nullable,
        }
    }

    /// 40 x varchar(63): too wide only for InnoDB's in-page limit.
    fn narrow_table(name: &str) -> TableInfo {
        let mut t = TableInfo::new(
            name,
            (0..40)
                .map(|i| col(&format!("c{i}"), ColType::String, false))
                .collect(),
            None,
            0,
        );
        t.origin = (0..40).map(|_| spec("varchar(63)")).collect();
        t
    }

    fn spec(declared: &str) -> ColumnOrigin {
        ColumnOrigin {
            expr: String::new(),
            declared: declared.into(),
            identity: false,
            computed: false,
        }
    }

    fn config(database: &str) -> MysqlTargetConfig {
        MysqlTargetConfig {
            url: Secret::new("mysql://root@127.0.0.1:3306"),
            user: None,
            password: None,
            database: database.into(),
            create_tables: true,
            insert_bytes: 2048,
        }
    }

    /// A table with every type, nullable, plus its key; source types like SQL Server's.
    fn every_type(name: &str) -> TableInfo {
        let cols = [
            ("id", ColType::Int32, false, "int"),
            ("flag", ColType::Bool, true, "bit"),
            ("tiny", ColType::Int32, true, "tinyint"),
            ("small", ColType::Int32, true, "smallint"),
            ("big", ColType::Int64, true, "bigint"),
            ("f32", ColType::Float32, true, "real"),
            ("f64", ColType::Float64, true, "float"),
            (
                "dec",
                ColType::Decimal {
                    precision: 38,
                    scale: 10,
                },
                true,
                "decimal(38,10)",
            ),
            ("day", ColType::Date, true, "date"),
            ("ts", ColType::Timestamp, true, "datetime2(7)"),
            ("tz", ColType::TimestampTz, true, "datetimeoffset(7)"),
            ("name", ColType::String, true, "nvarchar(100)"),
            ("notes", ColType::String, true, "nvarchar(max)"),
            ("guid", ColType::String, true, "uniqueidentifier"),
            ("bin", ColType::Binary, true, "varbinary(16)"),
            ("blob", ColType::Binary, true, "varbinary(max)"),
        ];
        let mut info = TableInfo::new(
            name,
            cols.iter()
                .map(|(n, t, null, _)| col(n, *t, *null))
                .collect(),
            Some("id".into()),
            0,
        );
        info.origin = cols.iter().map(|c| spec(c.3)).collect();
        info.primary_key = vec!["id".into()];
        info
    }

    fn target(database: &str) -> MysqlTarget {
        MysqlTarget::new(&config(database)).unwrap()
    }

    #[test]
    fn url_parts_and_overrides_and_no_password_anywhere() {
        let mut cfg = config("");
        cfg.url = Secret::new("mysql://lo%40der:s3cr%2Ft@db.example:3307/sales");
        let t = MysqlTarget::new(&cfg).unwrap();
        assert_eq!(t.database(), "sales");
        assert_eq!(t.describe_location(), "mysql db.example:3307/sales");
        assert!(!format!("{t:?}").contains("s3cr"), "{t:?}");
        cfg.database = "other".into();
        cfg.password = Some(Secret::new("hunter2"));
        let t = MysqlTarget::new(&cfg).unwrap();
        assert_eq!(t.database(), "other");
        assert!(!format!("{t:?}").contains("hunter2"));

        for bad in [
            "not a url s3cr",
            "postgres://u:s3cr@h/db",
            "mysql://u:s3cr@/db",
        ] {
            cfg.url = Secret::new(bad);
            let e = MysqlTarget::new(&cfg).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Config);
            assert!(!e.to_string().contains("s3cr"), "{e}");
        }
        cfg.url = Secret::new("mysql://u@h");
        cfg.database = String::new();
        assert!(MysqlTarget::new(&cfg).is_err());
    }

    #[test]
    fn names_are_quoted_checked_and_shortened_deterministically() {
        assert_eq!(quote("a`b"), "`a``b`");
        let run = "20261124194000123_abcd";
        assert_eq!(
            stage_name("ORDERS", run),
            "ORDERS__dag_20261124194000123_abcd"
        );
        assert_eq!(
            old_name("ORDERS", run),
            "ORDERS__dag_old_20261124194000123_abcd"
        );
        assert!(is_stage_name(&stage_name("ORDERS", run), "ORDERS"));
        assert!(is_stage_name(&old_name("ORDERS", run), "ORDERS"));
        assert!(!is_stage_name("ORDERS__dag_archive", "ORDERS"));
        assert!(!is_stage_name(&stage_name("ORDERS", run), "ORDER"));

        let long = "T".repeat(50);
        let s = stage_name(&long, run);
        assert_eq!(s.chars().count(), 64);
        assert!(
            s.starts_with(&"T".repeat(46)) && s.contains("__dag_"),
            "{s}"
        );
        assert_eq!(s, stage_name(&long, run));
        assert_ne!(s, stage_name(&long, "20261124194000123_abce"));
        assert_ne!(s, old_name(&long, run));
        let long2 = format!("{}U", "T".repeat(49));
        assert_ne!(s, stage_name(&long2, run));
        let wide = "é".repeat(64);
        assert_eq!(stage_name(&wide, run).chars().count(), 64);
        check_name(&stage_name(&wide, run), "table").unwrap();

        assert_eq!(stage_of(&stage_comment("A for B", run)), Some("A for B"));
        assert_eq!(stage_of("dag run x for T"), Some("T"));
        assert_eq!(stage_of("orders of 2024"), None);

        check_name(&"x".repeat(64), "table").unwrap();
        let e = check_name(&"x".repeat(65), "table").unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Config);
        assert!(
            e.message.contains(&"x".repeat(65)) && e.message.contains("64"),
            "{e}"
        );
        assert!(check_name("a ", "table").is_err());
        assert!(check_name("", "table").is_err());
        assert!(check_name("a\0", "table").is_err());
        assert!(check_name("smile😀", "table").is_err());
        assert!(check_run("x y").is_err());
        check_run(run).unwrap();

        let t = target("db");
        let mut info = every_type(&"x".repeat(65));
        let e = t.create_table_sql(&info, "s", "c").unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Config);
        info.name = "ok".into();
        info.columns[1].name = "ID".into();
        let e = t.create_table_sql(&info, "s", "c").unwrap_err();
        assert!(e.message.contains("ignore case"), "{e}");
    }

    #[test]
    fn upserts_update_the_non_key_columns() {
        let mut t = TableInfo::new(
            "t",
            vec![
                col("k", ColType::Int32, false),
                col("v`w", ColType::String, true),
            ],
            None,
            0,
        );
        assert_eq!(upsert_clause(&t), "", "keyless: plain inserts");
        t.primary_key = vec!["K".into()];
        assert_eq!(
            upsert_clause(&t),
            " ON DUPLICATE KEY UPDATE `v``w` = VALUES(`v``w`)"
        );
        t.primary_key = vec!["k".into(), "v`w".into()];
        assert_eq!(upsert_clause(&t), " ON DUPLICATE KEY UPDATE `k` = `k`");
    }

    #[test]
    fn ddl_of_every_type() {
        let t = target("db");
        let info = every_type("T");
        let sql = t.create_table_sql(&info, "T", "dag run r for T").unwrap();
        assert_eq!(
            sql,
            "CREATE TABLE IF NOT EXISTS `db`.`T` (\n  \
               `id` INT NOT NULL,\n  \
               `flag` BOOLEAN,\n  \
               `tiny` TINYINT UNSIGNED,\n  \
               `small` SMALLINT,\n  \
               `big` BIGINT,\n  \
               `f32` FLOAT,\n  \
               `f64` DOUBLE,\n  \
               `dec` DECIMAL(38,10),\n  \
               `day` DATE,\n  \
               `ts` DATETIME(6),\n  \
               `tz` DATETIME(6),\n  \
               `name` VARCHAR(100),\n  \
               `notes` LONGTEXT,\n  \
               `guid` CHAR(36),\n  \
               `bin` VARBINARY(16),\n  \
               `blob` LONGBLOB,\n  \
               PRIMARY KEY (`id`)\n\
             ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin \
             COMMENT='dag run r for T'"
        );
        assert_eq!(decimal_bytes(38, 10), 18);
        assert_eq!(decimal_bytes(19, 4), 9);
        assert_eq!(decimal_bytes(10, 0), 5);

        // Unknown source types: plain INT, unbounded text; a quote in a comment is doubled.
        let mut bare = every_type("B");
        bare.origin.clear();
        bare.primary_key.clear();
        let sql = t.create_table_sql(&bare, "B", "it's \\ here").unwrap();
        assert!(
            sql.contains("`tiny` INT,") && sql.contains("`name` LONGTEXT,"),
            "{sql}"
        );
        assert!(!sql.contains("PRIMARY KEY"), "{sql}");
        assert!(sql.ends_with("COMMENT='it''s \\\\ here'"), "{sql}");
    }

    /// 66 columns of nvarchar(255): over the 65,535-byte row limit as VARCHAR(255) in utf8mb4.
    fn wide(name: &str) -> TableInfo {
        let mut info = TableInfo::new(
            name,
            (0..66)
                .map(|i| col(&format!("c{i}"), ColType::String, i != 0))
                .collect(),
            None,
            0,
        );
        info.origin = (0..66).map(|_| spec("nvarchar(255)")).collect();
        info.primary_key = vec!["c0".into()];
        info
    }

    #[test]
    fn wide_tables_and_keys_fit_the_row_limits() {
        let t = target("db");
        let sql = t.create_table_sql(&wide("W"), "W", "c").unwrap();
        let texts = sql.matches(" TEXT").count();
        // 66 x 1022 bytes is 67,452; two TEXT columns bring it to 65,417 (+ 9 null bytes).
        assert_eq!(texts, 2, "{sql}");
        assert!(
            sql.contains("`c0` VARCHAR(255) NOT NULL"),
            "key stays VARCHAR: {sql}"
        );
        assert!(
            sql.contains("`c1` TEXT,") && sql.contains("`c2` TEXT,"),
            "{sql}"
        );
        assert!(sql.contains("`c3` VARCHAR(255),"), "{sql}");

        // Many short columns: InnoDB's in-page limit (32 x VARCHAR(63) fit, 33 do not).
        let narrow = narrow_table("N");
        let sql = t.create_table_sql(&narrow, "N", "c").unwrap();
        // 31 x 253 + 9 x 21 + 26 = 8,058 bytes; with 8 TEXT columns 8,264.
        assert_eq!(sql.matches(" TEXT").count(), 9, "{sql}");

        // Unbounded key columns share InnoDB's 3,072-byte key.
        let mut k = TableInfo::new(
            "K",
            vec![
                col("a", ColType::String, false),
                col("b", ColType::String, false),
                col("n", ColType::Int64, false),
                col("bin", ColType::Binary, false),
            ],
            None,
            0,
        );
        k.primary_key = vec!["a".into()];
        let sql = t.create_table_sql(&k, "K", "c").unwrap();
        assert!(sql.contains("`a` VARCHAR(768) NOT NULL"), "{sql}");
        assert!(sql.contains("`b` LONGTEXT NOT NULL"), "{sql}");
        k.primary_key = vec!["a".into(), "n".into(), "b".into(), "bin".into()];
        let sql = t.create_table_sql(&k, "K", "c").unwrap();
        // (3072 - 8) / 3 = 1021 bytes each: 255 characters, 1021 bytes.
        assert!(sql.contains("`a` VARCHAR(255) NOT NULL"), "{sql}");
        assert!(sql.contains("`b` VARCHAR(255) NOT NULL"), "{sql}");
        assert!(sql.contains("`bin` VARBINARY(1021) NOT NULL"), "{sql}");
        assert!(sql.contains("PRIMARY KEY (`a`, `n`, `b`, `bin`)"), "{sql}");
        // A key too long for InnoDB, or with a nullable column, is left out.
        k.origin = vec![spec("nvarchar(800)"), spec(""), spec(""), spec("")];
        k.primary_key = vec!["a".into()];
        let sql = t.create_table_sql(&k, "K", "c").unwrap();
        assert!(!sql.contains("PRIMARY KEY"), "{sql}");
        k.origin.clear();
        k.columns[0].nullable = true;
        assert!(
            !t.create_table_sql(&k, "K", "c")
                .unwrap()
                .contains("PRIMARY KEY")
        );
    }

    // ---- Against a real server (127.0.0.1:3306) ----

    /// A target on a fresh database, dropped when the guard goes; `None` (test skipped) when no
    /// server listens, unless `CI=true`.
    fn server(test: &str) -> Option<(MysqlTarget, DropDb)> {
        let addr: std::net::SocketAddr = "127.0.0.1:3306".parse().unwrap();
        if let Err(e) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: MariaDB at {addr} unreachable ({e}) and CI=true");
            }
            eprintln!("SKIPPED: {test}: no MySQL/MariaDB at {addr} ({e})");
            return None;
        }
        let db = format!("dag_t_{:016x}", fastrand::u64(..));
        Some((target(&db), DropDb(db)))
    }

    struct DropDb(String);

    impl Drop for DropDb {
        fn drop(&mut self) {
            let db = self.0.clone();
            // Its own thread and runtime: the test's runtime may be gone or busy.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let t = target(&db);
                    let mut c = t.pool.get_conn().await.unwrap();
                    // A failed test may leave transactions open: do not wait a day for them.
                    c.query_drop(format!(
                        "SET SESSION lock_wait_timeout = 10; DROP DATABASE IF EXISTS {}",
                        quote(&db)
                    ))
                    .await
                    .unwrap();
                });
            })
            .join();
        }
    }

    fn write_parquet(dir: &std::path::Path, name: &str, batch: &RecordBatch) -> String {
        let path = dir.join(name);
        let file = std::fs::File::create(&path).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(batch).unwrap();
        w.close().unwrap();
        format!("file://{}", path.display())
    }

    /// Rows with the edge values of every type; `base` offsets the keys.
    fn edge_batch(info: &TableInfo, base: i32) -> RecordBatch {
        let n = 6;
        let ids: Vec<i32> = (base..base + n).collect();
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(ids)),
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None,
                Some(true),
                Some(false),
                Some(true),
            ])),
            Arc::new(Int32Array::from(vec![
                Some(0),
                Some(255),
                None,
                Some(1),
                Some(2),
                Some(3),
            ])),
            Arc::new(Int32Array::from(vec![
                Some(-32768),
                Some(32767),
                None,
                Some(0),
                Some(1),
                Some(-1),
            ])),
            Arc::new(Int64Array::from(vec![
                Some(i64::MIN),
                Some(i64::MAX),
                None,
                Some(0),
                Some(-1),
                Some(1),
            ])),
            Arc::new(Float32Array::from(vec![
                Some(0.0f32),
                Some(-0.0),
                None,
                Some(f32::MAX),
                Some(f32::from_bits(1)),
                Some(f32::MIN_POSITIVE),
            ])),
            Arc::new(Float64Array::from(vec![
                Some(-0.0f64),
                Some(f64::MAX),
                None,
                Some(5e-324),
                Some(f64::MIN),
                Some(0.1),
            ])),
            Arc::new(
                Decimal128Array::from(vec![
                    Some(-99_999_999_999_999_999_999_999_999_999_999_999_999i128),
                    Some(99_999_999_999_999_999_999_999_999_999_999_999_999),
                    None,
                    Some(0),
                    Some(-1),
                    Some(12_345_678_900),
                ])
                .with_precision_and_scale(38, 10)
                .unwrap(),
            ),
            Arc::new(Date32Array::from(vec![
                Some(-719_162),
                Some(2_932_896),
                None,
                Some(0),
                Some(-1),
                Some(19_000),
            ])),
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(-62_135_596_800_000_000),
                Some(253_402_300_799_999_999),
                None,
                Some(1),
                Some(-1),
                Some(1_700_000_000_123_456),
            ])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    Some(1_700_000_000_000_001),
                    Some(0),
                    None,
                    Some(-62_135_596_800_000_000),
                    Some(253_402_300_799_999_999),
                    Some(5),
                ])
                .with_timezone(crate::model::UTC),
            ),
            Arc::new(StringArray::from(vec![
                Some(""),
                Some("it's a \"quote\" \\ back\\slash"),
                None,
                Some("line\nbreak\r\ttab 😀 é"),
                Some("trailing  "),
                Some("nul\0inside"),
            ])),
            Arc::new(StringArray::from(vec![
                Some("x".repeat(3000)),
                Some(String::new()),
                None,
                Some("\\".into()),
                Some("'".into()),
                Some("😀".repeat(100)),
            ])),
            Arc::new(StringArray::from(vec![
                Some("6f9619ff-8b86-d011-b42d-00c04fc964ff"),
                None,
                None,
                Some("00000000-0000-0000-0000-000000000000"),
                None,
                None,
            ])),
            Arc::new(LargeBinaryArray::from(vec![
                Some(&[0u8, 0xFF][..]),
                Some(&[][..]),
                None,
                Some(&[0x27, 0x5C, 0x00][..]),
                Some(&[0xFF; 16][..]),
                Some(&[1][..]),
            ])),
            Arc::new(LargeBinaryArray::from(vec![
                Some(&[0u8; 5000][..]),
                None,
                None,
                Some(&b"\\'"[..]),
                Some(&[][..]),
                Some(&[0xFE, 0xFF][..]),
            ])),
        ];
        RecordBatch::try_new(info.arrow_schema(), arrays).unwrap()
    }

    /// Digests of each column alone, so a mismatch names its column.
    fn per_column(batches: &[RecordBatch]) -> Vec<(String, Digest128)> {
        let schema = batches[0].schema();
        (0..schema.fields().len())
            .map(|i| {
                let mut d = Digest128::default();
                for b in batches {
                    d.add_batch(&b.project(&[i]).unwrap()).unwrap();
                }
                (schema.field(i).name().clone(), d)
            })
            .collect()
    }

    async fn read_all(t: &MysqlTarget, info: &TableInfo, batch_rows: usize) -> Vec<RecordBatch> {
        let mut rx = t.scan(info, batch_rows);
        let mut out = Vec::new();
        while let Some(b) = rx.recv().await {
            out.push(b.unwrap());
        }
        out
    }

    async fn read_back(t: &MysqlTarget, info: &TableInfo, batch_rows: usize) -> Digest128 {
        let mut rx = t.scan(info, batch_rows);
        let mut d = Digest128::default();
        while let Some(b) = rx.recv().await {
            let b = b.unwrap();
            assert_eq!(b.schema(), info.arrow_schema());
            assert!(b.num_rows() <= batch_rows);
            d.add_batch(&b).unwrap();
        }
        d
    }

    fn digest(batches: &[&RecordBatch]) -> Digest128 {
        let mut d = Digest128::default();
        for b in batches {
            d.add_batch(&positive_zero(b)).unwrap();
        }
        d
    }

    /// The batch as MariaDB stores it: a DOUBLE or FLOAT column turns -0.0 into 0.0 (the
    /// expression `-0e0` keeps its sign; storing it does not, whatever the protocol).
    fn positive_zero(b: &RecordBatch) -> RecordBatch {
        let cols: Vec<ArrayRef> = b
            .columns()
            .iter()
            .map(|a| match a.data_type() {
                arrow_schema::DataType::Float32 => {
                    let f = a.as_any().downcast_ref::<Float32Array>().unwrap();
                    Arc::new(f.unary::<_, arrow_array::types::Float32Type>(|v| {
                        if v == 0.0 { 0.0 } else { v }
                    })) as ArrayRef
                }
                arrow_schema::DataType::Float64 => {
                    let f = a.as_any().downcast_ref::<Float64Array>().unwrap();
                    Arc::new(f.unary::<_, arrow_array::types::Float64Type>(|v| {
                        if v == 0.0 { 0.0 } else { v }
                    })) as ArrayRef
                }
                _ => a.clone(),
            })
            .collect();
        RecordBatch::try_new(b.schema(), cols).unwrap()
    }

    #[tokio::test]
    async fn loads_units_once_publishes_once_and_reads_back_the_same_values() {
        let Some((t, _guard)) = server("mysql full cycle") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let info = every_type("every type");
        let b0 = edge_batch(&info, 0);
        let b1 = edge_batch(&info, 100);
        let f0 = write_parquet(dir.path(), "0.parquet", &b0);
        let f1 = write_parquet(dir.path(), "1.parquet", &b1);
        let run = "20261124194000123_abcd";

        t.check().await.unwrap();
        t.check().await.unwrap();
        assert!(!t.is_published(&info, run).await.unwrap());
        assert!(t.prepare(&info, run).await.unwrap().is_empty());
        let d0 = t
            .load_unit(&info, run, 0, &f0, &local_io(), 4)
            .await
            .unwrap();
        let mut raw = Digest128::default();
        raw.add_batch(&b0).unwrap();
        // The digest of the rows as read from the data file.
        assert_eq!(d0, raw);
        // A crash before publish: the retry sees unit 0 done and loads only unit 1.
        let done = t.prepare(&info, run).await.unwrap();
        assert_eq!(done, HashSet::from([0]));
        let d1 = t
            .load_unit(&info, run, 1, &f1, &local_io(), 4)
            .await
            .unwrap();
        assert_eq!(d1.rows, 6);
        // Loading a recorded unit again inserts nothing and answers its recorded digest.
        assert_eq!(
            t.load_unit(&info, run, 0, &f0, &local_io(), 4)
                .await
                .unwrap(),
            d0
        );
        assert_eq!(t.prepare(&info, run).await.unwrap(), HashSet::from([0, 1]));
        let stage = TableInfo {
            name: stage_name(&info.name, run),
            ..info.clone()
        };
        assert_eq!(t.count(&stage).await.unwrap(), 12);

        t.publish(&info, run).await.unwrap();
        assert!(t.is_published(&info, run).await.unwrap());
        t.publish(&info, run).await.unwrap();
        assert!(t.is_published(&info, run).await.unwrap());
        // After publishing, prepare creates nothing and reports every unit done.
        assert_eq!(t.prepare(&info, run).await.unwrap(), HashSet::from([0, 1]));
        assert_eq!(t.count(&info).await.unwrap(), 12);

        let expect = digest(&[&b0, &b1]);
        let back = read_all(&t, &info, 5).await;
        assert_eq!(
            per_column(&back),
            per_column(&[positive_zero(&b0), positive_zero(&b1)])
        );
        assert_eq!(read_back(&t, &info, 5).await, expect);
        assert_eq!(read_back(&t, &info, 1000).await, expect);

        // The text protocol reads the same values (floats aside: MariaDB prints FLOAT with 6
        // digits in text).
        let text_info = TableInfo {
            columns: info
                .columns
                .iter()
                .filter(|c| !matches!(c.ty, ColType::Float32))
                .cloned()
                .collect(),
            ..info.clone()
        };
        let cols = text_info
            .columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let mut rx = mysql_rows::scan(
            t.pool.clone(),
            format!("SELECT {cols} FROM {}", t.qualified(&info.name)),
            text_info.clone(),
            7,
            false,
        );
        let mut text_digest = Digest128::default();
        while let Some(b) = rx.recv().await {
            text_digest.add_batch(&b.unwrap()).unwrap();
        }
        let mut lake = Digest128::default();
        for b in [&b0, &b1] {
            let idx: Vec<usize> = (0..info.columns.len()).filter(|i| *i != 5).collect();
            lake.add_batch(&positive_zero(b).project(&idx).unwrap())
                .unwrap();
        }
        assert_eq!(text_digest, lake);

        // A second run replaces the table; a stale staging table of a third run goes too.
        let run2 = "20261124194500000_0001";
        let stale = "20261124190000000_ffff";
        t.prepare(&info, stale).await.unwrap();
        t.load_unit(&info, stale, 0, &f1, &local_io(), 100)
            .await
            .unwrap();
        t.prepare(&info, run2).await.unwrap();
        t.load_unit(&info, run2, 0, &f1, &local_io(), 100)
            .await
            .unwrap();
        assert!(!t.is_published(&info, run2).await.unwrap());
        assert_eq!(t.count(&info).await.unwrap(), 12, "readers still see run 1");
        t.publish(&info, run2).await.unwrap();
        t.publish(&info, run2).await.unwrap();
        assert!(t.is_published(&info, run2).await.unwrap());
        assert!(!t.is_published(&info, run).await.unwrap());
        assert_eq!(read_back(&t, &info, 64).await, digest(&[&b1]));
        let mut c = t.conn().await.unwrap();
        let mut names: Vec<String> = c
            .exec(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
                (t.database(),),
            )
            .await
            .unwrap();
        names.sort();
        assert_eq!(names, vec![LEDGER.to_string(), info.name.clone()]);
        let runs: Vec<String> = c
            .query(format!(
                "SELECT DISTINCT run_id FROM {}",
                t.qualified(LEDGER)
            ))
            .await
            .unwrap();
        assert_eq!(runs, vec![run2.to_string()]);
        // The first run, retried late, would start over: its ledger rows are gone.
        assert!(t.prepare(&info, run).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_crash_after_the_swap_ends_published_once() {
        let Some((t, _guard)) = server("mysql publish after crash") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let mut info = every_type(&"L".repeat(60));
        info.name = "L".repeat(60); // staging names get shortened
        let b = edge_batch(&info, 0);
        let f = write_parquet(dir.path(), "0.parquet", &b);
        t.check().await.unwrap();
        let run1 = "20261124194000123_0001";
        let run2 = "20261124194000123_0002";
        t.prepare(&info, run1).await.unwrap();
        t.load_unit(&info, run1, 0, &f, &local_io(), 3)
            .await
            .unwrap();
        t.publish(&info, run1).await.unwrap();
        t.prepare(&info, run2).await.unwrap();
        t.load_unit(&info, run2, 7, &f, &local_io(), 3)
            .await
            .unwrap();
        let d = digest(&[&b]);
        // The swap of run 2 happens, then the process dies before any cleanup.
        let mut c = t.conn().await.unwrap();
        c.query_drop(format!(
            "RENAME TABLE {t} TO {o}, {s} TO {t}",
            t = t.qualified(&info.name),
            o = t.qualified(&old_name(&info.name, run2)),
            s = t.qualified(&stage_name(&info.name, run2))
        ))
        .await
        .unwrap();
        assert!(t.is_published(&info, run2).await.unwrap());
        t.publish(&info, run2).await.unwrap();
        assert!(t.is_published(&info, run2).await.unwrap());
        assert_eq!(read_back(&t, &info, 4).await, d);
        let n: Option<u64> = c
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
                (t.database(),),
            )
            .await
            .unwrap();
        assert_eq!(n, Some(2), "only the table and the ledger remain");
        // Publishing a run whose staging table is gone fails clearly, touching nothing.
        let e = t.publish(&info, run1).await.unwrap_err();
        assert!(e.message.contains("missing"), "{e}");
        assert_eq!(read_back(&t, &info, 4).await, d);
    }

    #[tokio::test]
    async fn a_reader_that_gives_up_stops_the_query() {
        let Some((t, _guard)) = server("mysql abandoned scan") else {
            return;
        };
        t.check().await.unwrap();
        let mut c = t.conn().await.unwrap();
        let (d, n) = (t.qualified("digits"), t.qualified("many"));
        c.query_drop(format!(
            "CREATE TABLE {d} (v BIGINT); INSERT INTO {d} VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9); \
             CREATE TABLE {n} (v BIGINT, pad VARCHAR(300)); \
             INSERT INTO {n} SELECT a.v + 10 * b.v + 100 * c.v + 1000 * e.v + 10000 * f.v, REPEAT('x', 300) \
             FROM {d} a, {d} b, {d} c, {d} e, {d} f, {d} g WHERE g.v < 3"
        ))
        .await
        .unwrap();
        let info = TableInfo::new(
            "many",
            vec![
                col("v", ColType::Int64, true),
                col("pad", ColType::String, true),
            ],
            None,
            0,
        );
        let kills = || async {
            let mut k = t.conn().await.unwrap();
            let row: Option<(String, u64)> = k
                .query_first("SHOW GLOBAL STATUS LIKE 'Com_kill'")
                .await
                .unwrap();
            row.unwrap().1
        };
        let kills_before = kills().await;
        let started = std::time::Instant::now();
        let mut rx = t.scan(&info, 100);
        assert_eq!(rx.recv().await.unwrap().unwrap().num_rows(), 100);
        drop(rx);
        // The scan's query ends on the server soon, well before 300,000 rows could be read.
        let mut busy = true;
        for _ in 0..50 {
            let running: Option<u64> = c
                .exec_first(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                     WHERE DB IS NULL AND INFO LIKE 'SELECT `v`, `pad` FROM%'",
                    (),
                )
                .await
                .unwrap();
            if running == Some(0) {
                busy = false;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!busy, "the abandoned scan still runs");
        assert!(kills().await > kills_before, "the query was killed");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(t.count(&info).await.unwrap(), 300_000);
    }

    #[tokio::test]
    async fn concurrent_loaders_neither_deadlock_nor_double_a_unit() {
        let Some((t, _guard)) = server("mysql concurrent loads") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let info = every_type("conc");
        let run = "20261124194000123_abcd";
        let files: Vec<String> = (0..6)
            .map(|u| {
                write_parquet(
                    dir.path(),
                    &format!("{u}.parquet"),
                    &edge_batch(&info, u * 100),
                )
            })
            .collect();
        t.check().await.unwrap();
        t.prepare(&info, run).await.unwrap();
        // Every unit twice, all at once.
        let mut tasks = Vec::new();
        for (u, f) in files.iter().enumerate() {
            for _ in 0..2 {
                let (t, info, f) = (t.clone(), info.clone(), f.clone());
                tasks.push(tokio::spawn(async move {
                    t.load_unit(&info, run, u as u32, &f, &local_io(), 2).await
                }));
            }
        }
        for task in tasks {
            match task.await.unwrap() {
                Ok(d) => assert_eq!(d.rows, 6),
                Err(e) => assert!(e.retryable, "{e}"),
            }
        }
        // Retry what failed (as the scheduler would).
        let done = t.prepare(&info, run).await.unwrap();
        for (u, f) in files.iter().enumerate() {
            if !done.contains(&(u as u32)) {
                t.load_unit(&info, run, u as u32, f, &local_io(), 2)
                    .await
                    .unwrap();
            }
        }
        t.publish(&info, run).await.unwrap();
        assert_eq!(t.count(&info).await.unwrap(), 36);
        let batches: Vec<RecordBatch> = (0..6).map(|u| edge_batch(&info, u * 100)).collect();
        let expect = digest(&batches.iter().collect::<Vec<_>>());
        assert_eq!(read_back(&t, &info, 10).await, expect);
    }

    #[tokio::test]
    async fn wide_table_is_created_and_filled_on_the_server() {
        let Some((t, _guard)) = server("mysql wide table") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let info = wide("wide");
        // Every column at its full 255 characters, 4-byte ones included.
        let arrays: Vec<ArrayRef> = (0..66)
            .map(|i| {
                Arc::new(StringArray::from(vec![
                    format!("{i:03}{}", "x".repeat(252)),
                    "😀".repeat(255),
                ])) as ArrayRef
            })
            .collect();
        let b = RecordBatch::try_new(info.arrow_schema(), arrays).unwrap();
        let f = write_parquet(dir.path(), "w.parquet", &b);
        t.check().await.unwrap();
        let run = "20261124194000123_abcd";
        t.prepare(&info, run).await.unwrap();
        // insert_bytes (2048) is smaller than one row: each row goes alone.
        let d = t
            .load_unit(&info, run, 0, &f, &local_io(), 10)
            .await
            .unwrap();
        t.publish(&info, run).await.unwrap();
        assert_eq!(d.rows, 2);
        assert_eq!(read_back(&t, &info, 10).await, digest(&[&b]));

        // Also the 40 x VARCHAR(63) table that only InnoDB's page limit refuses.
        let narrow = narrow_table("narrow");
        let mut c = t.conn().await.unwrap();
        c.query_drop(t.create_table_sql(&narrow, "narrow", "n").unwrap())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn bad_values_fail_with_table_column_and_value() {
        let Some((t, _guard)) = server("mysql bad values") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let mut info = TableInfo::new(
            "bad",
            vec![
                col("id", ColType::Int32, false),
                col("code", ColType::String, true),
                col("x", ColType::Float64, true),
            ],
            None,
            0,
        );
        info.origin = vec![spec("int"), spec("varchar(3)"), spec("float")];
        t.check().await.unwrap();
        let run = "20261124194000123_abcd";
        t.prepare(&info, run).await.unwrap();

        let too_long = RecordBatch::try_new(
            info.arrow_schema(),
            vec![
                Arc::new(Int32Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["abc", "abcd"])),
                Arc::new(Float64Array::from(vec![1.0, 2.0])),
            ],
        )
        .unwrap();
        let f = write_parquet(dir.path(), "long.parquet", &too_long);
        let e = t
            .load_unit(&info, run, 0, &f, &local_io(), 10)
            .await
            .unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Data, "{e}");
        let s = e.to_string();
        assert!(
            s.contains("table bad") && s.contains("column code") && s.contains("'abcd'"),
            "{s}"
        );
        assert!(!s.contains("root@"), "{s}");

        let nan = RecordBatch::try_new(
            info.arrow_schema(),
            vec![
                Arc::new(Int32Array::from(vec![1])),
                Arc::new(StringArray::from(vec!["a"])),
                Arc::new(Float64Array::from(vec![f64::NAN])),
            ],
        )
        .unwrap();
        let f = write_parquet(dir.path(), "nan.parquet", &nan);
        let e = t
            .load_unit(&info, run, 1, &f, &local_io(), 10)
            .await
            .unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Data);
        assert!(
            e.to_string().contains("column x") && e.to_string().contains("NaN"),
            "{e}"
        );
        // Nothing of either unit stayed.
        let stage = TableInfo {
            name: stage_name("bad", run),
            ..info.clone()
        };
        assert_eq!(t.count(&stage).await.unwrap(), 0);
        assert!(t.prepare(&info, run).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn existing_tables_are_copied_when_not_created() {
        let Some((t, _guard)) = server("mysql create_tables = false") else {
            return;
        };
        let mut cfg = config(t.database());
        cfg.create_tables = false;
        let manual = MysqlTarget::new(&cfg).unwrap();
        let e = manual.check().await.unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Config, "{e}");
        t.check().await.unwrap();
        manual.check().await.unwrap();
        let info = TableInfo::new("m", vec![col("v", ColType::Int64, true)], None, 0);
        let run = "20261124194000123_abcd";
        let e = manual.prepare(&info, run).await.unwrap_err();
        assert!(e.message.contains("does not exist"), "{e}");
        let mut c = t.conn().await.unwrap();
        c.query_drop(format!(
            "CREATE TABLE {} (v BIGINT, extra INT DEFAULT 7) COMMENT 'mine'",
            t.qualified("m")
        ))
        .await
        .unwrap();
        manual.prepare(&info, run).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let b = RecordBatch::try_new(
            info.arrow_schema(),
            vec![Arc::new(Int64Array::from(vec![Some(1), None]))],
        )
        .unwrap();
        let f = write_parquet(dir.path(), "m.parquet", &b);
        manual
            .load_unit(&info, run, 0, &f, &local_io(), 10)
            .await
            .unwrap();
        manual.publish(&info, run).await.unwrap();
        assert!(manual.is_published(&info, run).await.unwrap());
        assert_eq!(read_back(&manual, &info, 10).await, digest(&[&b]));
        let extra: Vec<i64> = c
            .query(format!("SELECT extra FROM {}", t.qualified("m")))
            .await
            .unwrap();
        assert_eq!(extra, vec![7, 7], "the user's own columns are kept");
    }
}
