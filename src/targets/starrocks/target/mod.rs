//! The StarRocks target: DDL over the MySQL protocol, data over Stream Load (or, in
//! `load = "lake"` mode, StarRocks pulling the rows from its own external Iceberg catalog), and a
//! staging table swapped in at the end of a full refresh.
//!
//! Exactly-once across crashes rests on three facts:
//! - every request carries a deterministic label (workflow, run, table, request number), and
//!   StarRocks refuses a second load under a label it has seen, answering with its state;
//! - the rows of request n are fixed before it is sent: the task records `(label, from, to)` as
//!   *pending* in the state store first, so a resumed load re-sends exactly those rows under that
//!   label, whatever the configured request size is by then;
//! - the staging table carries the comment `dag run <run>`; after `ALTER TABLE t SWAP WITH stage`
//!   the real table carries it, which is how a resumed publish knows the swap already happened
//!   (swapping twice would put the old rows back).
//!
//! Labels are kept by StarRocks for a limited time and number, so the outcome of every request is
//! recorded in our own state as soon as it is known, and never looked up again once recorded.
//!
//! An incremental run that appends ([`StarRocksTarget::load_append`]) Stream Loads the run's
//! data files straight into the live table under the same labels and request records, with no
//! staging table and no swap: a PRIMARY KEY table upserts each row by its key on load, and a
//! keyless (DUPLICATE KEY) table appends, exactly once thanks to the labels. Tables of
//! incremental workflow tables with a key are therefore created as PRIMARY KEY whatever `model`
//! says, and an existing one of another model is refused before anything is sent.

mod requests;

use std::time::Duration;

use arrow_array::RecordBatch;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use mysql_async::prelude::Queryable;
use tokio::sync::mpsc;

use super::ddl::{self, DdlOptions, quote_ident as quote, quote_str as literal};
use super::names;
use super::stream_load::StreamLoadClient;
use crate::config::{LoadMode, StarRocksConfig, TableOverride};
use crate::error::{Error, Result};
use crate::model::TableInfo;
use crate::store::LoadRequestRecord;
use crate::targets::{FromConfig, Kind, LoadJob, LoadSummary, RecordRequests, receiver_stream};

#[derive(Clone)]
pub struct StarRocksTarget {
    cfg: StarRocksConfig,
    pool: mysql_async::Pool,
    http: Option<StreamLoadClient>,
    /// `host:port` of the FE's MySQL port, for messages (never the password).
    shown: String,
}

impl std::fmt::Debug for StarRocksTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StarRocksTarget")
            .field("at", &self.shown)
            .field("database", &self.cfg.database)
            .finish_non_exhaustive()
    }
}

impl Kind for StarRocksTarget {
    fn describe_location(&self) -> String {
        StarRocksTarget::describe_location(self)
    }

    fn unit_name(&self) -> &'static str {
        "request(s)"
    }

    /// Two source tables must not land in one StarRocks table.
    fn check_tables(&self, tables: &[String]) -> Result<()> {
        names::table_names(tables).map(drop)
    }

    fn load<'a>(
        &'a self,
        job: LoadJob<'a>,
        append: bool,
        requests: &'a mut Vec<LoadRequestRecord>,
        record: &'a mut RecordRequests<'_>,
    ) -> BoxFuture<'a, Result<LoadSummary>> {
        Box::pin(async move {
            if !append {
                return StarRocksTarget::load(self, job, requests, record).await;
            }
            let info = job.info;
            let summary = self.load_append(job, requests, record).await?;
            crate::fault::point(&format!("after_upsert:{}", info.name));
            Ok(summary)
        })
    }

    fn scan(&self, info: &TableInfo, batch_rows: usize) -> BoxStream<'static, Result<RecordBatch>> {
        receiver_stream(StarRocksTarget::scan(self, info, batch_rows))
    }

    fn count<'a>(&'a self, info: &'a TableInfo) -> BoxFuture<'a, Result<u64>> {
        Box::pin(StarRocksTarget::count(self, info))
    }
}

impl FromConfig for StarRocksTarget {
    type Config = StarRocksConfig;

    fn from_config(cfg: &StarRocksConfig) -> Result<Self> {
        StarRocksTarget::new(cfg)
    }

    /// A Stream Load holds no body: the chunks of the one being sent (a few hundred KiB) and a
    /// second Parquet reader's batch (the pass measuring the next request), counted as 4 MiB.
    /// `load = "lake"` sends none.
    fn load_buffer_bytes(cfg: &StarRocksConfig) -> u64 {
        if cfg.load == LoadMode::Stream {
            4 << 20
        } else {
            0
        }
    }

    /// A Stream Load reads batches of [`requests::CSV_BATCH_BYTES`]; `load = "lake"` reads none
    /// itself.
    fn load_batch_bytes(cfg: &StarRocksConfig) -> Option<u64> {
        (cfg.load == LoadMode::Stream).then_some(requests::CSV_BATCH_BYTES)
    }
}

fn comment(run: &str) -> String {
    format!("dag run {run}")
}

fn my_err(what: &str, e: mysql_async::Error) -> Error {
    use mysql_async::Error as E;
    match &e {
        E::Io(_) | E::Driver(_) => Error::unavailable(format!("StarRocks: {what}: {e}")),
        E::Server(s) => Error::data(format!(
            "StarRocks: {what}: {} (error {})",
            s.message, s.code
        )),
        _ => Error::unavailable(format!("StarRocks: {what}: {e}")),
    }
}

impl StarRocksTarget {
    pub fn new(cfg: &StarRocksConfig) -> Result<Self> {
        let opts = mysql_async::Opts::from_url(cfg.url.expose()).map_err(|e| {
            // The parse error may quote the URL: say what is wrong without it.
            let kind = match e {
                mysql_async::UrlError::UnsupportedScheme { .. } => "it must start with mysql://",
                _ => "it is not a valid mysql://user:password@host:port URL",
            };
            Error::config(format!("target.url: {kind}"))
        })?;
        let shown = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port());
        let user = cfg
            .user
            .clone()
            .or_else(|| opts.user().map(str::to_string))
            .unwrap_or_else(|| "root".to_string());
        let password = cfg
            .password
            .as_ref()
            .map(|p| p.expose().to_string())
            .or_else(|| opts.pass().map(str::to_string))
            .unwrap_or_default();
        let builder = mysql_async::OptsBuilder::from_opts(opts)
            .user(Some(user.clone()))
            .pass(Some(password.clone()))
            .db_name(None::<String>)
            .prefer_socket(false)
            .pool_opts(
                mysql_async::PoolOpts::default()
                    .with_constraints(mysql_async::PoolConstraints::new(0, 4).unwrap_or_default()),
            );
        let http = match &cfg.http_url {
            Some(u) => Some(StreamLoadClient::new(
                u,
                &user,
                &password,
                Duration::from_secs(cfg.timeout_secs + 60),
            )?),
            None => None,
        };
        Ok(StarRocksTarget {
            cfg: cfg.clone(),
            pool: mysql_async::Pool::new(builder),
            http,
            shown,
        })
    }

    pub fn describe_location(&self) -> String {
        format!("starrocks {}/{}", self.shown, self.cfg.database)
    }

    async fn conn(&self) -> Result<mysql_async::Conn> {
        self.pool
            .get_conn()
            .await
            .map_err(|e| my_err(&format!("cannot connect to {}", self.shown), e))
    }

    async fn exec(&self, c: &mut mysql_async::Conn, sql: &str) -> Result<()> {
        tracing::debug!(sql, "starrocks");
        c.query_drop(sql)
            .await
            .map_err(|e| my_err(sql_head(sql), e))
    }

    /// Names and comments of the database's tables.
    async fn tables(&self, c: &mut mysql_async::Conn) -> Result<Vec<(String, String)>> {
        let sql = format!(
            "SELECT TABLE_NAME, TABLE_COMMENT FROM information_schema.tables WHERE TABLE_SCHEMA = {}",
            literal(&self.cfg.database)
        );
        let rows: Vec<(String, Option<String>)> = c
            .query(&sql)
            .await
            .map_err(|e| my_err("listing tables", e))?;
        Ok(rows
            .into_iter()
            .map(|(n, cmt)| (n, cmt.unwrap_or_default()))
            .collect())
    }

    /// Loads one table for a full refresh: staging table, its rows, swap.
    pub async fn load(
        &self,
        job: LoadJob<'_>,
        requests: &mut Vec<LoadRequestRecord>,
        mut record: impl FnMut(&[LoadRequestRecord]) -> Result<()>,
    ) -> Result<LoadSummary> {
        let info = job.info;
        let table = names::sanitize(&info.name);
        let stage = names::staging_table(&table, job.run);
        let db = &self.cfg.database;
        let mut c = self.conn().await?;
        let existing = self.tables(&mut c).await?;
        if is_published(&existing, &table, job.run) {
            self.cleanup(&mut c, &table, &existing).await?;
            return Ok(LoadSummary {
                loaded: 0,
                found: requests.len() as u32,
            });
        }
        if self.cfg.create_tables {
            self.create(&mut c, &stage, &job).await?;
        } else {
            if !existing.iter().any(|(n, _)| *n == table) {
                return Err(Error::config(format!(
                    "StarRocks table {db}.{table} does not exist and target.create_tables is false"
                )));
            }
            // The staging copy takes the table's model, and later incremental runs need it to
            // upsert: refuse now rather than after a whole refresh.
            self.check_upsertable(&mut c, &table, info).await?;
            self.exec(&mut c, &ddl::create_like(db, &stage, &table))
                .await?;
            self.exec(&mut c, &ddl::set_comment(db, &stage, &comment(job.run)))
                .await?;
        }
        drop(c);
        let summary = match self.cfg.load {
            LoadMode::Stream => self.stream(&job, &stage, requests, &mut record).await?,
            LoadMode::Lake => {
                self.insert_from_lake(&job, &stage, requests, &mut record)
                    .await?
            }
        };
        crate::fault::point(&format!("before_publish:{}", info.name));
        self.publish(&table, &stage, job.run).await?;
        Ok(summary)
    }

    /// `CREATE DATABASE` and `CREATE TABLE IF NOT EXISTS` of `name` for the job's table, with
    /// the run's comment.
    async fn create(&self, c: &mut mysql_async::Conn, name: &str, job: &LoadJob<'_>) -> Result<()> {
        let db = &self.cfg.database;
        let info = job.info;
        self.exec(c, &ddl::create_database(db)).await?;
        let model = ddl::model_for(self.cfg.model, info);
        let opts = DdlOptions {
            model,
            distribution: self.cfg.distribution,
            buckets: self.cfg.buckets,
            replication_num: self.cfg.replication_num,
            partition: starrocks_partition(model, info, job.ov),
            comment: comment(job.run),
        };
        let sql = ddl::create_table(db, name, info, &opts).map_err(|e| {
            let e = if model != self.cfg.model {
                e.context(
                    "an incremental table with a key is created as a StarRocks PRIMARY KEY \
                     table, so that its runs can upsert",
                )
            } else {
                e
            };
            e.context(format!("table {}", info.name))
        })?;
        self.exec(c, &sql).await
    }

    /// For a keyed table of an incremental workflow table: fails unless the StarRocks table
    /// `name` is a PRIMARY KEY table (only it upserts on load; a DUPLICATE KEY table would keep
    /// every version of a row). Other tables pass.
    async fn check_upsertable(
        &self,
        c: &mut mysql_async::Conn,
        name: &str,
        info: &TableInfo,
    ) -> Result<()> {
        if ddl::model_for(self.cfg.model, info) != crate::config::TableModel::Primary
            || info.incremental.is_none()
        {
            return Ok(());
        }
        let db = &self.cfg.database;
        let sql = format!(
            "SELECT COLUMN_NAME, COLUMN_KEY FROM information_schema.columns \
             WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {}",
            literal(db),
            literal(name)
        );
        let rows: Vec<(String, Option<String>)> = c
            .query(&sql)
            .await
            .map_err(|e| my_err("reading the table's key columns", e))?;
        let keys: Vec<&str> = rows
            .iter()
            .filter_map(|(_, k)| k.as_deref())
            .filter(|k| !k.is_empty())
            .collect();
        if keys.contains(&"PRI") {
            return Ok(());
        }
        let model = match keys.first().copied() {
            Some("DUP") => "a DUPLICATE KEY table",
            Some("UNI") => "a UNIQUE KEY table",
            Some("AGG") => "an AGGREGATE table",
            _ => "not a PRIMARY KEY table",
        };
        let fix = if self.cfg.create_tables {
            "run a full refresh of the table, which creates it again as PRIMARY KEY (dropping \
             it is not enough: an incremental run loads only its own rows)"
        } else {
            "create it as a PRIMARY KEY table on the source's key (target.create_tables is false)"
        };
        Err(Error::config(format!(
            "StarRocks table {db}.{name} is {model}, but table {} is incremental with the key \
             ({}): its runs upsert by that key, which only a PRIMARY KEY table does; {fix}",
            info.name,
            info.primary_key.join(", ")
        )))
    }

    /// Loads the rows of an incremental run that appends: Stream Load of the run's own data
    /// files (`job.files`) straight into the live table, which is created if missing. A PRIMARY
    /// KEY table upserts them by key; a keyless table appends them, once each by the labels.
    /// Resumable like [`Self::load`]: `requests` is the same ledger of labels and rows.
    pub async fn load_append(
        &self,
        job: LoadJob<'_>,
        requests: &mut Vec<LoadRequestRecord>,
        mut record: impl FnMut(&[LoadRequestRecord]) -> Result<()>,
    ) -> Result<LoadSummary> {
        let info = job.info;
        if self.cfg.load == LoadMode::Lake {
            return Err(Error::config(format!(
                "table {}: an incremental run cannot load with target.load = \"lake\": \
                 StarRocks would read the whole lake table, not only this run's rows; use \
                 load = \"stream\" for workflows with incremental tables",
                info.name
            )));
        }
        let table = names::sanitize(&info.name);
        let db = &self.cfg.database;
        let mut c = self.conn().await?;
        let existing = self.tables(&mut c).await?;
        if !existing.iter().any(|(n, _)| *n == table) {
            if !self.cfg.create_tables {
                return Err(Error::config(format!(
                    "StarRocks table {db}.{table} does not exist and target.create_tables is false"
                )));
            }
            self.create(&mut c, &table, &job).await?;
        }
        self.check_upsertable(&mut c, &table, info).await?;
        drop(c);
        self.stream(&job, &table, requests, &mut record).await
    }

    /// Swaps the staging table in (or renames it when the table is new); a repeated call after
    /// the swap only cleans up.
    async fn publish(&self, table: &str, stage: &str, run: &str) -> Result<()> {
        let db = &self.cfg.database;
        let mut c = self.conn().await?;
        let existing = self.tables(&mut c).await?;
        if !is_published(&existing, table, run) {
            if existing.iter().any(|(n, _)| n == table) {
                self.exec(&mut c, &ddl::swap(db, table, stage)).await?;
                crate::fault::point(&format!("after_swap:{table}"));
            } else {
                self.exec(&mut c, &ddl::rename(db, stage, table)).await?;
            }
        }
        let existing = self.tables(&mut c).await?;
        self.cleanup(&mut c, table, &existing).await
    }

    /// Drops staging tables of this table left by earlier runs (and the old rows after a swap).
    async fn cleanup(
        &self,
        c: &mut mysql_async::Conn,
        table: &str,
        existing: &[(String, String)],
    ) -> Result<()> {
        let prefix = names::staging_prefix(table);
        for (name, _) in existing {
            if name != table && name.starts_with(&prefix) {
                self.exec(c, &ddl::drop_table(&self.cfg.database, name))
                    .await?;
            }
        }
        Ok(())
    }

    /// The published table read back over the MySQL protocol (text results), typed like `info`.
    pub fn scan(&self, info: &TableInfo, batch_rows: usize) -> mpsc::Receiver<Result<RecordBatch>> {
        let sql = names::column_names(info).map(|cols| {
            format!(
                "SELECT {} FROM {}.{}",
                cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", "),
                quote(&self.cfg.database),
                quote(&names::sanitize(&info.name))
            )
        });
        match sql {
            Ok(sql) => crate::targets::mysql::scan::scan(
                self.pool.clone(),
                sql,
                info.clone(),
                batch_rows,
                false,
            ),
            Err(e) => {
                let (tx, rx) = mpsc::channel(1);
                let _ = tx.try_send(Err(e));
                rx
            }
        }
    }

    pub async fn count(&self, info: &TableInfo) -> Result<u64> {
        let sql = format!(
            "SELECT COUNT(*) FROM {}.{}",
            quote(&self.cfg.database),
            quote(&names::sanitize(&info.name))
        );
        let mut c = self.conn().await?;
        let n: Option<u64> = c
            .query_first(&sql)
            .await
            .map_err(|e| my_err("counting rows", e))?;
        Ok(n.unwrap_or(0))
    }
}

fn is_published(existing: &[(String, String)], table: &str, run: &str) -> bool {
    existing
        .iter()
        .any(|(n, cmt)| n == table && *cmt == comment(run))
}

/// The first words of a statement, for error messages.
fn sql_head(sql: &str) -> &str {
    let end = sql
        .char_indices()
        .filter(|(_, c)| *c == '(')
        .map(|(i, _)| i)
        .next()
        .unwrap_or(sql.len())
        .min(120);
    sql.get(..end).unwrap_or(sql).trim_end()
}

/// The StarRocks table's day partition column: the one the workflow names for the table, else the
/// lake's (recorded) partition when StarRocks can take it (a PRIMARY KEY table must have its
/// partition column in the key, so an automatically chosen column outside the key is left out
/// rather than failing the load).
fn starrocks_partition(
    model: crate::config::TableModel,
    info: &TableInfo,
    ov: Option<&TableOverride>,
) -> Option<String> {
    if let Some(crate::config::PartitionSetting::Column(c)) = ov.and_then(|o| o.partition.as_ref())
    {
        return Some(c.clone());
    }
    info.partition.clone().filter(|p| {
        model != crate::config::TableModel::Primary
            || info.primary_key.iter().any(|k| k.eq_ignore_ascii_case(p))
    })
}
