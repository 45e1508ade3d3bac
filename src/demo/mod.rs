//! The embedded demo source database.
//!
//! `dag run demo` has to work on a fresh machine with no database server around, so the demo
//! moves a SQLite file that this module creates on first use: a small "WorldZone" agent-banking
//! sample with one wide table (`AGENTSVES`: 66 columns covering every supported column type, edge
//! values and awkward strings), one big table (`TRANSACTIONS`, sized by the caller), a reference
//! table (`COUNTRIES`) and a table without a primary key (`CURRENCY_RATES`, which also holds a
//! few exact duplicate rows, as a double-loaded batch would). Declared column types and value
//! encodings follow the conventions for embedded SQLite sources: decimals, dates and timestamps
//! are TEXT, booleans are INTEGER 0/1.
//!
//! The content comes from fixed-seed PRNGs (one per table), and the generator avoids anything
//! platform-dependent, so every machine generates identical data and therefore identical row
//! counts and content fingerprints. The file is built under a temporary name next to the target
//! and renamed into place only once complete; a `_dag_demo_meta` table, written in the same
//! transaction as the data, marks it complete and records its version and size.
//!
//! Decimal columns are declared `TEXT DECIMAL(p,s)`, `TEXT NUMERIC(p,s)` and `TEXT MONEY`: a
//! plain `DECIMAL(p,s)` column has NUMERIC affinity, and SQLite would silently turn TEXT such as
//! '12.50' into REAL 12.5 (and a 38-digit decimal into an approximate REAL). The `TEXT` prefix
//! gives TEXT affinity, so the exact text is kept; the SQLite reader maps these declared types to
//! decimal(p,s) / decimal(19,4) like the plain ones.
//!
//! A few rows of `AGENTSVES` are synthetic edge cases rather than realistic data: rows 1 and 2
//! (and every 1009th / 1013th) hold the maximum / minimum value of each type (e.g. `9999-12-31`,
//! `0001-01-01`, `i64::MAX`, MONEY `922337203685477.5807`), row 3 (and every 1019th) is NULL in
//! every nullable column, and row 4 (and every 1021st) has empty strings and an empty blob.
//!
//! Layout: this module makes the file (schema, build, completeness); one module per table
//! draws its rows (`countries`, `agents`, `rates`, `transactions`); `values` holds the PRNG and
//! the text forms of dates, timestamps and decimals they share; `data` holds the fixed lists
//! (countries, places and names, words) and nothing else.

mod agents;
mod countries;
mod data;
mod rates;
mod transactions;
mod values;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, params};

use agents::{AGENT_COLUMNS, fill_agents};
use countries::{COUNTRY_COLUMNS, fill_countries};
use rates::{RATE_COLUMNS, fill_currency_rates};
use transactions::{TXN_COLUMNS, fill_transactions};

/// Default number of rows in `TRANSACTIONS`.
pub const BIG_TABLE_ROWS: u64 = 1_000_000;

/// Number of rows in `AGENTSVES`; their ids are exactly `1..=AGENT_ROWS`.
pub const AGENT_ROWS: i64 = 9_066;

/// Bump whenever the generated content changes, so existing demo databases get rebuilt.
const DEMO_VERSION: &str = "1";

/// Seeds of the per-table PRNGs; changing one changes the data (bump `DEMO_VERSION`).
const SEED_COUNTRIES: u64 = 0x0DA6_0001;
const SEED_AGENTS: u64 = 0x0DA6_0002;
const SEED_RATES: u64 = 0x0DA6_0003;
const SEED_TRANSACTIONS: u64 = 0x0DA6_0004;

/// Temporary files of other runs untouched for this long are leftovers of a crash.
const STALE_TEMP_AGE: Duration = Duration::from_secs(600);

/// Failure to create the demo database; the message names the path.
#[derive(Debug)]
pub struct DemoError(pub String);

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DemoError {}

fn demo_error(path: &Path, what: &str, err: impl fmt::Display) -> DemoError {
    DemoError(format!("demo database {}: {what}: {err}", path.display()))
}

/// Creates the demo database at `path` if it does not exist (or is incomplete); returns
/// `Ok(false)` if a complete one was already there.
///
/// Writes to a temporary file next to `path` and renames it into place at the end, so a crash
/// never leaves a half-made database that looks complete.
pub fn ensure(path: &Path, big_rows: u64) -> Result<bool, DemoError> {
    let file_name = path
        .file_name()
        .ok_or_else(|| demo_error(path, "invalid path", "it has no file name"))?;
    let temp_prefix = format!(".{}.tmp-", file_name.to_string_lossy());
    remove_stale_temps(path, &temp_prefix);
    if is_complete(path, big_rows) {
        return Ok(false);
    }
    let big_rows = i64::try_from(big_rows)
        .map_err(|e| demo_error(path, "too many TRANSACTIONS rows requested", e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| demo_error(path, "cannot create its directory", e))?;
    }
    let temp = path.with_file_name(format!("{temp_prefix}{}", std::process::id()));
    let result = build_file(&temp, big_rows)
        .map_err(|e| demo_error(path, &format!("cannot write {}", temp.display()), e))
        .and_then(|()| {
            fs::rename(&temp, path).map_err(|e| {
                demo_error(
                    path,
                    &format!("cannot rename {} into place", temp.display()),
                    e,
                )
            })
        });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map(|()| true)
}

/// True if `path` holds a demo database of the current version, completely written, with
/// `big_rows` transactions. Anything unreadable counts as incomplete.
fn is_complete(path: &Path, big_rows: u64) -> bool {
    if !path.is_file() {
        return false;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(conn) = Connection::open_with_flags(path, flags) else {
        return false;
    };
    let meta = |key: &str| -> Option<String> {
        conn.query_row(
            "SELECT value FROM _dag_demo_meta WHERE key = ?1",
            [key],
            |row| row.get(0),
        )
        .ok()
    };
    meta("version").as_deref() == Some(DEMO_VERSION)
        && meta("big_rows") == Some(big_rows.to_string())
}

/// Best effort: deletes temporary files that crashed runs left next to the target. Files still
/// being written (by a concurrent run) are recent, so they are left alone.
fn remove_stale_temps(path: &Path, temp_prefix: &str) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(temp_prefix)) else {
            continue;
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_TEMP_AGE));
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Builds the complete database in `temp` (replacing any leftover there) and flushes it to disk.
fn build_file(temp: &Path, big_rows: i64) -> Result<(), Box<dyn std::error::Error>> {
    match fs::remove_file(temp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let mut conn = Connection::open(temp)?;
    conn.execute_batch(
        "PRAGMA journal_mode = OFF;
         PRAGMA synchronous = OFF;
         PRAGMA locking_mode = EXCLUSIVE;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;",
    )?;
    let tables = tables();
    let tx = conn.transaction()?;
    for (name, columns) in &tables {
        tx.execute_batch(&create_table_sql(name, columns))?;
    }
    fill_countries(&tx)?;
    fill_agents(&tx)?;
    fill_currency_rates(&tx)?;
    fill_transactions(&tx, big_rows)?;
    tx.execute_batch("CREATE TABLE _dag_demo_meta (key TEXT PRIMARY KEY, value TEXT)")?;
    tx.execute(
        "INSERT INTO _dag_demo_meta (key, value) VALUES ('version', ?1), ('big_rows', ?2)",
        params![DEMO_VERSION, big_rows.to_string()],
    )?;
    tx.commit()?;
    conn.close().map_err(|(_, e)| e)?;
    // synchronous=OFF skipped every fsync: make the data durable before the rename publishes it.
    fs::File::open(temp)?.sync_all()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

/// A column: name and declaration (type, then constraints).
type ColumnDecl = (&'static str, &'static str);

/// Every data table with its columns, in creation order.
fn tables() -> Vec<(&'static str, Vec<ColumnDecl>)> {
    let agents = AGENT_COLUMNS.iter().map(|c| (c.name, c.decl)).collect();
    vec![
        ("COUNTRIES", COUNTRY_COLUMNS.to_vec()),
        ("AGENTSVES", agents),
        ("CURRENCY_RATES", RATE_COLUMNS.to_vec()),
        ("TRANSACTIONS", TXN_COLUMNS.to_vec()),
    ]
}

/// The `CREATE TABLE` statement of `table`.
fn create_table_sql(table: &str, columns: &[ColumnDecl]) -> String {
    let columns: Vec<String> = columns
        .iter()
        .map(|(name, decl)| format!("    {name} {decl}"))
        .collect();
    format!("CREATE TABLE {table} (\n{}\n)", columns.join(",\n"))
}

#[cfg(test)]
mod tests;
