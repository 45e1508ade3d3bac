//! The MySQL-protocol target against the machine's real MariaDB (127.0.0.1:3306, root, no
//! password): demo and SQL Server sources through the lake into MariaDB, verified `full`; crashes
//! at every load injection point; a row changed in the target after the load is caught by verify
//! with its key. The target's contents are also read with the `mariadb` command-line client, which
//! we did not write.

use std::process::Command;

use serde_json::Value;

use crate::mssql::{server, workflow};
use crate::support::*;
use crate::tds::fixtures;

const SIGKILL: i32 = 9;

/// MariaDB reachable with the `mariadb` client.
pub(crate) fn mariadb_up() -> Result<(), String> {
    let out = Command::new("mariadb")
        .args(["-h127.0.0.1", "-P3306", "-uroot", "-N", "-e", "SELECT 1"])
        .output()
        .map_err(|e| {
            format!("the mariadb client is not runnable ({e}); apt-get install mariadb-client")
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "MariaDB at 127.0.0.1:3306 (user root, no password) is not reachable: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs SQL with the `mariadb` client; tab-separated rows.
pub(crate) fn mariadb(sql: &str) -> String {
    let out = Command::new("mariadb")
        .args(["-h127.0.0.1", "-P3306", "-uroot", "-N", "-B", "-e", sql])
        .output()
        .expect("run mariadb");
    assert!(
        out.status.success(),
        "mariadb failed on {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A database of its own for one test, dropped at the end.
pub(crate) struct Db(pub(crate) String);

impl Db {
    pub(crate) fn new(tag: &str) -> Db {
        let name = format!(
            "dag_it_{tag}_{}_{:04x}",
            std::process::id(),
            fastrand::u16(..)
        );
        mariadb(&format!("DROP DATABASE IF EXISTS `{name}`"));
        Db(name)
    }

    /// Rows and distinct keys (rows again for a keyless table).
    fn count(&self, table: &str) -> (i64, i64, String) {
        let distinct =
            key_of(table).map_or("COUNT(*)".to_string(), |k| format!("COUNT(DISTINCT `{k}`)"));
        let out = mariadb(&format!(
            "SELECT COUNT(*), {distinct} FROM `{}`.`{table}`",
            self.0
        ));
        let mut it = out.split_whitespace();
        let n = it.next().unwrap().parse().unwrap();
        let d = it.next().unwrap().parse().unwrap();
        (n, d, out)
    }

    fn tables(&self) -> Vec<String> {
        mariadb(&format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}' ORDER BY 1",
            self.0
        ))
        .lines()
        .map(str::to_string)
        .collect()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args(["-h127.0.0.1", "-uroot", "-e"])
            .arg(format!("DROP DATABASE IF EXISTS `{}`", self.0))
            .output();
    }
}

fn key_of(table: &str) -> Option<&'static str> {
    match table {
        "AGENTSVES" => Some("AGENT_ID"),
        "TRANSACTIONS" => Some("TXN_ID"),
        "COUNTRIES" => Some("COUNTRY_ID"),
        "COMPOSITE" | "ALLTYPES" => Some("ID"),
        _ => None,
    }
}

fn demo_workflow(db: &Db, extra: &str) -> String {
    let src = small_demo_source();
    let sqlite = small_workflow(&src);
    // The small workflow's SQLite target is replaced by MariaDB.
    let (head, tail) = sqlite.split_once("[target]").unwrap();
    let tail = tail.split_once("[limits]").unwrap().1;
    format!(
        "verify = \"full\"\n{head}[target]\nkind = \"mysql\"\nurl = \"mysql://root@127.0.0.1:3306\"\n\
         database = \"{}\"\ninsert_bytes = \"256KiB\"\n\n[limits]{tail}\n{extra}",
        db.0
    )
}

fn assert_verified(env: &Env, wf: &str) {
    let (run, tasks) = env.status(wf);
    assert_eq!(run["status"], "succeeded", "{tasks:?}");
    let verifies: Vec<&Value> = tasks.iter().filter(|t| t["stage"] == "verify").collect();
    assert!(!verifies.is_empty());
    for t in verifies {
        let o = &t["outputs"];
        assert_eq!(o["verify_mode"], "full", "{t}");
        assert_eq!(o["target"], o["digest"], "{t}");
        assert_eq!(o["lake"], o["digest"], "{t}");
    }
}

fn assert_exact(db: &Db, env: &Env, wf: &str) {
    for t in env.status(wf).1.iter().filter(|t| t["stage"] == "extract") {
        let table = t["table"].as_str().unwrap();
        let rows = t["outputs"]["digest"]["rows"].as_i64().unwrap();
        let (n, distinct, out) = db.count(table);
        assert_eq!((n, distinct), (rows, rows), "{table} in MariaDB: {out}");
    }
    // Only the published tables and the ledger remain: no staging table of any run.
    let mut expected: Vec<String> = env
        .status(wf)
        .1
        .iter()
        .filter(|t| t["stage"] == "extract")
        .map(|t| t["table"].as_str().unwrap().to_string())
        .collect();
    expected.push("_dag_ledger".into());
    expected.sort();
    assert_eq!(db.tables(), expected);
}

#[test]
fn mariadb_demo_loads_verified_full_and_reruns_never_duplicate() {
    if !require(mariadb_up()) {
        return;
    }
    let db = Db::new("demo");
    let env = Env::new();
    env.workflow("w", &demo_workflow(&db, ""));
    let r = env.dag(&["run", "w"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_verified(&env, "w");
    assert_exact(&db, &env, "w");
    // The DDL followed the mapping: DATETIME(6), DECIMAL kept, a primary key from the source.
    let ddl = mariadb(&format!("SHOW CREATE TABLE `{}`.`AGENTSVES`", db.0));
    assert!(ddl.contains("PRIMARY KEY (`AGENT_ID`)"), "{ddl}");
    assert!(ddl.contains("datetime(6)"), "{ddl}");
    // A second full run replaces the rows: same counts, verified again.
    let r = env.dag(&["run", "w"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_verified(&env, "w");
    assert_exact(&db, &env, "w");
    let status = env.dag(&["status", "w"]);
    assert!(status.stdout.contains("[full] source"), "{status:?}");
}

#[test]
fn mariadb_sigkill_at_every_load_point_then_run_is_exact() {
    if !require(mariadb_up()) {
        return;
    }
    for point in [
        "mid_load:AGENTSVES:1",
        "mid_load:TRANSACTIONS:0",
        "before_publish:AGENTSVES",
        "after_publish:COUNTRIES",
    ] {
        let db = Db::new("crash");
        let env = Env::new();
        env.workflow("w", &demo_workflow(&db, ""));
        let r = env.dag_fault(&["run", "w"], &format!("kill:{point}"));
        assert_eq!(r.signal, Some(SIGKILL), "expected a kill at {point}: {r:?}");
        let r = env.dag(&["run", "w"]);
        assert_eq!(r.code, Some(0), "resume after {point}: {r:?}");
        assert_verified(&env, "w");
        assert_exact(&db, &env, "w");
        // A file loaded before the kill was not loaded again.
        if point.starts_with("mid_load:AGENTSVES:1") {
            let load = env.task("w", "AGENTSVES", "load");
            assert_eq!(load["outputs"]["chunks_already_loaded"], 1, "{load}");
        }
    }
}

#[test]
fn mariadb_row_changed_after_load_is_reported_by_key() {
    if !require(mariadb_up()) {
        return;
    }
    let db = Db::new("tamper");
    let env = Env::new();
    env.workflow("w", &demo_workflow(&db, ""));
    let r = env.dag_fault(&["run", "w"], "kill:before_verify:AGENTSVES");
    assert_eq!(r.signal, Some(SIGKILL), "{r:?}");
    mariadb(&format!(
        "UPDATE `{}`.`AGENTSVES` SET `AGENT_NAME` = CONCAT(`AGENT_NAME`, '!') WHERE `AGENT_ID` = 4242",
        db.0
    ));
    let r = env.dag(&["run", "w"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    let verify = env.task("w", "AGENTSVES", "verify");
    assert_eq!(verify["status"], "failed", "{verify}");
    let err = verify["last_error"].as_str().unwrap();
    assert!(err.contains("AGENT_ID=4242 (different values)"), "{err}");
    assert_eq!(
        verify["outputs"]["differing_keys"],
        serde_json::json!(["AGENT_ID=4242 (different values)"])
    );
    let status = env.dag(&["status", "w"]);
    assert!(status.stdout.contains("AGENT_ID=4242"), "{status:?}");
}

#[test]
fn mariadb_sql_server_source_every_type_verified_full() {
    if !require(mariadb_up()) {
        return;
    }
    let types = fixtures::types_table();
    let composite = fixtures::composite_table(5_000);
    let srv = server(vec![types, composite]);
    let db = Db::new("mssql");
    let env = Env::new();
    let target = format!(
        "\n[target]\nkind = \"mysql\"\nurl = \"mysql://root@127.0.0.1:3306\"\ndatabase = \"{}\"\n",
        db.0
    );
    env.workflow("wz", &workflow(srv.port(), "Pa55word!", &target));
    let r = env.dag(&["run", "wz"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_verified(&env, "wz");
    let rows = mariadb(&format!("SELECT COUNT(*) FROM `{}`.`ALLTYPES`", db.0));
    assert_eq!(rows.trim(), "5");
    let ddl = mariadb(&format!("SHOW CREATE TABLE `{}`.`ALLTYPES`", db.0));
    assert!(ddl.contains("tinyint(3) unsigned"), "{ddl}");
}

/// pyiceberg and DuckDB read COUNTRIES from the lake of `env` as `source` holds it.
fn lake_matches(env: &Env, source: &std::path::Path) {
    let out = crate::lakehouse::check_with_catalog(
        env,
        source,
        &env.state().join("catalog.db").to_string_lossy(),
        Some("COUNTRIES"),
    );
    assert!(out.contains("all 1 tables match the source"), "{out}");
}

/// Schema evolution: a column added in the source between two runs appears in the lake and in
/// MariaDB (created from the mapping, then added by ALTER TABLE to a table the user made), and
/// verification passes; a dropped column fails the table and replaces nothing until the
/// workflow allows it.
#[test]
fn mariadb_columns_added_in_the_source_reach_lake_and_target() {
    if !require(mariadb_up()) || !require(python_readers()) {
        return;
    }
    let db = Db::new("schema");
    let env = Env::new();
    let source = env.path().join("source.db");
    std::fs::copy(small_demo_source(), &source).unwrap();
    let wf = demo_workflow(&db, "").replace(
        &small_demo_source().display().to_string(),
        &source.display().to_string(),
    );
    env.workflow("wz", &wf);
    let run = |env: &Env| env.dag(&["run", "wz", "--tables", "COUNTRIES"]);
    let src = |sql: &str| {
        rusqlite::Connection::open(&source)
            .unwrap()
            .execute_batch(sql)
            .unwrap()
    };
    let r = run(&env);
    assert_eq!(r.code, Some(0), "{r:?}");

    src("ALTER TABLE COUNTRIES ADD COLUMN CAPITAL_POP INTEGER; \
         UPDATE COUNTRIES SET CAPITAL_POP = COUNTRY_ID * 1000 WHERE COUNTRY_ID % 3 = 0;");
    let r = run(&env);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_verified(&env, "wz");
    let ex = env.task("wz", "COUNTRIES", "extract");
    assert!(
        ex["outputs"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("added CAPITAL_POP")),
        "{ex}"
    );
    let filled = mariadb(&format!(
        "SELECT COUNT(`CAPITAL_POP`), SUM(`CAPITAL_POP` = `COUNTRY_ID` * 1000) FROM `{}`.`COUNTRIES`",
        db.0
    ));
    let want = rusqlite::Connection::open(&source)
        .unwrap()
        .query_row("SELECT COUNT(CAPITAL_POP) FROM COUNTRIES", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap();
    assert!(want > 0);
    assert_eq!(
        filled.split_whitespace().collect::<Vec<_>>(),
        [want.to_string(), want.to_string()]
    );
    lake_matches(&env, &source);

    // A table the user manages (create_tables = false) gets the new column by ALTER TABLE.
    src(
        "ALTER TABLE COUNTRIES ADD COLUMN MOTTO TEXT; UPDATE COUNTRIES SET MOTTO = 'm' || COUNTRY_ID;",
    );
    env.workflow(
        "wz",
        &wf.replace("insert_bytes", "create_tables = false\ninsert_bytes"),
    );
    let r = run(&env);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_verified(&env, "wz");
    let motto = mariadb(&format!(
        "SELECT COUNT(*) FROM `{}`.`COUNTRIES` WHERE `MOTTO` = CONCAT('m', `COUNTRY_ID`)",
        db.0
    ));
    assert_eq!(motto.trim(), db.count("COUNTRIES").0.to_string());

    // A dropped column fails the table: lake and target keep the previous version.
    src("ALTER TABLE COUNTRIES DROP COLUMN CAPITAL_POP;");
    let r = run(&env);
    assert_eq!(r.code, Some(1), "{r:?}");
    let ex = env.task("wz", "COUNTRIES", "extract");
    let err = ex["last_error"].as_str().unwrap_or_default();
    assert!(
        err.contains("CAPITAL_POP no longer in the source")
            && err.contains("schema_changes = \"any\" under [table.COUNTRIES]"),
        "{ex}"
    );
    let cols = mariadb(&format!(
        "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{}' \
         AND TABLE_NAME = 'COUNTRIES' AND COLUMN_NAME = 'CAPITAL_POP'",
        db.0
    ));
    assert_eq!(cols.trim(), "1", "the target lost the column");
    let w = env.task("wz", "COUNTRIES", "write_iceberg");
    assert!(w["status"] == "pending" || w["status"] == "skipped", "{w}");

    // Allowed: the table is replaced with the source's columns.
    env.workflow(
        "wz",
        &format!("{}\n[table.COUNTRIES]\nschema_changes = \"any\"\n", wf),
    );
    let r = run(&env);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_verified(&env, "wz");
    lake_matches(&env, &source);
}

// ---- Incremental runs, driving the target's API directly ----

mod incremental {
    use std::collections::HashSet;

    use dag::config::{MysqlTargetConfig, Secret};
    use dag::targets::mysql::MysqlTarget;

    use super::*;

    fn target(db: &Db) -> MysqlTarget {
        MysqlTarget::new(&MysqlTargetConfig {
            url: Secret::new("mysql://root@127.0.0.1:3306"),
            user: None,
            password: None,
            database: db.0.clone(),
            create_tables: true,
            insert_bytes: 1024,
        })
        .unwrap()
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// The table's rows as `ID<TAB>NAME` lines, by ID, read with the mariadb client.
    fn rows(db: &Db, table: &str) -> Vec<String> {
        mariadb(&format!(
            "SELECT ID, NAME FROM `{}`.`{table}` ORDER BY ID, NAME",
            db.0
        ))
        .lines()
        .map(str::to_string)
        .collect()
    }

    fn primary_key(db: &Db, table: &str) -> String {
        mariadb(&format!(
            "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION) FROM \
             information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = \
             '{table}' AND CONSTRAINT_NAME = 'PRIMARY'",
            db.0
        ))
        .trim()
        .to_string()
    }

    #[test]
    fn mariadb_incremental_run_upserts_by_key_once_when_resumed() {
        if !require(mariadb_up()) {
            return;
        }
        let db = Db::new("incr");
        let t = target(&db);
        let dir = tempfile::tempdir().unwrap();
        let io = iceberg::io::FileIO::new_with_fs();
        let rt = rt();

        // Run 1: the full refresh (staging table, swap) creates the table with its key.
        let full = incremental_table("T", true, false);
        let f = id_name_parquet(
            dir.path(),
            "r1.parquet",
            &[(1, Some("one")), (2, Some("two")), (3, None)],
        );
        rt.block_on(async {
            t.check().await.unwrap();
            t.prepare(&full, "run1").await.unwrap();
            t.load_unit(&full, "run1", 0, &f, &io, 2).await.unwrap();
            t.publish(&full, "run1").await.unwrap();
        });
        assert_eq!(primary_key(&db, "T"), "ID");

        // Run 2: rows 2 and 3 changed, 4 and 5 new, in two data files.
        let inc = incremental_table("T", true, true);
        let g0 = id_name_parquet(
            dir.path(),
            "r2a.parquet",
            &[(2, Some("TWO")), (3, Some("three")), (4, Some("four"))],
        );
        let g1 = id_name_parquet(dir.path(), "r2b.parquet", &[(5, Some("five"))]);
        let want = vec!["1\tone", "2\tTWO", "3\tthree", "4\tfour", "5\tfive"];
        rt.block_on(async {
            assert!(t.prepare_append(&inc, "run2").await.unwrap().is_empty());
            let d0 = t
                .load_unit_append(&inc, "run2", 0, &g0, &io, 2)
                .await
                .unwrap();
            assert_eq!(d0.rows, 3);
            // A crash here: the resumed load finds unit 0 in the ledger and applies unit 1.
            assert_eq!(
                t.prepare_append(&inc, "run2").await.unwrap(),
                HashSet::from([0])
            );
            t.load_unit_append(&inc, "run2", 1, &g1, &io, 2)
                .await
                .unwrap();
            // Applying a recorded unit again changes nothing and answers its recorded digest.
            assert_eq!(
                t.load_unit_append(&inc, "run2", 0, &g0, &io, 2)
                    .await
                    .unwrap(),
                d0
            );
            t.finish_append(&inc, "run2").await.unwrap();
            t.finish_append(&inc, "run2").await.unwrap();
        });
        assert_eq!(rows(&db, "T"), want);
        // No staging table; the ledger remembers run 2 only.
        assert_eq!(
            db.tables(),
            vec!["T".to_string(), "_dag_ledger".to_string()]
        );
        let ledger = mariadb(&format!(
            "SELECT DISTINCT run_id FROM `{}`.`_dag_ledger`",
            db.0
        ));
        assert_eq!(ledger.trim(), "run2");
    }

    #[test]
    fn mariadb_incremental_run_of_a_keyless_table_appends_each_unit_once() {
        if !require(mariadb_up()) {
            return;
        }
        let db = Db::new("incr_nokey");
        let t = target(&db);
        let dir = tempfile::tempdir().unwrap();
        let io = iceberg::io::FileIO::new_with_fs();
        let inc = incremental_table("K", false, true);
        let f = id_name_parquet(
            dir.path(),
            "k.parquet",
            &[(1, Some("a")), (1, Some("a")), (2, None)],
        );
        rt().block_on(async {
            t.check().await.unwrap();
            // No table yet: the append creates it (without a key: the source has none).
            assert!(t.prepare_append(&inc, "run1").await.unwrap().is_empty());
            t.load_unit_append(&inc, "run1", 0, &f, &io, 2)
                .await
                .unwrap();
            // A resumed load of the same run: the unit is in the ledger and is not applied again.
            assert_eq!(
                t.prepare_append(&inc, "run1").await.unwrap(),
                HashSet::from([0])
            );
            t.load_unit_append(&inc, "run1", 0, &f, &io, 2)
                .await
                .unwrap();
        });
        assert_eq!(primary_key(&db, "K"), "NULL");
        assert_eq!(rows(&db, "K"), vec!["1\ta", "1\ta", "2\tNULL"]);
    }

    #[test]
    fn mariadb_incremental_run_refuses_a_table_without_the_key() {
        if !require(mariadb_up()) {
            return;
        }
        let db = Db::new("incr_badkey");
        mariadb(&format!(
            "CREATE DATABASE `{d}`; CREATE TABLE `{d}`.`T` (ID BIGINT NOT NULL, NAME TEXT)",
            d = db.0
        ));
        let t = target(&db);
        let inc = incremental_table("T", true, true);
        let e = rt().block_on(t.prepare_append(&inc, "run2")).unwrap_err();
        for part in [
            "table T has no primary key",
            "(ID)",
            "ADD PRIMARY KEY (`ID`)",
        ] {
            assert!(e.message.contains(part), "{part}: {e}");
        }
    }
}
