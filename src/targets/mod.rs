//! Targets: where tables go after the lake.
//!
//! A closed set like the sources: each target is a folder here implementing [`Kind`], and the
//! registry below maps its `[target]` settings to it. The load reads the data files of the
//! table's committed lake snapshot (never the source again), so a failed load is retried without
//! re-extracting, and a load can run on its own later. Exactly-once rests on what each target
//! can make atomic: SQLite and MySQL commit each data file's rows and its ledger row in one
//! transaction (one loop for both, in [`ledger`]); StarRocks dedups by deterministic Stream Load
//! labels whose outcome the state store records. A full run loads into a staging table that is
//! swapped in at the end, so readers see the old table or the new one, never half.

pub(crate) mod ledger;
pub mod mysql;
pub mod sqlite;
pub mod starrocks;

use std::fmt;
use std::sync::Arc;

use arrow_array::RecordBatch;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::mpsc;

use crate::config::{TableOverride, TargetConfig};
use crate::error::Result;
use crate::model::TableInfo;
use crate::store::LoadRequestRecord;

/// The registry: every target, by its `[target]` settings. A new target adds its folder, its
/// config variant and one line here.
fn registry(cfg: &TargetConfig) -> Entry<'_> {
    match cfg {
        TargetConfig::Sqlite { path } => Entry::of::<sqlite::SqliteTarget>(path),
        TargetConfig::Mysql(c) => Entry::of::<mysql::MysqlTarget>(c),
        TargetConfig::StarRocks(c) => Entry::of::<starrocks::StarRocksTarget>(c),
    }
}

/// The workflow's target, built from its `[target]` settings.
#[derive(Debug, Clone)]
pub struct Target(Arc<dyn Kind>);

/// The workflow's target, built from its `[target]` settings by the registry.
pub fn build(cfg: &TargetConfig) -> Result<Target> {
    (registry(cfg).build)()
}

impl Target {
    /// Where the target is, for messages; never a password.
    pub fn describe_location(&self) -> String {
        self.0.describe_location()
    }

    /// What one unit of a load is, as the load's progress line counts them.
    pub fn unit_name(&self) -> &'static str {
        self.0.unit_name()
    }

    /// Plan-time checks of the tables a run that loads selected.
    pub fn check_tables(&self, tables: &[String]) -> Result<()> {
        self.0.check_tables(tables)
    }

    /// Loads one table's data files: a full refresh (staging table, swapped in at the end), or
    /// (`append`) an incremental run's upserts into the live table. `requests` is the task's
    /// record of the load's requests, for a target whose exactly-once rests on the state store
    /// (StarRocks); `record` writes it durably, and is called before each step.
    pub async fn load(
        &self,
        job: LoadJob<'_>,
        append: bool,
        requests: &mut Vec<LoadRequestRecord>,
        record: &mut RecordRequests<'_>,
    ) -> Result<LoadSummary> {
        self.0.load(job, append, requests, record).await
    }

    /// The published table read back as record batches typed like `info`.
    pub fn scan(
        &self,
        info: &TableInfo,
        batch_rows: usize,
    ) -> BoxStream<'static, Result<RecordBatch>> {
        self.0.scan(info, batch_rows)
    }

    /// Rows in the published table.
    pub async fn count(&self, info: &TableInfo) -> Result<u64> {
        self.0.count(info).await
    }
}

/// Bytes the target's load holds besides batches (request bodies, INSERT statements), from the
/// settings alone: planning sizes load tasks before any target is built.
pub fn load_buffer_bytes(cfg: &TargetConfig) -> u64 {
    registry(cfg).load_buffer_bytes
}

/// Most bytes of rows the target's load reads from a data file at a time, when it bounds them
/// itself (MySQL: about one INSERT statement's worth); `None`: batches of `batch_rows`.
pub fn load_batch_bytes(cfg: &TargetConfig) -> Option<u64> {
    registry(cfg).load_batch_bytes
}

/// What one table's load needs to know.
pub struct LoadJob<'a> {
    pub workflow: &'a str,
    pub run: &'a str,
    pub info: &'a TableInfo,
    pub ov: Option<&'a TableOverride>,
    /// The data files to load, sorted: the committed snapshot's (a full refresh), or those this
    /// run wrote (an incremental run that appends).
    pub files: &'a [String],
    /// Reads the data files (local or object store).
    pub io: &'a iceberg::io::FileIO,
    pub batch_rows: usize,
    /// The task's grant scale: 1.0, or below when its estimate exceeded the whole budget and
    /// it runs alone; a target shrinks its own buffers (INSERT statements) by it.
    pub scale: f64,
    /// The lake namespace, for `load = "lake"`.
    pub lake_namespace: String,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct LoadSummary {
    /// Units (data files; StarRocks: requests or INSERT jobs) that loaded rows in this attempt.
    pub loaded: u32,
    /// Units found already loaded (recorded by an earlier attempt, or a label StarRocks knew).
    pub found: u32,
}

/// Writes the task's record of a load's requests durably.
pub type RecordRequests<'r> = dyn FnMut(&[LoadRequestRecord]) -> Result<()> + Send + 'r;

/// What every target does; [`Target`] holds one.
pub trait Kind: fmt::Debug + Send + Sync + 'static {
    /// Where the target is, for messages; never a password.
    fn describe_location(&self) -> String;

    /// What one unit of a load is, plural: a data file unless the target counts otherwise.
    fn unit_name(&self) -> &'static str {
        "data file(s)"
    }

    /// Plan-time checks of the selected tables (names the target cannot hold apart, say).
    fn check_tables(&self, _tables: &[String]) -> Result<()> {
        Ok(())
    }

    /// See [`Target::load`].
    fn load<'a>(
        &'a self,
        job: LoadJob<'a>,
        append: bool,
        requests: &'a mut Vec<LoadRequestRecord>,
        record: &'a mut RecordRequests<'_>,
    ) -> BoxFuture<'a, Result<LoadSummary>>;

    /// See [`Target::scan`].
    fn scan(&self, info: &TableInfo, batch_rows: usize) -> BoxStream<'static, Result<RecordBatch>>;

    /// See [`Target::count`].
    fn count<'a>(&'a self, info: &'a TableInfo) -> BoxFuture<'a, Result<u64>>;
}

/// How a target is made from its `[target]` settings, for the registry.
pub trait FromConfig: Kind + Sized {
    /// Its settings (the payload of its `TargetConfig` variant).
    type Config: ?Sized;

    /// Reads the settings; no I/O.
    fn from_config(cfg: &Self::Config) -> Result<Self>;

    /// See [`load_buffer_bytes`].
    fn load_buffer_bytes(_cfg: &Self::Config) -> u64 {
        0
    }

    /// See [`load_batch_bytes`].
    fn load_batch_bytes(_cfg: &Self::Config) -> Option<u64> {
        None
    }
}

/// One target of the registry, its settings in hand.
struct Entry<'a> {
    build: Box<dyn FnOnce() -> Result<Target> + 'a>,
    load_buffer_bytes: u64,
    load_batch_bytes: Option<u64>,
}

impl<'a> Entry<'a> {
    fn of<K: FromConfig>(cfg: &'a K::Config) -> Entry<'a> {
        Entry {
            build: Box::new(move || Ok(Target(Arc::new(K::from_config(cfg)?)))),
            load_buffer_bytes: K::load_buffer_bytes(cfg),
            load_batch_bytes: K::load_batch_bytes(cfg),
        }
    }
}

/// A channel of batches as a stream.
pub fn receiver_stream(
    rx: mpsc::Receiver<Result<RecordBatch>>,
) -> BoxStream<'static, Result<RecordBatch>> {
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// `name` as a backquoted identifier (a backquote in it doubled), as MySQL and StarRocks quote
/// names.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}
