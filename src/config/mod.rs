//! Workflow files: `workflows/<name>.toml`, parsed into a validated [`Workflow`].
//!
//! A run moves data into the lake and the target and keeps resumable state, so a
//! mistake in the workflow file must be caught before anything is touched. This
//! module therefore does all checking up front and reports *every* problem at
//! once, each with its file, line, column and dotted key
//! (`workflows/demo.toml:12:1: limits.memory: ...`), instead of failing on the
//! first one or halfway through a run.
//!
//! Loading happens in three steps: the text is parsed with span information
//! ([`toml::de::DeTable`]), `${ENV_VAR}` references in string values are expanded
//! (see [`load`]), and the tree is validated key by key (`validate.rs`).
//! Checks that need the database (do the named tables exist? is a `partition`
//! column a date?) happen elsewhere. Cycles among `after` are found by [`order`],
//! for validation here and again by the planner over the tables a run selects.
//!
//! Day partitioning of lake tables: `[lake] partition = "auto" | "off"` (default
//! auto), `partition_min_rows` (default 1000: only tables with more rows are
//! partitioned), `partition_min_rows_per_day` (default 1000: `auto` leaves tables whose rows
//! are sparser over their days unpartitioned) and `open_partitions` (default 8: partition writers an extract
//! chunk keeps open); `[table.X] partition = "<column>" | "auto" | "off"` and
//! `partition_min_rows` override them per table. The rule that picks the column is
//! in `lake::partition`.
//!
//! `[lake] warehouse` is a local directory or `s3://bucket/prefix`; the latter takes a
//! `[lake.s3]` table (see [`S3Settings`]): `endpoint` (optional, for S3-compatible servers),
//! `region` (default `us-east-1`), `access_key_id` and `secret_access_key` (secrets, by default
//! from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`) and `path_style` (default false).

mod interpolate;
pub mod order;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Smallest accepted `limits.memory`: below this, batches cannot make progress.
pub const MIN_MEMORY: u64 = 16 * 1024 * 1024;

/// A validated workflow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    /// The file stem: `workflows/demo.toml` is workflow `demo`.
    pub name: String,
    /// The file the workflow was loaded from, as given.
    pub path: PathBuf,
    pub description: Option<String>,
    /// A cron expression in the `cron` crate's format (seconds first). A
    /// 5-field crontab line in the file is stored here with `0 ` prepended.
    pub schedule: Option<String>,
    /// The IANA time zone `schedule` is read in (`timezone = "Europe/Paris"`); `None`: UTC.
    pub timezone: Option<String>,
    /// What `dag schedule` does when a run is due while the previous one still runs.
    pub overlap: Overlap,
    /// What `dag schedule` does with fire times missed while it was not running.
    pub catch_up: CatchUp,
    /// What a scheduled run does when the workflow's last run failed.
    pub on_failure: OnFailure,
    /// Seconds finished runs are kept in the state (`history_retention`, default 90 days); the
    /// latest run and an unfinished one are always kept.
    pub history_retention_secs: u64,
    pub source: SourceConfig,
    pub lake: LakeConfig,
    pub target: Option<TargetConfig>,
    pub limits: Limits,
    pub tables: TableSelection,
    /// Per-table overrides from `[table.<NAME>]`, keyed by the name as written.
    /// Use [`Workflow::override_for`] to look one up case-insensitively.
    pub overrides: BTreeMap<String, TableOverride>,
    /// How much verify compares (`verify = "full" | "count"`; tables may override).
    pub verify: VerifyMode,
    /// Which source schema changes a run follows (`schema_changes`; tables may override).
    pub schema_changes: SchemaChanges,
    /// FNV-1a 64 of the file text after `${VAR}` expansion, as 16 hex digits.
    /// Changes whenever the file or a variable it uses changes.
    pub raw_hash: String,
}

impl Workflow {
    /// The override for `table`, matching names case-insensitively like the
    /// `[tables]` globs do.
    pub fn override_for(&self, table: &str) -> Option<&TableOverride> {
        self.overrides
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(table))
            .map(|(_, o)| o)
    }
}

/// `overlap`: a scheduled run is due while the previous run of the workflow still runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Overlap {
    /// Skip that fire time (logged); the next one is taken as usual.
    #[default]
    Skip,
    /// Start once the previous run ends (at most one run waits).
    Queue,
}

/// `catch_up`: fire times that passed while `dag schedule` was not running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CatchUp {
    /// Run once at start-up for all of them together.
    #[default]
    Once,
    /// Ignore them; wait for the next fire time.
    Skip,
}

/// `on_failure`: a scheduled run starts while the workflow's last run failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnFailure {
    /// Start a new run.
    #[default]
    Restart,
    /// First resume the failed run's unfinished tasks (as `dag retry` would, for every table),
    /// then, if that succeeds, nothing more until the next fire time.
    Resume,
}

/// Default of `[lake] retention`: a week of lake snapshots to go back to (Iceberg's own
/// snapshot expiry defaults to five days); `retention = 0` keeps only the current snapshot and
/// the one before it.
pub const DEFAULT_LAKE_RETENTION_SECS: u64 = 7 * 86_400;

/// Default of `history_retention`: 90 days.
pub const DEFAULT_HISTORY_RETENTION_SECS: u64 = 90 * 86_400;

/// Where the tables come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceConfig {
    Sqlite {
        path: PathBuf,
        /// Create a demo database at `path` before the run.
        generate_demo: bool,
        /// Row count of the demo's big table.
        demo_big_rows: u64,
    },
    Mssql(MssqlSettings),
}

/// How to reach a SQL Server database. Either `url` (an ADO.NET connection string such as
/// `Server=tcp:host,1433;Database=WorldZone;User Id=dag;Password=...`) or the separate keys; a
/// separate key given beside `url` wins over the same setting inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MssqlSettings {
    pub url: Option<Secret>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub schema: String,
    pub encrypt: Encrypt,
    /// Accept the server's certificate without checking it (self-signed on-premises servers).
    pub trust_server_certificate: bool,
    /// Longest wait for one round trip of a query (a long extract streams many).
    pub command_timeout_secs: u64,
    /// Longest wait for the connection and login.
    pub connect_timeout_secs: u64,
}

/// TLS on the connection to SQL Server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encrypt {
    /// No TLS at all (the server must allow it).
    Off,
    /// TLS when the server supports it (the login is always encrypted then).
    #[default]
    On,
    /// TLS or no connection.
    Required,
}

/// The Iceberg catalog and warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeConfig {
    pub catalog: CatalogKind,
    /// Catalog database URI (SQL) or base URL (REST); `None` means `sqlite:<state
    /// dir>/catalog.db`.
    pub uri: Option<String>,
    pub catalog_name: String,
    /// A local warehouse directory; `None` means `<state dir>/warehouse`, or the S3 location in
    /// `s3` when that is set.
    pub warehouse: Option<PathBuf>,
    pub namespace: String,
    /// `partition = "auto" | "off"`: whether tables get a day partition by default.
    pub partition: LakePartition,
    /// A table is day-partitioned only when it has more rows than this (`partition_min_rows`).
    pub partition_min_rows: u64,
    /// `partition = "auto"` partitions a table only when its rows fill its days at least this
    /// densely (`partition_min_rows_per_day`): rows over the days between the earliest and the
    /// latest value of the chosen column.
    pub partition_min_rows_per_day: u64,
    /// Most partition writers one extract chunk keeps open at once (`open_partitions`).
    pub open_partitions: usize,
    /// Seconds a lake snapshot is kept after it was committed (`retention`, default
    /// [`DEFAULT_LAKE_RETENTION_SECS`]) before a later commit expires it and deletes the files
    /// only it referenced; the current snapshot and the one before it always stay.
    pub retention_secs: u64,
    /// Set when `warehouse = "s3://bucket/prefix"`: the lake's files live in S3.
    pub s3: Option<S3Settings>,
}

/// An S3 (or S3-compatible) warehouse: `warehouse = "s3://bucket/prefix"` plus `[lake.s3]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/`; may be empty.
    pub prefix: String,
    /// `http(s)://host:port` of an S3-compatible server; `None` means AWS.
    pub endpoint: Option<String>,
    pub region: String,
    /// From `access_key_id` or the environment variable `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Secret,
    /// From `secret_access_key` or the environment variable `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Secret,
    /// Path-style URLs (`endpoint/bucket/key`), as MinIO-like servers need; virtual-host style
    /// (`bucket.endpoint/key`) otherwise.
    pub path_style: bool,
}

impl S3Settings {
    /// The warehouse as a URL: `s3://bucket` or `s3://bucket/prefix`.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// `[lake] partition`: the default for tables without their own `partition`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LakePartition {
    /// Partition by day on a date/timestamp column chosen by rule (see [`PartitionSetting::Auto`]),
    /// when the table's rows fill its days densely enough (`partition_min_rows_per_day`): a
    /// table whose few rows are spread over thousands of days would become thousands of tiny
    /// files, and stays unpartitioned. The default.
    #[default]
    Auto,
    /// Only tables whose own `partition` says so are partitioned.
    Off,
}

/// `[table.<NAME>] partition`: how that table's lake table is partitioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionSetting {
    /// By day of this DATE/DATETIME column (checked against the source when the run plans).
    Column(String),
    /// Choose a column: the first DATE/DATETIME column that is NOT NULL, else whose name looks
    /// like a date (`date`, `time`, `day`, `_at`, `_on`, `_dt`), else the first such column at all.
    Auto,
    /// Never partitioned.
    Off,
}

/// Defaults of the `[lake]` partition keys.
pub const DEFAULT_PARTITION_MIN_ROWS: u64 = 1000;
pub const DEFAULT_PARTITION_MIN_ROWS_PER_DAY: u64 = 1000;
pub const DEFAULT_OPEN_PARTITIONS: usize = 8;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CatalogKind {
    /// Iceberg SQL catalog (`catalog = "sql"`): `uri` is its database.
    #[default]
    Sql,
    /// Iceberg REST catalog (`catalog = "rest"`): `uri` is its base URL.
    Rest(RestCatalogConfig),
}

/// How dag reaches an Iceberg REST catalog besides its `uri`. dag writes the data files itself
/// into `warehouse`; the catalog keeps the tables' metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestCatalogConfig {
    /// The warehouse asked of the catalog's configuration (`catalog_warehouse`): a name or a
    /// location, as the catalog expects; none asked when not set.
    pub warehouse: Option<String>,
    /// A bearer token (`token`).
    pub token: Option<Secret>,
    /// An OAuth2 client credential, `client_id:client_secret` (`credential`), exchanged for a
    /// token at `oauth_uri` (default `<uri>/v1/oauth/tokens`) with `scope` (default `catalog`).
    pub credential: Option<Secret>,
    pub oauth_uri: Option<String>,
    pub scope: Option<String>,
}

/// The database the lake tables are copied into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetConfig {
    Sqlite { path: PathBuf },
    Mysql(MysqlTargetConfig),
    StarRocks(StarRocksConfig),
}

/// A MySQL or MariaDB server (`kind = "mysql"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlTargetConfig {
    /// `mysql://user:password@host:port`; `user`/`password` beside it win over its parts.
    pub url: Secret,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub database: String,
    /// Create the database and tables from the type mapping (else they must exist).
    pub create_tables: bool,
    /// Largest multi-row INSERT statement sent, in bytes.
    pub insert_bytes: u64,
}

/// A StarRocks cluster (`kind = "starrocks"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StarRocksConfig {
    /// The FE's MySQL-protocol address, `mysql://user:password@fe:9030`.
    pub url: Secret,
    /// The FE's HTTP address for Stream Load, e.g. `http://fe:8030`.
    pub http_url: Option<String>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub database: String,
    pub create_tables: bool,
    /// Table model of created tables.
    pub model: TableModel,
    /// `None`: HASH of the key when the table has one, else RANDOM.
    pub distribution: Option<Distribution>,
    pub buckets: Option<u32>,
    pub replication_num: Option<u32>,
    pub load: LoadMode,
    /// The external Iceberg catalog StarRocks reads the lake through (`load = "lake"`).
    pub lake_catalog: Option<String>,
    /// Largest Stream Load body, in bytes.
    pub request_bytes: u64,
    /// `max_filter_ratio` of each load, as written (default "0": any bad row fails the load).
    pub max_filter_ratio: String,
    /// `timeout` of each load, in seconds.
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TableModel {
    /// DUPLICATE KEY: rows kept as loaded.
    #[default]
    Duplicate,
    /// PRIMARY KEY on the source's key (upserts); needs a key.
    Primary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    Hash,
    Random,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoadMode {
    /// Stream Load of CSV read from the lake's data files by dag.
    #[default]
    Stream,
    /// `INSERT INTO ... SELECT` from StarRocks' own external catalog over the lake.
    Lake,
}

/// Which changes of a table's columns since the lake table was last written a run follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SchemaChanges {
    /// New columns and type widenings Iceberg allows (int to long, float to double, a larger
    /// decimal precision) are followed; a dropped or retyped column fails the table.
    #[default]
    Additive,
    /// Any change is followed: the table is replaced with the source's new columns.
    Any,
}

/// How much verify compares. Its name ("full", "count") is what workflows and records say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// Row counts only.
    Count,
    /// Counts and content fingerprints.
    #[default]
    Full,
}

impl VerifyMode {
    pub fn name(self) -> &'static str {
        match self {
            VerifyMode::Full => "full",
            VerifyMode::Count => "count",
        }
    }
}

impl std::fmt::Display for VerifyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// Resource limits of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Memory budget in bytes; `None` leaves the choice to the caller.
    pub memory: Option<u64>,
    pub source_connections: usize,
    pub concurrent_loads: usize,
    /// Retries after the first attempt.
    pub retries: u32,
    pub batch_rows: usize,
    /// Seconds in-flight tasks may take to finish after SIGINT/SIGTERM (`stop_grace`) before
    /// they are interrupted.
    pub stop_grace_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: None,
            source_connections: 2,
            concurrent_loads: 2,
            retries: 3,
            batch_rows: 8192,
            stop_grace_secs: 30,
        }
    }
}

/// Which tables a run moves: those matching an `include` glob and no
/// `exclude` glob, compared case-insensitively.
#[derive(Clone)]
pub struct TableSelection {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    include_set: GlobSet,
    exclude_set: GlobSet,
}

impl TableSelection {
    /// Compiles the globs; the error names the first bad pattern.
    pub fn new(include: Vec<String>, exclude: Vec<String>) -> Result<Self, String> {
        let include_set = glob_set(&include)?;
        let exclude_set = glob_set(&exclude)?;
        Ok(TableSelection {
            include,
            exclude,
            include_set,
            exclude_set,
        })
    }

    pub fn selects(&self, table: &str) -> bool {
        self.include_set.is_match(table) && !self.exclude_set.is_match(table)
    }
}

impl Default for TableSelection {
    /// Every table.
    fn default() -> Self {
        TableSelection {
            include: vec!["*".to_owned()],
            exclude: Vec::new(),
            include_set: glob_set(&["*".to_owned()]).unwrap_or_else(|_| GlobSet::empty()),
            exclude_set: GlobSet::empty(),
        }
    }
}

/// Shows the patterns, not the compiled matchers.
impl fmt::Debug for TableSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableSelection")
            .field("include", &self.include)
            .field("exclude", &self.exclude)
            .finish_non_exhaustive()
    }
}

impl PartialEq for TableSelection {
    fn eq(&self, other: &Self) -> bool {
        self.include == other.include && self.exclude == other.exclude
    }
}

impl Eq for TableSelection {}

/// Compiles one table-name glob the way [`TableSelection`] matches it.
fn compile_glob(pattern: &str) -> Result<globset::Glob, String> {
    GlobBuilder::new(pattern)
        .case_insensitive(true)
        .build()
        .map_err(|e| format!("{pattern:?} is not a valid glob: {}", e.kind()))
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, String> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(compile_glob(pattern)?);
    }
    builder.build().map_err(|e| e.to_string())
}

/// `[table.<NAME>]`: how one table is copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableOverride {
    /// Column to split the table into chunks by.
    pub chunk_key: Option<String>,
    /// Rows per chunk; `None` leaves the choice to the planner.
    pub chunk_rows: Option<u64>,
    /// How the lake table is partitioned by day (`None`: as `[lake] partition` says).
    pub partition: Option<PartitionSetting>,
    /// Row threshold for day partitioning (else `[lake] partition_min_rows`).
    pub partition_min_rows: Option<u64>,
    pub mode: Mode,
    /// Column that only grows, for `mode = "incremental"`.
    pub cursor: Option<String>,
    /// An incremental table is fully refreshed when its last full refresh is older than this
    /// (`full_refresh = "weekly"`, `"daily"`, `"monthly"` or a duration such as `"14d"`);
    /// `None`: only its first run is full.
    pub full_refresh_secs: Option<u64>,
    /// Tables that must finish before this one starts.
    pub after: Vec<String>,
    /// Columns not copied at all (e.g. a type the lake cannot hold).
    pub exclude_columns: Vec<String>,
    /// Columns read as `CAST(col AS <sql type>)` and moved as that type, by column name.
    pub cast: BTreeMap<String, String>,
    /// Connections that may read this table's chunks at once (at most `limits.source_connections`).
    pub connections: Option<usize>,
    /// How much verify compares for this table (else the workflow's `verify`).
    pub verify: Option<VerifyMode>,
    /// Which schema changes of this table a run follows (else the workflow's).
    pub schema_changes: Option<SchemaChanges>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Copy every row.
    #[default]
    Full,
    /// Copy rows whose `cursor` is past the last run's maximum.
    Incremental,
}

/// A value that must not be printed, such as a connection URL with a password.
/// `Debug` and `Display` print `***`; use [`Secret::expose`] to get the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One problem in a workflow file. `line` and `column` are 1-based; both are 0
/// when the problem is not at a place in the text (the file cannot be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted key such as `limits.memory`; empty for syntax and read errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(": ")?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one workflow file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for error in &self.0 {
            writeln!(f, "{error}")?;
        }
        let count = self.0.len();
        let noun = if count == 1 { "problem" } else { "problems" };
        match self.0.first() {
            Some(first) => write!(f, "{count} {noun} in {}", first.file.display()),
            None => write!(f, "{count} {noun}"),
        }
    }
}

impl std::error::Error for ConfigErrors {}

/// Parses a size such as `64MiB`, `2GiB`, `512MB` (decimal), `1.5GiB` or a
/// plain byte count `1048576`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a size (use e.g. 512MiB, 2GiB)");
    let trimmed = s.trim();
    if !trimmed.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(bad());
    }
    let bytes = trimmed
        .parse::<bytesize::ByteSize>()
        .map_err(|_| bad())?
        .as_u64();
    // `bytesize` saturates instead of failing on overflow.
    if bytes == u64::MAX {
        return Err(format!("{s:?} is too large"));
    }
    Ok(bytes)
}

/// Finds `workflows/<name>.toml` under `workflows_dir`, or treats
/// `name_or_path` as a path if it ends with `.toml` or contains a `/`.
/// The error for an unknown name lists the available workflows.
pub fn resolve(name_or_path: &str, workflows_dir: &Path) -> Result<PathBuf, String> {
    if name_or_path.ends_with(".toml") || name_or_path.contains('/') {
        let path = PathBuf::from(name_or_path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("workflow file {} does not exist", path.display()))
        };
    }
    let path = workflows_dir.join(format!("{name_or_path}.toml"));
    if path.is_file() {
        return Ok(path);
    }
    let available = available_workflows(workflows_dir);
    let mut message = format!("no workflow named {name_or_path:?}");
    if available.is_empty() {
        message += &format!(" (no workflows in {})", workflows_dir.display());
    } else {
        message += &format!(" (available: {})", available.join(", "));
        if let Some(close) = validate::closest(name_or_path, available.iter().map(String::as_str)) {
            message += &format!("; did you mean `{close}`?");
        }
    }
    Err(message)
}

/// Names of the `*.toml` files in `dir`, sorted.
fn available_workflows(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|e| e == "toml"))
        .filter_map(|path| Some(path.file_stem()?.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

/// Reads and validates a workflow file, expanding `${VAR}` from the process
/// environment.
///
/// `${VAR}` is expanded in every string value before validation; `$${` stands
/// for a literal `${`. `url` values are kept as [`Secret`]s.
pub fn load(path: &Path) -> Result<Workflow, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read workflow file: {e}"),
        }])
    })?;
    parse(&text, path, &|name| std::env::var(name).ok())
}

/// Validates workflow text read from `path`, looking variables up with `env`.
/// Does no I/O.
pub fn parse(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Workflow, ConfigErrors> {
    let (expanded, _) = interpolate::expand(text, env);
    let parsed = validate::validate(text, path, env)?;
    Ok(Workflow {
        name: path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: path.to_path_buf(),
        description: parsed.description,
        schedule: parsed.schedule,
        timezone: parsed.timezone,
        overlap: parsed.overlap,
        catch_up: parsed.catch_up,
        on_failure: parsed.on_failure,
        history_retention_secs: parsed.history_retention_secs,
        source: parsed.source,
        lake: parsed.lake,
        target: parsed.target,
        limits: parsed.limits,
        tables: parsed.tables,
        overrides: parsed.overrides,
        verify: parsed.verify,
        schema_changes: parsed.schema_changes,
        raw_hash: format!("{:016x}", fnv1a64(expanded.as_bytes())),
    })
}

/// FNV-1a, 64 bit: stable across Rust versions and platforms, unlike `DefaultHasher`.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
