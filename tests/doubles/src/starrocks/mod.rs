//! A protocol-faithful StarRocks test double: FE HTTP (Stream Load redirect, get_load_state),
//! BE HTTP (Stream Load, error logs) and the FE's MySQL-protocol port, over one in-memory
//! catalog.
//!
//! No StarRocks can be installed on our machines, so the StarRocks loader is proven against
//! this double. It follows `docs/reference/starrocks.md`, and wherever that leaves a
//! detail open it follows StarRocks' own sources (noted at each place). It is cross-checked
//! with clients we did not write (curl, the mariadb CLI, Python's csv module, mysql_async: see
//! tests/it/starrocks_double.rs), so a loader test that passes here exercises the same bytes a
//! real cluster would exchange.
//!
//! The double is std-only plus serde_json. Each server is a std thread accepting on
//! 127.0.0.1:0, with one thread per connection; dropping the [`StarRocksDouble`] stops the
//! listeners and shuts down open connections.
//!
//! Behaviour a test can rely on (beyond the reference):
//! - The Stream Load CSV dialect, NULL (`\N` after unescaping) and VARBINARY (base64) follow
//!   the BE's sources, quirks included: see `csv.rs` and `types.rs`.
//! - Stream Load `strict_mode` is honoured as StarRocks does (csv_scanner.cpp converters with
//!   `invalid_field_as_null = !strict_mode`): off (the default), a value its column's type
//!   refuses (unparseable, out of range, too long) becomes NULL, and the row is filtered only if
//!   the column is NOT NULL; on, the row is filtered. Wrong field counts, invalid UTF-8 rows
//!   and NULL in NOT NULL columns are filtered in both modes.
//! - PRIMARY KEY and UNIQUE KEY tables upsert by key; DUPLICATE KEY tables append.
//! - A Publish Timeout load keeps its rows invisible until its label turns VISIBLE (after the
//!   armed number of get_load_state polls, or [`StarRocksDouble::publish_pending`]).
//! - INSERT from `catalog.ns.table` needs a prior `CREATE EXTERNAL CATALOG catalog ...` (as on
//!   a real cluster) and an installed [`StarRocksDouble::set_catalog_reader`].
//! - Where the double is stricter than StarRocks (documented in `types.rs`, `http.rs` and
//!   `sql.rs`) it refuses rather than guesses, so a loader cannot come to rely on leniency.
//!
//! Submodules: `http` (both HTTP servers), `mysql` (wire protocol), `sql` (the statements),
//! `store` (catalog and transactions), `types` (column types and value checks), `csv` (the
//! Stream Load CSV dialect), `util` (SHA-1, base64, JSON writing, sockets).

mod csv;
mod http;
mod mysql;
mod sql;
mod store;
mod types;
mod util;

/// Benchmarks: validate and count loaded rows but keep none of their cells (process-wide).
/// Only `COUNT(*)` answers correctly afterwards.
pub fn set_discard_rows(on: bool) {
    store::DISCARD_ROWS.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub use types::SrType;

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A stored cell: the bytes a StarRocks client reads over the text protocol, `None` for NULL.
pub type Cell = Option<Vec<u8>>;

/// Reads an external catalog table for `INSERT ... SELECT ... FROM catalog.namespace.table`:
/// `(catalog, namespace, table, columns)` to rows of cells in StarRocks' text forms (VARBINARY
/// as raw bytes), one cell per requested column. For `SELECT *` the columns asked for are the
/// target columns of the INSERT.
pub type CatalogReader =
    Arc<dyn Fn(&str, &str, &str, &[String]) -> Result<Vec<Vec<Cell>>, String> + Send + Sync>;

/// How the double is set up.
#[derive(Clone, Debug)]
pub struct DoubleConfig {
    /// The only user accepted (HTTP Basic auth and MySQL).
    pub user: String,
    /// Its password.
    pub password: String,
    /// HTTP status of the BE's answer to a Stream Load without valid Basic auth (e.g. a client
    /// that dropped Authorization on the redirect). Default 401. A real BE answers 200 with
    /// `{"Status": "Fail", "Message": "no valid Basic authorization"}` (stream_load.cpp
    /// `_on_header`); set 200 to get exactly that. The JSON body is the same either way.
    pub be_auth_failure_status: u16,
    /// Print every HTTP request and SQL statement on stderr.
    pub log_stderr: bool,
}

impl Default for DoubleConfig {
    fn default() -> Self {
        DoubleConfig {
            user: "root".to_string(),
            password: "secret".to_string(),
            be_auth_failure_status: 401,
            log_stderr: false,
        }
    }
}

/// A one-shot fault, consumed by the first load it matches. `label: None` matches any label.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Next BE Stream Load: run it (on success the rows are committed and the label VISIBLE),
    /// then close the socket without any response.
    LoseResponseAfterCommit { label: Option<String> },
    /// Next BE Stream Load: answer Status "Fail" without loading; the label ends ABORTED.
    FailRequest { label: Option<String> },
    /// Next BE Stream Load: on success answer Status "Publish Timeout" with the label
    /// COMMITTED; the rows become visible (label VISIBLE) on the `visible_after_polls`-th
    /// get_load_state poll of that label (0 counts as 1).
    PublishTimeout {
        label: Option<String>,
        visible_after_polls: u32,
    },
    /// Next `INSERT ... WITH LABEL`: apply it, then drop the MySQL connection without a reply.
    LoseInsertResponse { label: Option<String> },
}

impl Fault {
    fn label(&self) -> Option<&str> {
        match self {
            Fault::LoseResponseAfterCommit { label }
            | Fault::FailRequest { label }
            | Fault::PublishTimeout { label, .. }
            | Fault::LoseInsertResponse { label } => label.as_deref(),
        }
    }

    fn matches_label(&self, label: &str) -> bool {
        self.label().is_none_or(|l| l == label)
    }

    fn is_stream_load(&self) -> bool {
        !matches!(self, Fault::LoseInsertResponse { .. })
    }
}

/// Which HTTP port a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortKind {
    Fe,
    Be,
}

/// One HTTP request as the double saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestLog {
    pub port: PortKind,
    pub method: String,
    /// Path and query string as sent.
    pub target: String,
    /// The `label` header (or the generated label of a BE load without one).
    pub label: Option<String>,
    pub auth_present: bool,
    pub auth_valid: bool,
    pub expect_continue: bool,
    /// Body bytes read (0 when the body was not read, as on the FE).
    pub body_len: u64,
    /// `Status` of the JSON answer ("Success", "Fail", "Label Already Exists", "Publish
    /// Timeout", "FAILED", "OK"...), or "Redirect", "Unauthorized", "NotFound", or
    /// "ResponseLost" when a fault dropped the answer.
    pub outcome: String,
    /// HTTP status sent (0: none).
    pub http_status: u16,
}

/// State of a label, as get_load_state reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelState {
    Prepare,
    Prepared,
    Committed,
    Visible,
    Aborted,
    Unknown,
}

impl LabelState {
    pub fn as_str(&self) -> &'static str {
        match self {
            LabelState::Prepare => "PREPARE",
            LabelState::Prepared => "PREPARED",
            LabelState::Committed => "COMMITTED",
            LabelState::Visible => "VISIBLE",
            LabelState::Aborted => "ABORTED",
            LabelState::Unknown => "UNKNOWN",
        }
    }
}

/// Table model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyModel {
    Duplicate,
    Primary,
    Unique,
}

/// A column as declared.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnInfo {
    pub name: String,
    pub ty: SrType,
    /// Type text as StarRocks prints it, e.g. `VARCHAR(30)`, `DECIMAL(10,2)`.
    pub type_text: String,
    pub nullable: bool,
    pub comment: Option<String>,
    pub is_key: bool,
}

/// A table's definition.
#[derive(Clone, Debug, PartialEq)]
pub struct TableInfo {
    pub columns: Vec<ColumnInfo>,
    pub model: KeyModel,
    pub keys: Vec<String>,
    pub comment: String,
    pub partition_column: Option<String>,
    pub ddl: String,
    pub row_count: usize,
}

/// One load job (Stream Load or INSERT) as the double recorded it.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadInfo {
    pub txn_id: i64,
    pub db: String,
    pub label: String,
    pub table: String,
    /// "STREAM_LOAD" or "INSERT".
    pub kind: &'static str,
    pub state: LabelState,
    /// Abort reason ("" unless ABORTED).
    pub reason: String,
    pub loaded_rows: u64,
    pub filtered_rows: u64,
}

/// Result of [`StarRocksDouble::execute`].
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    pub affected_rows: u64,
}

/// What the servers share.
pub(crate) struct Shared {
    pub cfg: DoubleConfig,
    pub state: Mutex<store::State>,
    pub stop: AtomicBool,
    pub conns: Mutex<HashMap<u64, TcpStream>>,
    pub next_conn: AtomicU64,
    pub fe_port: u16,
    pub be_port: u16,
    pub mysql_port: u16,
}

impl Shared {
    /// The state, recovering from a poisoned lock (a panicking test must not wedge servers).
    pub fn lock(&self) -> MutexGuard<'_, store::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Remembers a connection so that dropping the double can shut it down.
    pub fn register(&self, stream: &TcpStream) -> u64 {
        let id = self.next_conn.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(clone) = stream.try_clone() {
            self.conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, clone);
        }
        // Drop sets the flag before it shuts the registered connections down, so one that
        // registered too late for that sees the flag here.
        if self.stopping() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        id
    }

    pub fn unregister(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub fn trace(&self, what: &str) {
        if self.cfg.log_stderr {
            eprintln!("starrocks double: {what}");
        }
    }

    /// Reports an unexpected I/O error of a connection (ordinary disconnects stay quiet).
    pub fn io_error(&self, server: &str, e: &io::Error) {
        use io::ErrorKind::*;
        let quiet = matches!(
            e.kind(),
            UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
        ) || self.stopping();
        if !quiet || self.cfg.log_stderr {
            eprintln!("starrocks double: {server} connection closed: {e}");
        }
    }

    /// `(present, valid)` for an `Authorization: Basic ...` header.
    pub fn check_basic_auth(&self, header: Option<&str>) -> (bool, bool) {
        let Some(h) = header else {
            return (false, false);
        };
        let valid = h
            .trim()
            .strip_prefix("Basic ")
            .or_else(|| h.trim().strip_prefix("basic "))
            .and_then(util::base64_decode)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            })
            .is_some_and(|(u, p)| u == self.cfg.user && p == self.cfg.password);
        (true, valid)
    }

    pub fn record_request(&self, log: RequestLog) {
        self.trace(&format!(
            "{:?} {} {} -> {} {}",
            log.port, log.method, log.target, log.http_status, log.outcome
        ));
        self.lock().requests.push(log);
    }
}

/// The running double. Dropping it stops the servers.
pub struct StarRocksDouble {
    shared: Arc<Shared>,
}

impl StarRocksDouble {
    /// Starts the FE HTTP, BE HTTP and MySQL servers on free loopback ports. Panics if a port
    /// cannot be bound (see [`StarRocksDouble::try_start`]).
    pub fn start(cfg: DoubleConfig) -> StarRocksDouble {
        match StarRocksDouble::try_start(cfg) {
            Ok(d) => d,
            Err(e) => panic!("cannot start the StarRocks double: {e}"),
        }
    }

    pub fn try_start(cfg: DoubleConfig) -> io::Result<StarRocksDouble> {
        let fe = TcpListener::bind("127.0.0.1:0")?;
        let be = TcpListener::bind("127.0.0.1:0")?;
        let my = TcpListener::bind("127.0.0.1:0")?;
        let shared = Arc::new(Shared {
            cfg,
            state: Mutex::new(store::State::new()),
            stop: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            fe_port: fe.local_addr()?.port(),
            be_port: be.local_addr()?.port(),
            mysql_port: my.local_addr()?.port(),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("sr-fe-http".into())
            .spawn(move || http::serve(s, fe, PortKind::Fe))?;
        let s = shared.clone();
        std::thread::Builder::new()
            .name("sr-be-http".into())
            .spawn(move || http::serve(s, be, PortKind::Be))?;
        let s = shared.clone();
        std::thread::Builder::new()
            .name("sr-mysql".into())
            .spawn(move || mysql::serve(s, my))?;
        Ok(StarRocksDouble { shared })
    }

    pub fn fe_http_port(&self) -> u16 {
        self.shared.fe_port
    }

    pub fn be_http_port(&self) -> u16 {
        self.shared.be_port
    }

    pub fn mysql_port(&self) -> u16 {
        self.shared.mysql_port
    }

    /// `http://127.0.0.1:<fe port>`
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.shared.fe_port)
    }

    /// `mysql://user:password@127.0.0.1:<mysql port>`
    pub fn mysql_url(&self) -> String {
        format!(
            "mysql://{}:{}@127.0.0.1:{}",
            self.shared.cfg.user, self.shared.cfg.password, self.shared.mysql_port
        )
    }

    /// Arms a one-shot fault (faults fire in the order armed).
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// Faults armed and not yet fired.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.shared.lock().faults.clone()
    }

    /// Installs the reader of external catalog tables used by `INSERT ... SELECT`.
    pub fn set_catalog_reader(
        &self,
        reader: impl Fn(&str, &str, &str, &[String]) -> Result<Vec<Vec<Cell>>, String>
        + Send
        + Sync
        + 'static,
    ) {
        self.shared.lock().catalog_reader = Some(Arc::new(reader));
    }

    /// Every HTTP request received, FE and BE, in arrival order.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.shared.lock().requests.clone()
    }

    /// Every SQL text received over the MySQL port, in order.
    pub fn queries(&self) -> Vec<String> {
        self.shared.lock().queries.clone()
    }

    /// Databases, sorted.
    pub fn databases(&self) -> Vec<String> {
        self.shared.lock().dbs.keys().cloned().collect()
    }

    /// Tables of a database, sorted (empty if the database does not exist).
    pub fn tables(&self, db: &str) -> Vec<String> {
        self.shared
            .lock()
            .dbs
            .get(db)
            .map(|d| d.tables.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn has_table(&self, db: &str, table: &str) -> bool {
        self.shared.lock().table(db, table).is_some()
    }

    /// A table's definition, or None.
    pub fn table_info(&self, db: &str, table: &str) -> Option<TableInfo> {
        let st = self.shared.lock();
        let t = st.table(db, table)?;
        let keys = t.def.key_indices();
        Some(TableInfo {
            columns: t
                .def
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| ColumnInfo {
                    name: c.name.clone(),
                    ty: c.ty,
                    type_text: c.ty.to_string(),
                    nullable: c.nullable,
                    comment: c.comment.clone(),
                    is_key: keys.contains(&i),
                })
                .collect(),
            model: t.def.model,
            keys: t.def.keys.clone(),
            comment: t.def.comment.clone(),
            partition_column: t.def.partition.clone(),
            ddl: t.def.ddl(db, table),
            row_count: t.rows.len(),
        })
    }

    fn expect_table(&self, db: &str, table: &str) -> TableInfo {
        match self.table_info(db, table) {
            Some(t) => t,
            None => panic!("the StarRocks double has no table {db}.{table}"),
        }
    }

    /// Rows of a table in storage order (panics if the table does not exist).
    pub fn rows(&self, db: &str, table: &str) -> Vec<Vec<Cell>> {
        match self.shared.lock().table(db, table) {
            Some(t) => t.rows.clone(),
            None => panic!("the StarRocks double has no table {db}.{table}"),
        }
    }

    /// Rows as lossy strings with NULL as `\N` (handy in assertions).
    pub fn rows_text(&self, db: &str, table: &str) -> Vec<Vec<String>> {
        self.rows(db, table)
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|c| match c {
                        Some(v) => String::from_utf8_lossy(&v).into_owned(),
                        None => "\\N".to_string(),
                    })
                    .collect()
            })
            .collect()
    }

    /// Columns of a table (panics if the table does not exist).
    pub fn columns(&self, db: &str, table: &str) -> Vec<ColumnInfo> {
        self.expect_table(db, table).columns
    }

    /// The CREATE TABLE text of a table, with its current name (panics if it does not exist).
    pub fn ddl(&self, db: &str, table: &str) -> String {
        self.expect_table(db, table).ddl
    }

    /// The table comment (panics if the table does not exist).
    pub fn table_comment(&self, db: &str, table: &str) -> String {
        self.expect_table(db, table).comment
    }

    /// Sets one cell (a test tampering with the target). Panics on a bad table, row or column.
    pub fn set_cell(&self, db: &str, table: &str, row: usize, column: &str, value: Cell) {
        self.with_rows_mut(db, table, |rows, cols| {
            let c = cols
                .iter()
                .position(|c| c.eq_ignore_ascii_case(column))
                .unwrap_or_else(|| panic!("no column {column} in {db}.{table}"));
            let r = rows
                .get_mut(row)
                .unwrap_or_else(|| panic!("no row {row} in {db}.{table}"));
            r[c] = value;
        });
    }

    /// Gives a test direct access to a table's rows (and its column names), e.g. to delete or
    /// duplicate rows. No validation is applied to what it writes.
    pub fn with_rows_mut<R>(
        &self,
        db: &str,
        table: &str,
        f: impl FnOnce(&mut Vec<Vec<Cell>>, &[String]) -> R,
    ) -> R {
        let mut st = self.shared.lock();
        let Some(t) = st.table_mut(db, table) else {
            panic!("the StarRocks double has no table {db}.{table}")
        };
        let names: Vec<String> = t.def.columns.iter().map(|c| c.name.clone()).collect();
        f(&mut t.rows, &names)
    }

    /// State of a label in a database (no side effect, unlike a get_load_state poll).
    pub fn label_state(&self, db: &str, label: &str) -> LabelState {
        self.shared.lock().label_state(db, label)
    }

    /// Every load job (Stream Load and INSERT), oldest first.
    pub fn loads(&self) -> Vec<LoadInfo> {
        self.shared
            .lock()
            .txns
            .iter()
            .map(|t| LoadInfo {
                txn_id: t.id,
                db: t.db.clone(),
                label: t.label.clone(),
                table: t.table.clone(),
                kind: match t.kind {
                    store::TxnKind::StreamLoad => "STREAM_LOAD",
                    store::TxnKind::Insert => "INSERT",
                },
                state: t.state,
                reason: t.reason.clone(),
                loaded_rows: t.sink_rows,
                filtered_rows: t.filtered_rows,
            })
            .collect()
    }

    /// Publishes every COMMITTED (Publish Timeout) transaction now.
    pub fn publish_pending(&self) {
        let mut st = self.shared.lock();
        let ids: Vec<i64> = st
            .txns
            .iter()
            .filter(|t| t.state == LabelState::Committed)
            .map(|t| t.id)
            .collect();
        for id in ids {
            st.publish(id);
        }
    }

    /// The content of an error log served at `/api/_load_error_log?file=<id>`.
    pub fn error_log(&self, id: &str) -> Option<String> {
        self.shared.lock().error_logs.get(id).cloned()
    }

    /// Registers an external catalog as `CREATE EXTERNAL CATALOG` would (for tests of the
    /// INSERT path that do not go through the loader's catalog creation).
    pub fn add_catalog(&self, name: &str, properties: &[(&str, &str)]) {
        self.shared.lock().catalogs.insert(
            name.to_string(),
            properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }

    /// External catalogs created over SQL, with their properties.
    pub fn catalogs(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.shared
            .lock()
            .catalogs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Runs one SQL statement as the configured user with no current database, as if it came
    /// over the MySQL port (it is logged in [`StarRocksDouble::queries`] too).
    pub fn execute(&self, sql: &str) -> Result<QueryResult, String> {
        let mut session = sql::Session::new(&self.shared.cfg.user, 0);
        self.shared.lock().queries.push(sql.to_string());
        match sql::execute(&self.shared, &mut session, sql) {
            sql::Outcome::Ok { affected, .. } => Ok(QueryResult {
                columns: vec![],
                rows: vec![],
                affected_rows: affected,
            }),
            sql::Outcome::Rows { columns, rows } => Ok(QueryResult {
                columns: columns.into_iter().map(|c| c.name).collect(),
                rows,
                affected_rows: 0,
            }),
            sql::Outcome::Err(e) => Err(format!("ERROR {} ({}): {}", e.code, e.state, e.msg)),
            sql::Outcome::Drop { affected } => Ok(QueryResult {
                columns: vec![],
                rows: vec![],
                affected_rows: affected,
            }),
        }
    }
}

impl Drop for StarRocksDouble {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for port in [
            self.shared.fe_port,
            self.shared.be_port,
            self.shared.mysql_port,
        ] {
            // Wakes the accept loop, which then sees the stop flag.
            let _ = TcpStream::connect(("127.0.0.1", port));
        }
        let conns =
            std::mem::take(&mut *self.shared.conns.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, c) in conns {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}
