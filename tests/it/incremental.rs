//! Incremental syncs end to end: a first run is a full refresh that sets the watermark; later
//! runs read only the rows past it (asserted on the TDS test server's query log), commit them to
//! the lake (rewriting the files that held older versions of their keys) and upsert them into the
//! target; plain scans of the lake by pyiceberg and DuckDB, and the target, then equal the source
//! by key. A SIGKILL between the load and the watermark's advance neither loses nor doubles rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::mssql::{expected, workflow};
use crate::mysql_target::{Db, mariadb, mariadb_up};
use crate::support::*;
use crate::tds::{Col, ServerConfig, SqlType, Table, TdsServer, Value, days_from_ymd};

/// Rows of ORDERS in version 1; version 2 adds `NEW` rows and updates every 20th row.
const V1_ROWS: u64 = 200;
const NEW: u64 = 10;
const TICKS_PER_SEC: u64 = 10_000_000;

/// `dbo.ORDERS` as the source holds it in `version` 1 or 2. UPDATED is a datetime2(7) with a
/// digit below the microsecond (5 x 100 ns), so the run's upper bound must round up to keep the
/// row holding the maximum.
fn orders(version: u32) -> Table {
    let rows = if version == 1 { V1_ROWS } else { V1_ROWS + NEW };
    let day = days_from_ymd(2026, 1, 1) as u32;
    Table {
        schema: "dbo".into(),
        name: "ORDERS".into(),
        columns: vec![
            Col::new("ID", SqlType::Int, false),
            Col::new("NAME", SqlType::NVarChar(Some(40)), false),
            Col::new("AMOUNT", SqlType::BigInt, true),
            Col::new("UPDATED", SqlType::DateTime2(7), false),
        ],
        primary_key: vec!["ID".into()],
        rows,
        row: Arc::new(move |i, out| {
            let updated = version == 2 && i < V1_ROWS && i % 20 == 0;
            out.clear();
            out.push(Value::Int(i as i64 + 1));
            out.push(Value::Str(if updated {
                format!("changed {i}")
            } else {
                format!("order {i}")
            }));
            out.push(if i % 7 == 3 {
                Value::Null
            } else {
                Value::Int(i as i64 * 100 + i64::from(updated))
            });
            let ticks = if updated {
                12 * 3600 * TICKS_PER_SEC + i * 10 + 7
            } else {
                i * TICKS_PER_SEC + 5
            };
            out.push(Value::DateTime2 { days: day, ticks });
        }),
        key: None,
    }
}

/// The test server serving `table` as `WorldZone`, on `port` (0: any free one). A server on the
/// same port a moment ago lets go of it from its own accept thread: wait for that.
fn serve(table: Table, port: u16) -> TdsServer {
    let cfg = ServerConfig::new("WorldZone", "dag", "Pa55word!", vec![table]);
    if port == 0 {
        return TdsServer::start(cfg).unwrap();
    }
    for _ in 0..200 {
        match TdsServer::start_on(cfg.clone(), port) {
            Ok(s) => return s,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    panic!("port {port} stayed in use");
}

/// ID, NAME and AMOUNT of every row of `table`, as the `mariadb` client prints them.
fn rows_text(table: &Table) -> String {
    let mut out = String::new();
    let mut row = Vec::new();
    for i in 0..table.rows {
        (table.row)(i, &mut row);
        let cell = |v: &Value| match v {
            Value::Int(n) => n.to_string(),
            Value::Str(s) => s.clone(),
            _ => "NULL".into(),
        };
        out.push_str(&format!(
            "{}\t{}\t{}\n",
            cell(&row[0]),
            cell(&row[1]),
            cell(&row[2])
        ));
    }
    out
}

/// The data reads of ORDERS in the server's log: (SQL, parameters, rows sent).
fn data_reads(srv: &TdsServer) -> Vec<(String, Vec<String>, u64)> {
    srv.queries()
        .into_iter()
        .filter(|q| {
            q.sql.contains("FROM [dbo].[ORDERS]")
                && q.sql.starts_with("SELECT [ID]")
                && !q.sql.contains("MAX(")
        })
        .map(|q| (q.sql, q.params, q.rows_sent))
        .collect()
}

/// pyiceberg and DuckDB, with plain scans (no de-duplication: incremental runs replace the older
/// versions of the rows they read), find exactly `table` in the lake.
fn lake_equals(env: &Env, table: &Table) {
    let want: BTreeMap<String, Json> = [(table.name.clone(), expected(table))].into();
    let file = env.path().join("expect.json");
    std::fs::write(&file, serde_json::to_string(&want).unwrap()).unwrap();
    env.lake_check("migrated_WorldZone")
        .arg("--expect")
        .arg(&file)
        .run();
}

#[test]
fn incremental_sql_server_to_mariadb_reads_only_past_the_watermark() {
    if !require(mariadb_up()) {
        return;
    }
    let readers = require_for("the independent readers' checks", python_readers());
    let db = Db::new("incr");
    let env = Env::new();
    let v1 = serve(orders(1), 0);
    let port = v1.port();
    let extra = format!(
        "\n[target]\nkind = \"mysql\"\nurl = \"mysql://root@127.0.0.1:3306\"\ndatabase = \"{}\"\n\n\
         [table.ORDERS]\nmode = \"incremental\"\ncursor = \"UPDATED\"\nfull_refresh = \"weekly\"\n",
        db.0
    );
    env.workflow("wz", &workflow(port, "Pa55word!", &extra));

    // Run 1: no watermark yet, so a full refresh of every row up to the maximum.
    let r = env.dag(&["run", "wz"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let reads = data_reads(&v1);
    assert_eq!(reads.iter().map(|r| r.2).sum::<u64>(), V1_ROWS, "{reads:?}");
    assert!(
        reads
            .iter()
            .all(|(sql, _, _)| sql.contains("[UPDATED] <= CAST(@P")),
        "{reads:?}"
    );
    let extract = env.task("wz", "ORDERS", "extract");
    assert!(
        extract["outputs"]["note"]
            .as_str()
            .unwrap()
            .contains("full refresh (first run of the table)"),
        "{extract}"
    );
    let status = env.dag(&["status", "wz"]);
    // 199 s and 0.5 µs past midnight, rounded up to the microsecond.
    assert!(
        status.stdout.contains("2026-01-01T00:03:19.000001"),
        "{status:?}"
    );
    drop(v1);

    // Between runs the source gains NEW rows and every 20th row is updated.
    let v2 = serve(orders(2), port);
    let r = env.dag(&["run", "wz"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let reads = data_reads(&v2);
    assert_eq!(reads.len(), 1, "one read of the range: {reads:?}");
    let (sql, params, sent) = &reads[0];
    assert!(
        sql.contains(
            "[UPDATED] > CAST(@P1 AS datetime2(7)) AND [UPDATED] <= CAST(@P2 AS datetime2(7))"
        ),
        "{sql}"
    );
    assert!(
        params[0].contains("2026-01-01T00:03:19.000001"),
        "{params:?}"
    );
    assert!(
        params[1].contains("2026-01-01T12:00:00.000181"),
        "{params:?}"
    );
    assert_eq!(*sent, NEW + V1_ROWS / 20, "only rows past the watermark");
    let verify = env.task("wz", "ORDERS", "verify");
    assert_eq!(verify["status"], "succeeded", "{verify}");
    assert_eq!(verify["outputs"]["target"], verify["outputs"]["digest"]);
    assert_eq!(verify["outputs"]["lake"], verify["outputs"]["digest"]);

    // The target equals the source by key; so does the lake, read with plain scans.
    let v2_table = orders(2);
    let got = mariadb(&format!(
        "SELECT ID, NAME, AMOUNT FROM `{}`.`ORDERS` ORDER BY ID",
        db.0
    ));
    assert_eq!(got, rows_text(&v2_table));
    if readers {
        lake_equals(&env, &v2_table);
    }

    // Run 3 without changes reads nothing and keeps the watermark.
    v2.clear_log();
    let r = env.dag(&["run", "wz"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(data_reads(&v2).is_empty(), "{:?}", data_reads(&v2));
    let status = env.dag(&["status", "wz"]);
    assert!(
        status.stdout.contains("2026-01-01T12:00:00.000181"),
        "{status:?}"
    );
}

/// A SQLite source whose ORDERS has 100 rows with text timestamps, as the demo writes them.
fn sqlite_orders(path: &std::path::Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE ORDERS (ID INTEGER PRIMARY KEY, NAME TEXT NOT NULL, AMOUNT INTEGER, \
         UPDATED_AT TIMESTAMP NOT NULL)",
    )
    .unwrap();
    for i in 1..=100 {
        c.execute(
            "INSERT INTO ORDERS VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                i,
                format!("n{i}"),
                i * 10,
                format!("2026-01-01 00:{:02}:{:02}", i / 60, i % 60)
            ],
        )
        .unwrap();
    }
}

fn sqlite_changes(path: &std::path::Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "UPDATE ORDERS SET NAME = 'changed', UPDATED_AT = '2026-01-02 00:00:00' WHERE ID IN (5, 50);
         INSERT INTO ORDERS VALUES (101, 'new', 1, '2026-01-02 00:00:01');
         INSERT INTO ORDERS VALUES (102, 'new2', NULL, '2026-01-02 00:00:02.5');",
    )
    .unwrap();
}

#[test]
fn incremental_sigkill_between_load_and_watermark_neither_loses_nor_doubles() {
    let readers = require_for("the independent readers' checks", python_readers());
    let env = Env::new();
    let src = env.path().join("src.db");
    let target = env.path().join("target.db");
    sqlite_orders(&src);
    env.workflow(
        "inc",
        &format!(
            "[source]\nkind = \"sqlite\"\npath = \"{}\"\n\n[lake]\nnamespace = \"inc\"\n\n\
             [target]\nkind = \"sqlite\"\npath = \"{}\"\n\n[table.ORDERS]\nmode = \"incremental\"\n\
             cursor = \"UPDATED_AT\"\n",
            src.display(),
            target.display()
        ),
    );
    let r = env.dag(&["run", "inc"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    sqlite_changes(&src);

    // Killed after the rows are in the lake and the target, before the watermark moves.
    let r = env.dag_fault(&["run", "inc"], "kill:before_watermark:ORDERS");
    assert_ne!(r.code, Some(0), "{r:?}");
    let status = env.dag(&["status", "inc"]);
    assert!(
        status.stdout.contains("2026-01-01T00:01:40.000000"),
        "the watermark has not moved: {status:?}"
    );
    // The next run resumes the same run: nothing is appended or loaded twice.
    let r = env.dag(&["run", "inc"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("sessions 2"), "{r:?}");
    let status = env.dag(&["status", "inc"]);
    assert!(
        status.stdout.contains("2026-01-02T00:00:02.500000"),
        "{status:?}"
    );
    if readers {
        // Plain scans (no de-duplication) equal the source: the two updated rows replaced their
        // older versions (their files rewritten), the two new rows were added, once each.
        let json = env.path().join("plain.json");
        env.lake_check("inc")
            .arg("--source")
            .arg(&src)
            .arg("--target-db")
            .arg(&target)
            .arg("--json")
            .arg(&json)
            .run();
        let report: Json = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(report["ORDERS"]["pyiceberg"]["rows"], 102, "{report}");
        assert_eq!(report["ORDERS"]["duckdb"]["rows"], 102, "{report}");
    }

    // A full refresh (the cursor changed) replaces the log with the source's rows.
    let c = rusqlite::Connection::open(&src).unwrap();
    c.execute("DELETE FROM ORDERS WHERE ID = 7", []).unwrap();
    drop(c);
    let text = std::fs::read_to_string(env.path().join("workflows/inc.toml")).unwrap();
    env.workflow(
        "inc",
        &text.replace("cursor = \"UPDATED_AT\"", "cursor = \"ID\""),
    );
    let r = env.dag(&["run", "inc"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let extract = env.task("inc", "ORDERS", "extract");
    assert!(
        extract["outputs"]["note"]
            .as_str()
            .unwrap()
            .contains("full refresh (the cursor changed"),
        "{extract}"
    );
    if readers {
        env.check_lake(&src, "inc", Some(&target));
    }
}

/// `dbo.ITEMS` with a rowversion cursor: version 2 updates every 10th row and adds 5, each
/// change taking a rowversion past every earlier one, as SQL Server's database counter does.
fn items(version: u32) -> Table {
    let rows = if version == 1 { 50 } else { 55 };
    Table {
        schema: "dbo".into(),
        name: "ITEMS".into(),
        columns: vec![
            Col::new("ID", SqlType::Int, false),
            Col::new("NAME", SqlType::NVarChar(Some(40)), false),
            Col::new("RV", SqlType::RowVersion, false),
        ],
        primary_key: vec!["ID".into()],
        rows,
        row: Arc::new(move |i, out| {
            let changed = version == 2 && (i % 10 == 0 || i >= 50);
            out.clear();
            out.push(Value::Int(i as i64 + 1));
            out.push(Value::Str(format!(
                "item {i}{}",
                if changed { " v2" } else { "" }
            )));
            let rv: i64 = if changed {
                6000 + i as i64
            } else {
                1000 + i as i64
            };
            out.push(Value::Bytes(rv.to_be_bytes().to_vec()));
        }),
        key: None,
    }
}

#[test]
fn incremental_rowversion_cursor_reads_only_newer_row_versions() {
    let readers = require_for("the independent readers' checks", python_readers());
    let env = Env::new();
    let v1 = serve(items(1), 0);
    let port = v1.port();
    let extra = format!(
        "\n[target]\nkind = \"sqlite\"\npath = \"{}\"\n\n[table.ITEMS]\nmode = \"incremental\"\n\
         cursor = \"RV\"\n",
        env.path().join("target.db").display()
    );
    env.workflow("wz", &workflow(port, "Pa55word!", &extra));
    let r = env.dag(&["run", "wz"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    drop(v1);

    let v2 = serve(items(2), port);
    let r = env.dag(&["run", "wz"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let reads: Vec<_> = v2
        .queries()
        .into_iter()
        .filter(|q| q.sql.starts_with("SELECT [ID]") && q.sql.contains("[ITEMS]"))
        .collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert!(
        reads[0].sql.contains("[RV] > @P1 AND [RV] <= @P2"),
        "{}",
        reads[0].sql
    );
    assert_eq!(reads[0].params.len(), 2, "{reads:?}");
    assert!(reads[0].params[0].contains("1049"), "{reads:?}");
    assert!(reads[0].params[1].contains("6054"), "{reads:?}");
    assert_eq!(reads[0].rows_sent, 10, "5 updated and 5 new rows");
    let verify = env.task("wz", "ITEMS", "verify");
    assert_eq!(verify["status"], "succeeded", "{verify}");
    assert_eq!(verify["outputs"]["target"], verify["outputs"]["digest"]);

    if readers {
        lake_equals(&env, &items(2));
    }
}
