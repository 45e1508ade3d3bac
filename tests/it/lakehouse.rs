//! The lake as other engines see it: phases (`--lake-only`, then `--from load` without the
//! source), the PostgreSQL catalog read by pyiceberg and DuckDB, full refreshes watched by a
//! reader that polls the table while `dag` replaces it, and the table's identity and history
//! across refreshes (one table-uuid, every version readable by snapshot id, retention).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::mssql::{server, workflow};
use crate::support::*;
use crate::tds::fixtures;

/// `--lake-only`, then `--from load`: the second phase loads and verifies the target from the
/// lake, and the SQL Server (the TDS test server) sees no connection and no query at all.
#[test]
fn from_load_never_contacts_the_source() {
    let srv = server(vec![
        fixtures::wide_table("AGENTSVES", 3_000),
        fixtures::types_table(),
    ]);
    let env = Env::new();
    let target = env.path().join("target.db");
    env.workflow(
        "wz",
        &workflow(
            srv.port(),
            "Pa55word!",
            &format!(
                "[target]\nkind = \"sqlite\"\npath = \"{}\"\n\n[table.AGENTSVES]\nchunk_rows = 1000\n",
                target.display()
            ),
        ),
    );
    // Nothing published yet: a clear refusal, before any run is recorded.
    let r = env.dag(&["run", "wz", "--from", "load"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(
        r.stderr.contains("run the workflow without --from first"),
        "{r:?}"
    );

    let r = env.dag(&["run", "wz", "--lake-only"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!target.exists(), "a lake-only run wrote the target");
    let (conns, queries) = (srv.connections(), srv.queries().len());
    assert!(conns > 0 && queries > 0);

    let r = env.dag(&["run", "wz", "--from", "load"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(
        (srv.connections(), srv.queries().len()),
        (conns, queries),
        "the load phase contacted the source: {:?}",
        &srv.queries()[queries..]
    );
    let (run, tasks) = env.status("wz");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(tasks.len(), 8, "{tasks:?}");
    for t in ["AGENTSVES", "ALLTYPES"] {
        let ex = env.task("wz", t, "extract");
        assert!(
            ex["outputs"]["note"]
                .as_str()
                .is_some_and(|n| n.contains("taken from the lake")),
            "{ex}"
        );
        let v = env.task("wz", t, "verify");
        assert_eq!(v["status"], "succeeded", "{v}");
        assert_eq!(v["outputs"]["verify_mode"], "full");
        assert_eq!(v["outputs"]["target"], v["outputs"]["digest"], "{v}");
        assert_eq!(v["outputs"]["lake"], v["outputs"]["digest"], "{v}");
    }
    let (rows, keys) = count_distinct(&target, "AGENTSVES", "ID");
    assert_eq!((rows, keys), (3_000, 3_000));

    // A table retried in that run can only go back to its load, never to the source.
    let r = env.dag(&["retry", "AGENTSVES.extract", "--workflow", "wz"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("from the lake"), "{r:?}");
}

/// A fresh database on the machine's PostgreSQL (trust auth), dropped on drop; a catalog that
/// the readers open through psycopg2.
pub(crate) struct PgDb {
    name: String,
}

impl PgDb {
    /// `None` when PostgreSQL, `psql` or psycopg2 is missing, after saying so (see [`require`]).
    pub(crate) fn create() -> Option<PgDb> {
        if !require(python_can(
            "psycopg2, the readers' PostgreSQL driver",
            "import psycopg2",
        )) {
            return None;
        }
        let ok = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-Atc", "SELECT 1"])
            .output()
            .map_err(|e| format!("psql not runnable ({e}); apt-get install postgresql-client"))
            .and_then(|o| {
                if o.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "PostgreSQL at 127.0.0.1:5432 (user postgres, trust) not reachable: {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    ))
                }
            });
        if !require(ok) {
            return None;
        }
        let name = format!("dag_it_{}_{}", std::process::id(), fastrand::u32(..));
        psql("postgres", &format!("CREATE DATABASE {name}"));
        Some(PgDb { name })
    }

    pub(crate) fn uri(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-qc"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

fn psql(db: &str, sql: &str) -> String {
    let o = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-Atc", sql])
        .output()
        .expect("psql");
    assert!(
        o.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// pyiceberg and DuckDB over the lake of `env` with catalog `catalog` (file or URI).
pub(crate) fn check_with_catalog(
    env: &Env,
    source: &Path,
    catalog: &str,
    tables: Option<&str>,
) -> String {
    let mut check = env
        .lake_check("worldzone")
        .catalog(catalog)
        .arg("--source")
        .arg(source);
    if let Some(t) = tables {
        check = check.arg("--tables").arg(t);
    }
    check.run()
}

/// `check_with_catalog` on the workflow's own SQLite catalog (`<state>/catalog.db`).
fn check_local_catalog(env: &Env, source: &Path, tables: Option<&str>) -> String {
    check_with_catalog(
        env,
        source,
        &env.state().join("catalog.db").to_string_lossy(),
        tables,
    )
}

/// The SQL catalog on PostgreSQL: two full refreshes in a row, read by pyiceberg and DuckDB
/// through the same catalog database, with the source's counts and fingerprints.
#[test]
fn postgres_catalog_read_by_independent_readers() {
    if !require(python_readers()) {
        return;
    }
    let Some(db) = PgDb::create() else { return };
    let env = Env::new();
    let source = small_demo_source();
    let wf = small_workflow(&source).replace(
        "[lake]\nnamespace = \"worldzone\"",
        &format!("[lake]\nnamespace = \"worldzone\"\nuri = \"{}\"", db.uri()),
    );
    assert!(wf.contains("postgres://"), "{wf}");
    env.workflow("pg", &wf);
    for round in 1..=2 {
        let r = env.dag(&["run", "pg"]);
        assert_eq!(r.code, Some(0), "round {round}: {r:?}");
    }
    assert!(
        !env.state().join("catalog.db").exists(),
        "a SQLite catalog was made too"
    );
    let rows = psql(
        &db.name,
        "SELECT table_name FROM iceberg_tables WHERE catalog_name = 'dag' \
         AND table_namespace = 'worldzone' ORDER BY 1",
    );
    assert_eq!(
        rows.lines().collect::<Vec<_>>(),
        ["AGENTSVES", "COUNTRIES", "CURRENCY_RATES", "TRANSACTIONS"]
    );
    // Staging entries are dropped when their run publishes.
    let staged = psql(
        &db.name,
        "SELECT count(*) FROM iceberg_tables WHERE table_namespace LIKE '%_dag_staging'",
    );
    assert_eq!(staged.trim(), "0");
    let out = check_with_catalog(&env, &source, &db.uri(), None);
    assert!(out.contains("all 4 tables match the source"), "{out}");
    let target = env.state().join("target.db");
    assert_eq!(
        count_distinct(&target, "TRANSACTIONS", "TXN_ID"),
        (30_000, 30_000)
    );
}

/// One of the small readers of `tests/readers` on `table` of the workflow's own catalog,
/// reading `column`.
fn reader(env: &Env, script: &str, table: &str, column: &str) -> Command {
    let mut c = python_command();
    c.arg(repo().join("tests/readers").join(script))
        .arg("--catalog")
        .arg(env.state().join("catalog.db"))
        .arg("--warehouse")
        .arg(env.state().join("warehouse"))
        .args([
            "--namespace",
            "worldzone",
            "--table",
            table,
            "--column",
            column,
        ]);
    c
}

/// A copy of the small demo that the test may change.
pub(crate) fn own_demo(env: &Env) -> PathBuf {
    let copy = env.path().join("source.db");
    std::fs::copy(small_demo_source(), &copy).unwrap();
    copy
}

/// Rows of the source's TRANSACTIONS and the sum of their TXN_IDs: two versions with the same
/// row count but other rows tell apart.
pub(crate) fn sums(source: &Path) -> (i64, i64) {
    let c = rusqlite::Connection::open(source).unwrap();
    c.query_row(
        "SELECT COUNT(*), COALESCE(SUM(TXN_ID), 0) FROM TRANSACTIONS",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

pub(crate) fn keep_transactions(source: &Path, below: i64) {
    let c = rusqlite::Connection::open(source).unwrap();
    c.execute("DELETE FROM TRANSACTIONS WHERE TXN_ID >= ?1", [below])
        .unwrap();
}

/// Two full refreshes in a row while pyiceberg polls the table: every poll sees one whole
/// version (the old or the new row count, never a mix, an empty table or an error), and the table
/// ends with exactly the source's rows.
#[test]
fn readers_see_old_or_new_during_refreshes() {
    if !require(python_readers()) {
        return;
    }
    let env = Env::new();
    let source = own_demo(&env);
    env.workflow("wz", &small_workflow(&source));
    let r = env.dag(&["run", "wz", "--lake-only", "--tables", "TRANSACTIONS"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let first = count_distinct(&source, "TRANSACTIONS", "TXN_ID").0;

    let stop = env.path().join("stop");
    let poller = reader(&env, "poll_table.py", "TRANSACTIONS", "TXN_ID")
        .arg("--stop")
        .arg(&stop)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start poll_table.py");
    std::thread::sleep(std::time::Duration::from_secs(2));

    let mut expected = vec![first];
    for below in [25_001, 12_001] {
        keep_transactions(&source, below);
        let r = env.dag(&["run", "wz", "--lake-only", "--tables", "TRANSACTIONS"]);
        assert_eq!(r.code, Some(0), "{r:?}");
        expected.push(count_distinct(&source, "TRANSACTIONS", "TXN_ID").0);
        std::thread::sleep(std::time::Duration::from_millis(700));
    }
    std::fs::write(&stop, "").unwrap();
    let out = poller.wait_with_output().unwrap();
    let ran: Ran = out.into();
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let seen: serde_json::Value = serde_json::from_str(ran.stdout.trim()).expect("poller JSON");
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
    let counts: Vec<i64> = seen["counts"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .collect();
    assert!(
        counts.iter().all(|c| expected.contains(c)),
        "a reader saw {counts:?}, versions were {expected:?}: {seen}"
    );
    assert!(
        counts.len() >= 2,
        "the poller saw no refresh happen: {seen}"
    );
    assert!(seen["polls"].as_u64().unwrap() >= 10, "{seen}");
    // Exactly the source's rows after two refreshes, read by pyiceberg and DuckDB.
    let out = check_local_catalog(&env, &source, Some("TRANSACTIONS"));
    assert!(out.contains("TRANSACTIONS source rows=12000"), "{out}");
}

/// What pyiceberg sees of a lake table besides its rows: the chunk key as sort order and the
/// properties that tell other writers how the files were written.
#[test]
fn lake_tables_carry_sort_order_and_writer_properties() {
    if !require(python_readers()) {
        return;
    }
    let env = Env::new();
    env.workflow("wz", &small_workflow(&small_demo_source()));
    let r = env.dag(&[
        "run",
        "wz",
        "--lake-only",
        "--tables",
        "AGENTSVES,COUNTRIES",
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let script = r#"
import json, os, sys
from pyiceberg.catalog.sql import SqlCatalog
state = sys.argv[1]
cat = SqlCatalog("dag", uri="sqlite:///" + os.path.join(state, "catalog.db"),
                 warehouse="file://" + os.path.join(state, "warehouse"), init_catalog_tables="false")
out = {}
for name in ("AGENTSVES", "COUNTRIES"):
    t = cat.load_table(("worldzone", name))
    schema = t.schema()
    order = [(schema.find_column_name(f.source_id), str(f.transform), str(f.direction))
             for f in t.sort_order().fields]
    out[name] = {"order": order, "props": t.properties}
print(json.dumps(out))
"#;
    let o = python_command()
        .args(["-c", script])
        .arg(env.state())
        .output()
        .expect("run the test Python");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let order = &v["AGENTSVES"]["order"];
    assert_eq!(order[0][0], "AGENT_ID", "{v}");
    assert_eq!(order[0][1], "identity", "{v}");
    assert!(
        order[0][2].as_str().unwrap().to_lowercase().contains("asc"),
        "{v}"
    );
    for t in ["AGENTSVES", "COUNTRIES"] {
        let p = &v[t]["props"];
        assert_eq!(p["write.parquet.compression-codec"], "zstd", "{v}");
        assert_eq!(
            p["write.parquet.row-group-size-bytes"],
            dag::lake::ROW_GROUP_BYTES.to_string(),
            "{v}"
        );
        assert_eq!(p["write.format.default"], "parquet", "{v}");
    }
}

/// `[lake] retention`: snapshots (and the files only they reference) stay while younger than
/// it; with `retention = 0` only the current snapshot and the one before it stay.
#[test]
fn retention_keeps_replaced_versions_while_young() {
    let env = Env::new();
    let wf = small_workflow(&small_demo_source());
    let table_dir = env.state().join("warehouse/worldzone/COUNTRIES");
    // Directories of runs' data files (the table's own `metadata` directory aside).
    let run_dirs = || {
        std::fs::read_dir(&table_dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir() && e.file_name() != "metadata")
            .count()
    };
    let snapshots =
        |env: &Env| env.task("wz", "COUNTRIES", "write_iceberg")["outputs"]["snapshots"].clone();
    env.workflow(
        "wz",
        &wf.replace("[lake]\n", "[lake]\nretention = \"1d\"\n"),
    );
    for _ in 0..3 {
        let r = env.dag(&["run", "wz", "--lake-only", "--tables", "COUNTRIES"]);
        assert_eq!(r.code, Some(0), "{r:?}");
    }
    assert_eq!(run_dirs(), 3, "a day's retention keeps every version");
    assert_eq!(snapshots(&env), 3);
    env.workflow("wz", &wf.replace("[lake]\n", "[lake]\nretention = 0\n"));
    let r = env.dag(&["run", "wz", "--lake-only", "--tables", "COUNTRIES"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(run_dirs(), 2, "current and previous only");
    assert_eq!(snapshots(&env), 2);
    let text = env.dag(&["status", "wz"]);
    assert!(text.stdout.contains("2 in history"), "{text:?}");
}

/// Refreshes commit to the same table: one table-uuid, a snapshot per run (an `overwrite` for
/// each refresh), every earlier version readable by snapshot id through pyiceberg and DuckDB,
/// and a pyiceberg handle loaded before a refresh can refresh and append after it; the next
/// refresh then replaces that foreign snapshot's rows too.
#[test]
fn refreshes_keep_the_table_identity_and_its_history() {
    if !require(python_readers()) {
        return;
    }
    let env = Env::new();
    let source = own_demo(&env);
    env.workflow("wz", &small_workflow(&source));
    let args = |column: &str| reader(&env, "history.py", "TRANSACTIONS", column);
    let run = || {
        let r = env.dag(&["run", "wz", "--lake-only", "--tables", "TRANSACTIONS"]);
        assert_eq!(r.code, Some(0), "{r:?}");
    };
    run();
    let mut versions = vec![sums(&source)];

    // A reader that loaded the table before the refresh.
    let (holder, go) = hold_table(args("TXN_ID"), env.path());
    keep_transactions(&source, 25_001);
    run();
    versions.push(sums(&source));
    std::fs::write(&go, "").unwrap();
    let held: Ran = holder.wait_with_output().unwrap().into();
    assert_eq!(held.code, Some(0), "{held:?}");
    let held: serde_json::Value = serde_json::from_str(held.stdout.trim()).unwrap();
    assert_eq!(held["uuid_before"], held["uuid_after"], "{held}");
    assert_ne!(held["snapshot_before"], held["snapshot_after"], "{held}");
    let appended = held["appended_rows"].as_i64().unwrap();
    assert!(appended > 0, "{held}");
    assert_eq!(
        held["rows_after"].as_i64().unwrap(),
        versions[1].0 + appended,
        "{held}"
    );

    keep_transactions(&source, 12_001);
    run();
    versions.push(sums(&source));

    let o = args("TXN_ID").output().expect("run history.py");
    let o: Ran = o.into();
    assert_eq!(o.code, Some(0), "{o:?}");
    let h: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(
        h["uuid"], held["uuid_before"],
        "one table-uuid throughout: {h}"
    );
    let snaps = h["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 4, "three runs and pyiceberg's append: {h}");
    assert_eq!(h["current"], snaps[3]["id"], "{h}");
    for (i, s) in snaps.iter().enumerate() {
        assert_eq!(s["pyiceberg"], s["duckdb"], "snapshot {i}: {h}");
        if i > 0 {
            assert_eq!(s["parent"], snaps[i - 1]["id"], "{h}");
        }
    }
    let dag_snaps: Vec<&serde_json::Value> = snaps
        .iter()
        .filter(|s| s["summary"].get("dag.run-id").is_some())
        .collect();
    assert_eq!(dag_snaps.len(), 3, "{h}");
    for (s, (rows, keys)) in dag_snaps.iter().zip(&versions) {
        assert_eq!(s["pyiceberg"]["rows"], *rows, "{h}");
        assert_eq!(s["pyiceberg"]["keys"], *keys, "{h}");
    }
    assert_eq!(dag_snaps[0]["operation"], "append", "{h}");
    for s in &dag_snaps[1..] {
        assert_eq!(s["operation"], "overwrite", "{h}");
        assert_eq!(
            s["summary"]["total-records"],
            s["pyiceberg"]["rows"].to_string(),
            "{h}"
        );
    }
    assert_eq!(
        snaps[2]["operation"], "append",
        "pyiceberg's own snapshot: {h}"
    );
    assert_eq!(
        env.task("wz", "TRANSACTIONS", "write_iceberg")["outputs"]["snapshots"],
        4
    );
    let out = check_local_catalog(&env, &source, Some("TRANSACTIONS"));
    assert!(out.contains("TRANSACTIONS source rows=12000"), "{out}");
}

/// A real SQLite file whose columns are declared as SQLite allows rather than with the names dag
/// knows (`NUMERIC`, `VARYING CHARACTER(n)`, `UNSIGNED BIG INT`, no type at all) is typed by
/// SQLite's affinity rules and arrives exact: pyiceberg and DuckDB read what the source holds,
/// and the target has every row.
#[test]
fn sqlite_source_columns_are_typed_by_affinity() {
    let env = Env::new();
    let source = env.path().join("affinity.db");
    let c = rusqlite::Connection::open(&source).unwrap();
    c.execute_batch(
        "CREATE TABLE PRICES (ID UNSIGNED BIG INT PRIMARY KEY, AMOUNT NUMERIC,
             EXACT NUMERIC(10,2), LABEL VARYING CHARACTER(20), NOTE, SHORT VARCHAR(5));",
    )
    .unwrap();
    for i in 1..=2_000i64 {
        let note: rusqlite::types::Value = match i % 3 {
            0 => rusqlite::types::Value::Text(format!("note {i}")),
            1 => rusqlite::types::Value::Integer(i * 7),
            _ => rusqlite::types::Value::Null,
        };
        c.execute(
            "INSERT INTO PRICES VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                i,
                if i % 2 == 0 {
                    format!("{}.25", i)
                } else {
                    i.to_string()
                },
                format!("{}.{:02}", i, i % 100),
                format!("label-{i}"),
                note,
                "abcde"
            ],
        )
        .unwrap();
    }
    drop(c);
    env.workflow(
        "wz",
        &format!(
            "[source]\nkind = \"sqlite\"\npath = \"{}\"\n\n[lake]\nnamespace = \"worldzone\"\n\n\
             [target]\nkind = \"sqlite\"\npath = \"${{DAG_STATE_DIR}}/target.db\"\n\n\
             [table.PRICES]\nchunk_rows = 700\n",
            source.display()
        ),
    );
    let r = env.dag(&["run", "wz"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let ex = env.task("wz", "PRICES", "extract");
    let cols: Vec<(String, String)> = ex["outputs"]["schema"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                serde_json::to_string(&c["ty"]).unwrap(),
            )
        })
        .collect();
    let ty = |n: &str| cols.iter().find(|(c, _)| c == n).unwrap().1.clone();
    assert!(ty("ID").contains("\"int64\""), "{cols:?}");
    assert!(ty("AMOUNT").contains("\"float64\""), "{cols:?}");
    assert!(ty("EXACT").contains("\"decimal\""), "{cols:?}");
    assert!(ty("LABEL").contains("\"string\""), "{cols:?}");
    assert!(ty("NOTE").contains("\"string\""), "{cols:?}");
    let v = env.task("wz", "PRICES", "verify");
    assert_eq!(v["outputs"]["target"], v["outputs"]["digest"], "{v}");
    assert_eq!(
        count_distinct(&env.state().join("target.db"), "PRICES", "ID"),
        (2_000, 2_000)
    );
    if require(python_readers()) {
        let out = check_local_catalog(&env, &source, None);
        assert!(out.contains("all 1 tables match the source"), "{out}");
    }
}
