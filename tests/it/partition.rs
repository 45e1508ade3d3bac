//! Day-partitioned lake tables: the partition decision (auto, threshold, off, a named column),
//! the Iceberg partition spec and values as pyiceberg and DuckDB read them, unordered input with
//! few open partition writers, and a crash in the middle of a partitioned extract.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::*;

/// Days of history in the test table (three years and a day).
const DAYS: u64 = 1096;

/// A SQLite source with:
/// - EVENTS: 2 rows a day over `DAYS` days, `DAY` (DATE NOT NULL) rising with the key, `STAMP`
///   (DATETIME, nullable) on a day unrelated to the key and NULL on every tenth row;
/// - SMALL: exactly 1000 rows with a date (the default threshold: stays unpartitioned);
/// - UNDATED: 1500 rows without a date column.
fn source(dir: &Path) -> PathBuf {
    let path = dir.join("events.db");
    let mut c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TABLE EVENTS (ID INTEGER PRIMARY KEY, DAY DATE NOT NULL, STAMP DATETIME, \
           AMOUNT DOUBLE, NOTE TEXT);
         CREATE TABLE SMALL (ID INTEGER PRIMARY KEY, CREATED DATE NOT NULL);
         CREATE TABLE UNDATED (ID INTEGER PRIMARY KEY, NOTE TEXT);",
    )
    .unwrap();
    let tx = c.transaction().unwrap();
    let day = |n: u64| {
        let d = chrono::NaiveDate::from_ymd_opt(2021, 1, 1).unwrap() + chrono::Days::new(n % DAYS);
        d.format("%Y-%m-%d").to_string()
    };
    // A fixed permutation-like scramble of the key: deterministic, unrelated to the order.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for id in 0..2 * DAYS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let stamp = (id % 10 != 0).then(|| format!("{} {:02}:17:05", day(x % DAYS), x % 24));
        tx.execute(
            "INSERT INTO EVENTS VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                id,
                day(id / 2),
                stamp,
                id as f64 * 0.25,
                format!("event {id}")
            ],
        )
        .unwrap();
    }
    for id in 0..1000u64 {
        tx.execute(
            "INSERT INTO SMALL VALUES (?1, ?2)",
            rusqlite::params![id, day(id)],
        )
        .unwrap();
    }
    for id in 0..1500u64 {
        tx.execute(
            "INSERT INTO UNDATED VALUES (?1, ?2)",
            rusqlite::params![id, format!("n{id}")],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    path
}

fn workflow(src: &Path, lake_extra: &str, tables: &str) -> String {
    format!(
        "[source]\nkind = \"sqlite\"\npath = \"{}\"\n\n[lake]\nnamespace = \"ev\"\n{lake_extra}\n\n\
         [limits]\nmemory = \"512MiB\"\nretries = 0\n\n{tables}\n",
        src.display()
    )
}

/// pyiceberg's view of a table's partitioning (tests/readers/partitions.py).
fn partitions(env: &Env, table: &str) -> Value {
    let state = env.state();
    let out = python_command()
        .arg(repo().join("tests/readers/partitions.py"))
        .arg("--catalog")
        .arg(state.join("catalog.db"))
        .arg("--warehouse")
        .arg(state.join("warehouse"))
        .args(["--namespace", "ev", "--table", table])
        .output()
        .expect("run partitions.py");
    assert!(out.status.success(), "partitions.py: {out:?}");
    serde_json::from_slice(&out.stdout).expect("partitions.py prints JSON")
}

fn assert_day_spec(p: &Value, column: &str) {
    let spec = p["spec"].as_array().expect("spec");
    assert_eq!(spec.len(), 1, "{p}");
    assert_eq!(spec[0]["source"], column, "{p}");
    assert_eq!(spec[0]["transform"], "day", "{p}");
}

fn run_ok(env: &Env, wf: &str) {
    let r = env.dag(&["run", wf]);
    assert_eq!(r.code, Some(0), "dag run {wf}: {r:?}");
}

#[test]
fn auto_partitions_big_dated_tables_by_day() {
    if !require(python_readers()) {
        return;
    }
    let env = Env::new();
    let src = source(env.path());
    env.workflow(
        "w",
        &workflow(
            &src,
            // EVENTS holds 2 rows a day.
            "partition = \"auto\"\npartition_min_rows_per_day = 2",
            "[table.EVENTS]\nchunk_rows = 700\n",
        ),
    );
    let plan = env.dag(&["plan", "w"]);
    assert!(
        plan.stdout.contains("partitioned by day(DAY)"),
        "dag plan shows the decision: {plan:?}"
    );
    run_ok(&env, "w");
    env.check_lake(&src, "ev", None);
    // auto prefers the NOT NULL date column; ordered rows give one file per day.
    let p = partitions(&env, "EVENTS");
    assert_day_spec(&p, "DAY");
    assert_eq!(p["partitions"], DAYS, "{p}");
    assert_eq!(p["null_partition"], false, "{p}");
    // Chunks of 700 rows split some days in two: a file per day per chunk that holds it.
    let files = p["files"].as_u64().unwrap();
    assert!((DAYS..=DAYS + 4).contains(&files), "{p}");
    // The decision is kept with the extract's recorded schema.
    let t = env.task("w", "EVENTS", "extract");
    assert_eq!(t["outputs"]["schema"]["partition"], "DAY", "{t}");
    // At the threshold (1000 rows, not more) and without a date column: unpartitioned.
    for table in ["SMALL", "UNDATED"] {
        let p = partitions(&env, table);
        assert_eq!(p["spec"].as_array().map(Vec::len), Some(0), "{table}: {p}");
        assert_eq!(p["files"], 1, "{table}: {p}");
    }
}

#[test]
fn off_and_thresholds_disable_partitioning() {
    if !require(python_readers()) {
        return;
    }
    let env = Env::new();
    let src = source(env.path());
    env.workflow(
        "w",
        &workflow(
            &src,
            "partition = \"off\"\npartition_min_rows_per_day = 1",
            "[table.SMALL]\npartition = \"auto\"\npartition_min_rows = 999\n",
        ),
    );
    run_ok(&env, "w");
    env.check_lake(&src, "ev", None);
    assert_eq!(partitions(&env, "EVENTS")["spec"], serde_json::json!([]));
    // A table can turn partitioning back on and lower its threshold.
    assert_day_spec(&partitions(&env, "SMALL"), "CREATED");

    let env = Env::new();
    env.workflow(
        "w",
        &workflow(
            &src,
            "partition = \"auto\"",
            "[table.EVENTS]\npartition = \"off\"\n",
        ),
    );
    run_ok(&env, "w");
    assert_eq!(partitions(&env, "EVENTS")["spec"], serde_json::json!([]));
    // The [lake] default is auto, which weighs rows per day: EVENTS (2 a day) and SMALL (1 a
    // day) are under the default 1000 a day, so nothing is partitioned, and the notes say why.
    let env = Env::new();
    env.workflow("w", &workflow(&src, "", ""));
    run_ok(&env, "w");
    for table in ["EVENTS", "SMALL"] {
        assert_eq!(partitions(&env, table)["spec"], serde_json::json!([]));
    }
    let note = env.task("w", "EVENTS", "extract")["outputs"]["note"].clone();
    assert!(
        note.as_str().is_some_and(|n| n.contains(&format!(
            "not partitioned: {} rows over {DAYS} days of DAY (2 a day",
            2 * DAYS
        ))),
        "{note}"
    );
}

#[test]
fn a_bad_partition_column_fails_that_table_with_its_name() {
    let env = Env::new();
    let src = source(env.path());
    env.workflow(
        "w",
        &workflow(
            &src,
            "",
            "[table.EVENTS]\npartition = \"NOPE\"\n\n[table.SMALL]\npartition = \"ID\"\n",
        ),
    );
    let plan = env.dag(&["plan", "w"]);
    assert!(plan.stdout.contains("table.EVENTS.partition"), "{plan:?}");
    let r = env.dag(&["run", "w"]);
    assert_ne!(r.code, Some(0), "{r:?}");
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("table.EVENTS.partition: table EVENTS has no column \"NOPE\" (its date/datetime columns: DAY, STAMP)"),
        "{all}"
    );
    assert!(
        all.contains(
            "column ID of table SMALL is int64; day partitions need a date or datetime column"
        ),
        "{all}"
    );
    // The other table still moved.
    assert_eq!(env.task("w", "UNDATED", "verify")["status"], "succeeded");
    assert_eq!(env.task("w", "EVENTS", "extract")["status"], "failed");
}

#[test]
fn unordered_days_with_two_open_writers_and_a_null_partition() {
    if !require(python_readers()) {
        return;
    }
    let env = Env::new();
    let src = source(env.path());
    env.workflow(
        "w",
        &workflow(
            &src,
            "open_partitions = 2",
            "[table.EVENTS]\npartition = \"STAMP\"\nchunk_rows = 1000\n",
        ),
    );
    run_ok(&env, "w");
    env.check_lake(&src, "ev", None);
    let p = partitions(&env, "EVENTS");
    assert_day_spec(&p, "STAMP");
    assert_eq!(p["null_partition"], true, "{p}");
    // 1972 dated rows on random days of 1096: most days are hit.
    let n = p["partitions"].as_u64().unwrap();
    assert!(n > 700 && n <= DAYS + 1, "{p}");
}

#[test]
fn a_killed_partitioned_extract_resumes_exactly() {
    if !require(python_readers()) {
        return;
    }
    let env = Env::new();
    let src = source(env.path());
    env.workflow(
        "w",
        &workflow(
            &src,
            "open_partitions = 3",
            "[table.EVENTS]\npartition = \"STAMP\"\nchunk_rows = 500\nconnections = 1\n",
        ),
    );
    let r = env.dag_fault(&["run", "w"], "kill:after_chunk:EVENTS:1");
    assert_eq!(r.signal, Some(9), "expected a SIGKILL: {r:?}");
    let r = env.dag(&["run", "w"]);
    assert_eq!(r.code, Some(0), "the resumed run must finish: {r:?}");
    assert!(r.stderr.contains("resuming run"), "{r:?}");
    let t = env.task("w", "EVENTS", "extract");
    assert_eq!(t["outputs"]["chunks_reused"], 2, "{t}");
    assert_eq!(t["outputs"]["schema"]["partition"], "STAMP", "{t}");
    env.check_lake(&src, "ev", None);
    let p = partitions(&env, "EVENTS");
    assert_day_spec(&p, "STAMP");
    // Every data file under the run's directory is one the snapshot holds: nothing of the
    // killed attempt is left in the partition directories.
    let (run, _) = env.status("w");
    let dir = env
        .state()
        .join("warehouse/ev/EVENTS")
        .join(run["id"].as_str().unwrap())
        .join("data");
    let mut on_disk = 0;
    for d in std::fs::read_dir(&dir).unwrap().flatten() {
        on_disk += std::fs::read_dir(d.path()).unwrap().count() as u64;
    }
    assert_eq!(Some(on_disk), p["files"].as_u64(), "{p}");
}

/// The other corners of the lake: day-partitioned and unpartitioned tables in a warehouse on a
/// real S3 server (moto), with the SQL catalog on PostgreSQL, read by pyiceberg and DuckDB.
#[test]
fn partitioned_tables_on_s3_with_a_postgres_catalog() {
    use crate::s3::{BUCKET, KEY_ID, S3Server, SECRET, httpfs, moto};
    if !require(python_readers()) || !require(moto()) || !require(httpfs()) {
        return;
    }
    let Some(db) = crate::lakehouse::PgDb::create() else {
        return;
    };
    let s3 = S3Server::start();
    let env = Env::new();
    let src = source(env.path());
    let lake = format!(
        "uri = \"{}\"\nwarehouse = \"s3://{BUCKET}/lake\"\npartition = \"auto\"\n\
         partition_min_rows_per_day = 2\n\n\
         [lake.s3]\nendpoint = \"{}\"\npath_style = true",
        db.uri(),
        s3.endpoint()
    );
    env.workflow(
        "w",
        &workflow(&src, &lake, "[table.EVENTS]\nchunk_rows = 700\n"),
    );
    for round in 1..=2 {
        let r: Ran = env
            .command(&["run", "w"], None)
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .output()
            .unwrap()
            .into();
        assert_eq!(r.code, Some(0), "round {round}: {r:?}");
    }
    assert!(
        !env.state().join("warehouse").exists(),
        "files went to local disk"
    );
    let parquet = s3
        .keys("lake/ev/EVENTS/")
        .into_iter()
        .filter(|k| k.contains("/data/DAY_day=") && k.ends_with(".parquet"))
        .count();
    assert!(
        parquet >= DAYS as usize,
        "{parquet} partitioned data files in the bucket"
    );
    let out = env
        .lake_check("ev")
        .catalog(db.uri())
        .s3(
            &format!("s3://{BUCKET}/lake"),
            &s3.endpoint(),
            KEY_ID,
            SECRET,
        )
        .arg("--source")
        .arg(&src)
        .run();
    assert!(out.contains("all 3 tables match the source"), "{out}");
}
