//! The StarRocks target against the StarRocks test double (`tests/doubles/src/starrocks`, itself
//! checked with curl, the mariadb client and Python's csv module in `starrocks_double.rs`):
//! Stream Load through the FE's 307 with authorization re-sent, deterministic labels, bodies
//! within `request_bytes`, exactly-once when a response is lost, Publish Timeout, a failed
//! request, filtered rows, kills at every load point, `load = "lake"`, and verify catching a row
//! changed in the target.

use std::collections::HashSet;

use serde_json::Value;

use crate::starrocks::{DoubleConfig, Fault, PortKind, StarRocksDouble};
use crate::support::*;
use crate::tds::fixtures;

const SIGKILL: i32 = 9;
const DB: &str = "wz";
const BODY_MAX: u64 = 64 * 1024;

fn workflow(sr: &StarRocksDouble, target_extra: &str, tail: &str) -> String {
    let src = small_demo_source();
    let sqlite = small_workflow(&src);
    let (head, rest) = sqlite.split_once("[target]").unwrap();
    let limits = rest.split_once("[limits]").unwrap().1;
    format!(
        "verify = \"full\"\n{head}[target]\nkind = \"starrocks\"\nurl = \"{}\"\nhttp_url = \"{}\"\n\
         database = \"{DB}\"\nreplication_num = 1\nrequest_bytes = {BODY_MAX}\n{target_extra}\n\n\
         [limits]{limits}\n{tail}",
        sr.mysql_url(),
        sr.http_url()
    )
}

fn double() -> StarRocksDouble {
    StarRocksDouble::start(DoubleConfig::default())
}

fn run_id(env: &Env, wf: &str) -> String {
    env.status(wf).0["id"].as_str().unwrap().to_string()
}

/// Every table in the double holds exactly the rows extracted, verified `full`, once each.
fn assert_exact(sr: &StarRocksDouble, env: &Env, wf: &str) {
    let (run, tasks) = env.status(wf);
    assert_eq!(run["status"], "succeeded", "{tasks:?}");
    let mut names = Vec::new();
    for t in &tasks {
        let table = t["table"].as_str().unwrap();
        match t["stage"].as_str().unwrap() {
            "verify" => {
                let o = &t["outputs"];
                assert_eq!(o["verify_mode"], "full", "{t}");
                assert_eq!(o["target"], o["digest"], "{t}");
            }
            "extract" => {
                names.push(table.to_string());
                let rows = t["outputs"]["digest"]["rows"].as_u64().unwrap() as usize;
                let stored = sr.rows_text(DB, table);
                assert_eq!(stored.len(), rows, "{table} rows in the double");
                if let Some(k) = key_of(table) {
                    let ki = sr
                        .columns(DB, table)
                        .iter()
                        .position(|c| c.name == k)
                        .unwrap();
                    let keys: HashSet<&String> = stored.iter().map(|r| &r[ki]).collect();
                    assert_eq!(keys.len(), rows, "{table}: duplicate keys in the double");
                }
            }
            _ => {}
        }
    }
    // No staging table is left.
    let mut tables = sr.tables(DB);
    tables.sort();
    names.sort();
    assert_eq!(tables, names);
}

fn key_of(table: &str) -> Option<&'static str> {
    match table {
        "AGENTSVES" => Some("AGENT_ID"),
        "TRANSACTIONS" => Some("TXN_ID"),
        "COUNTRIES" => Some("COUNTRY_ID"),
        _ => None,
    }
}

fn be_loads(sr: &StarRocksDouble) -> Vec<crate::starrocks::RequestLog> {
    sr.requests()
        .into_iter()
        .filter(|r| r.port == PortKind::Be && r.method == "PUT")
        .collect()
}

#[test]
fn starrocks_stream_load_follows_the_redirect_with_labels_and_bounded_bodies() {
    let sr = double();
    let env = Env::new();
    env.workflow("w", &workflow(&sr, "", ""));
    let r = env.dag(&["run", "w"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_exact(&sr, &env, "w");
    let run = run_id(&env, "w");

    let reqs = sr.requests();
    let fe: Vec<_> = reqs
        .iter()
        .filter(|r| r.port == PortKind::Fe && r.method == "PUT")
        .collect();
    let be = be_loads(&sr);
    assert!(
        be.len() > 20,
        "AGENTSVES needs many 64 KiB bodies: {}",
        be.len()
    );
    // Every load went to the FE first, was redirected, and reached the BE with its
    // authorization, 100-continue and a body within the limit.
    assert_eq!(fe.len(), be.len());
    assert!(
        fe.iter()
            .all(|r| r.outcome == "Redirect" && r.auth_valid && r.expect_continue)
    );
    assert!(
        be.iter()
            .all(|r| r.auth_valid && r.expect_continue && r.outcome == "Success")
    );
    assert!(be.iter().all(|r| r.body_len <= BODY_MAX && r.body_len > 0));
    // Labels are the deterministic (workflow, run, table, n), each used once.
    let load = env.task("w", "AGENTSVES", "load");
    let recorded = load["outputs"]["requests"].as_array().unwrap();
    for (n, q) in recorded.iter().enumerate() {
        let want = dag::targets::starrocks::names::label("w", &run, "AGENTSVES", n as u32);
        assert_eq!(q["label"], want.as_str());
        assert_eq!(q["outcome"], "loaded");
    }
    let labels: HashSet<_> = be.iter().map(|r| r.label.clone().unwrap()).collect();
    assert_eq!(labels.len(), be.len(), "a label was sent twice");

    // The DDL followed the mapping and the table is the published one.
    let ddl = sr.ddl(DB, "AGENTSVES");
    assert!(ddl.contains("DUPLICATE KEY(`AGENT_ID`)"), "{ddl}");
    assert!(ddl.contains("DISTRIBUTED BY HASH(`AGENT_ID`)"), "{ddl}");
    assert!(ddl.contains("\"replication_num\" = \"1\""), "{ddl}");
    assert_eq!(sr.table_comment(DB, "AGENTSVES"), format!("dag run {run}"));
    // A keyless table is distributed at random.
    assert!(
        sr.ddl(DB, "CURRENCY_RATES")
            .contains("DISTRIBUTED BY RANDOM")
    );

    // A second full run swaps in a new copy: still exactly the source's rows.
    let r = env.dag(&["run", "w"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_exact(&sr, &env, "w");
    assert!(
        sr.queries().iter().any(|q| q.contains("SWAP WITH")),
        "the second run must swap"
    );
}

#[test]
fn starrocks_lost_response_publish_timeout_and_failed_request_load_exactly_once() {
    let sr = double();
    // The next three loads: one loses its answer after committing, one answers Publish Timeout,
    // one fails.
    sr.inject(Fault::LoseResponseAfterCommit { label: None });
    sr.inject(Fault::PublishTimeout {
        label: None,
        visible_after_polls: 2,
    });
    sr.inject(Fault::FailRequest { label: None });
    let env = Env::new();
    env.workflow(
        "w",
        &workflow(&sr, "", "[tables]\ninclude = [\"AGENTSVES\"]\n"),
    );
    let r = env.dag(&["run", "w"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(sr.pending_faults().is_empty(), "every fault fired");
    assert_exact(&sr, &env, "w");
    let outcomes: Vec<String> = be_loads(&sr).into_iter().map(|r| r.outcome).collect();
    for o in ["ResponseLost", "Publish Timeout", "Fail"] {
        assert!(
            outcomes.iter().any(|x| x == o),
            "{o} not seen: {outcomes:?}"
        );
    }
    // The lost answer was resolved by asking StarRocks, not by loading twice.
    assert!(
        sr.requests()
            .iter()
            .any(|r| r.target.contains("get_load_state") || r.outcome == "Label Already Exists"),
        "{:?}",
        sr.requests()
    );
    let load = env.task("w", "AGENTSVES", "load");
    let found = load["outputs"]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["outcome"] == "found")
        .count();
    assert!(found <= 1, "{load}");
}

#[test]
fn starrocks_filtered_row_fails_the_load_naming_the_error_url() {
    let sr = double();
    // Create the table by hand with a column too narrow for the data.
    let env = Env::new();
    env.workflow(
        "w",
        &workflow(&sr, "", "[tables]\ninclude = [\"COUNTRIES\"]\n"),
    );
    let r = env.dag(&["run", "w"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let ddl = sr.ddl(DB, "COUNTRIES");
    // The same table in another database, with the country name shrunk to 2 bytes.
    let name_col = sr
        .columns(DB, "COUNTRIES")
        .into_iter()
        .find(|c| c.name == "NAME")
        .expect("NAME column");
    let narrow = ddl
        .replace(&format!("`{DB}`.`COUNTRIES`"), "`narrow`.`COUNTRIES`")
        .replace(
            &format!("`NAME` {}", name_col.type_text),
            "`NAME` VARCHAR(2)",
        );
    assert!(narrow.contains("`NAME` VARCHAR(2)"), "{narrow}");
    sr.execute("CREATE DATABASE IF NOT EXISTS `narrow`")
        .unwrap();
    sr.execute(&narrow).unwrap();
    let env2 = Env::new();
    env2.workflow(
        "w",
        &workflow(
            &sr,
            "create_tables = false",
            "[tables]\ninclude = [\"COUNTRIES\"]\n",
        )
        .replace(&format!("database = \"{DB}\""), "database = \"narrow\""),
    );
    let r = env2.dag(&["run", "w"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    let load = env2.task("w", "COUNTRIES", "load");
    assert_eq!(load["status"], "failed", "{load}");
    let err = load["last_error"].as_str().unwrap();
    let url = format!("http://127.0.0.1:{}/api/_load_error_log", sr.be_http_port());
    assert!(
        err.contains(&url),
        "the error must name the ErrorURL: {err}"
    );
    assert_eq!(load["attempts"], 1, "filtered rows are not retried: {load}");
    // Nothing reached the table.
    assert!(sr.rows_text("narrow", "COUNTRIES").is_empty());
}

#[test]
fn starrocks_sigkill_at_every_load_point_then_run_is_exact() {
    for point in [
        "before_load_request:AGENTSVES:3",
        "after_load_request:AGENTSVES:3",
        "before_publish:AGENTSVES",
        "after_swap:AGENTSVES",
    ] {
        let sr = double();
        let env = Env::new();
        env.workflow(
            "w",
            &workflow(
                &sr,
                "",
                "[tables]\ninclude = [\"AGENTSVES\", \"COUNTRIES\"]\n",
            ),
        );
        if point.starts_with("after_swap") {
            // A swap needs a table to swap with: publish one run first.
            let r = env.dag(&["run", "w"]);
            assert_eq!(r.code, Some(0), "{r:?}");
        }
        let r = env.dag_fault(&["run", "w"], &format!("kill:{point}"));
        assert_eq!(r.signal, Some(SIGKILL), "expected a kill at {point}: {r:?}");
        let r = env.dag(&["run", "w"]);
        assert_eq!(r.code, Some(0), "resume after {point}: {r:?}");
        assert_exact(&sr, &env, "w");
        if point.contains("_load_request:") {
            // Requests 0..=2 were recorded before the kill and not sent again.
            let load = env.task("w", "AGENTSVES", "load");
            assert!(
                load["outputs"]["chunks_already_loaded"].as_u64().unwrap() >= 3,
                "{load}"
            );
        }
    }
}

#[test]
fn starrocks_row_changed_after_load_is_reported_by_key() {
    let sr = double();
    let env = Env::new();
    env.workflow(
        "w",
        &workflow(&sr, "", "[tables]\ninclude = [\"AGENTSVES\"]\n"),
    );
    let r = env.dag_fault(&["run", "w"], "kill:before_verify:AGENTSVES");
    assert_eq!(r.signal, Some(SIGKILL), "{r:?}");
    let cols = sr.columns(DB, "AGENTSVES");
    let ki = cols.iter().position(|c| c.name == "AGENT_ID").unwrap();
    let row = sr
        .rows_text(DB, "AGENTSVES")
        .iter()
        .position(|r| r[ki] == "4242")
        .expect("AGENT_ID 4242 loaded");
    sr.set_cell(
        DB,
        "AGENTSVES",
        row,
        "AGENT_NAME",
        Some(b"tampered".to_vec()),
    );
    let r = env.dag(&["run", "w"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    let verify = env.task("w", "AGENTSVES", "verify");
    let err = verify["last_error"].as_str().unwrap();
    assert!(err.contains("AGENT_ID=4242 (different values)"), "{err}");
    assert!(err.contains("target (starrocks"), "{err}");
}

#[test]
fn starrocks_lake_mode_lets_starrocks_read_the_lake() {
    if !require(python_readers()) {
        return;
    }
    let sr = double();
    let env = Env::new();
    let state = env.state();
    sr.set_catalog_reader(move |catalog, ns, table, columns| {
        if catalog != "lake" {
            return Err(format!("unknown catalog {catalog}"));
        }
        let out = python_command()
            .arg(repo().join("tests/readers/dump_table.py"))
            .arg("--catalog")
            .arg(state.join("catalog.db"))
            .arg("--warehouse")
            .arg(state.join("warehouse"))
            .args([
                "--namespace",
                ns,
                "--table",
                table,
                "--columns",
                &columns.join(","),
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let rows: Vec<Vec<Value>> =
            serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        Ok(rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|c| match c {
                        Value::Null => None,
                        Value::String(s) => Some(s.into_bytes()),
                        Value::Object(o) => Some(
                            (0..o["hex"].as_str().unwrap().len() / 2)
                                .map(|i| {
                                    u8::from_str_radix(
                                        &o["hex"].as_str().unwrap()[2 * i..2 * i + 2],
                                        16,
                                    )
                                    .unwrap()
                                })
                                .collect(),
                        ),
                        other => Some(other.to_string().into_bytes()),
                    })
                    .collect()
            })
            .collect())
    });
    // The external catalog a StarRocks admin would have created over the lake.
    sr.add_catalog("lake", &[("type", "iceberg")]);
    sr.inject(Fault::LoseInsertResponse { label: None });
    env.workflow(
        "w",
        &workflow(
            &sr,
            "load = \"lake\"\nlake_catalog = \"lake\"",
            "[tables]\ninclude = [\"AGENTSVES\", \"COUNTRIES\"]\n",
        ),
    );
    let r = env.dag(&["run", "w"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_exact(&sr, &env, "w");
    assert!(be_loads(&sr).is_empty(), "no Stream Load in lake mode");
    let inserts: Vec<String> = sr
        .queries()
        .into_iter()
        .filter(|q| q.starts_with("INSERT INTO"))
        .collect();
    assert!(
        inserts
            .iter()
            .all(|q| q.contains("WITH LABEL") && q.contains("FROM `lake`.`worldzone`.")),
        "{inserts:?}"
    );
    // The lost INSERT answer was resolved by the label's state: one job per table.
    let jobs = sr.loads();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
}

#[test]
fn starrocks_sql_server_every_type_verified_full() {
    let types = fixtures::types_table();
    let srv = crate::mssql::server(vec![types]);
    let sr = double();
    let wf = |extra: &str| {
        let target = format!(
            "\n[target]\nkind = \"starrocks\"\nurl = \"{}\"\nhttp_url = \"{}\"\n\
             database = \"{DB}\"\nreplication_num = 1\n{extra}",
            sr.mysql_url(),
            sr.http_url()
        );
        crate::mssql::workflow(srv.port(), "Pa55word!", &target)
    };
    // The fixture's 5 MB nvarchar(max) value cannot enter a StarRocks VARCHAR (1 MiB at most):
    // the load fails naming the column instead of truncating it.
    let env = Env::new();
    env.workflow("wz", &wf(""));
    let r = env.dag(&["run", "wz"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    let load = env.task("wz", "ALLTYPES", "load");
    let err = load["last_error"].as_str().unwrap();
    assert!(err.contains("C_NVARCHARMAX"), "{err}");
    assert_eq!(
        load["attempts"], 1,
        "a value too long is not retried: {load}"
    );
    // Without that column, every other type reaches StarRocks and reads back identical.
    let env = Env::new();
    env.workflow(
        "wz",
        &wf("\n[table.ALLTYPES]\nexclude_columns = [\"C_NVARCHARMAX\"]\n"),
    );
    let r = env.dag(&["run", "wz"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let verify = env.task("wz", "ALLTYPES", "verify");
    assert_eq!(verify["status"], "succeeded", "{verify}");
    assert_eq!(verify["outputs"]["target"], verify["outputs"]["digest"]);
    assert_eq!(sr.rows_text(DB, "ALLTYPES").len(), 5);
    let ddl = sr.ddl(DB, "ALLTYPES");
    assert!(ddl.contains("SMALLINT"), "tinyint maps to SMALLINT: {ddl}");
}

// ---- Incremental runs, driving the target's API directly ----

mod incremental {
    use std::collections::HashMap;

    use dag::config::{LoadMode, Secret, StarRocksConfig, TableModel};
    use dag::error::Error;
    use dag::model::TableInfo;
    use dag::store::{LoadRequestRecord, RequestOutcome};
    use dag::targets::starrocks::{LoadJob, StarRocksTarget};

    use super::*;
    use crate::starrocks::KeyModel;

    fn config(sr: &StarRocksDouble, load: LoadMode) -> StarRocksConfig {
        StarRocksConfig {
            url: Secret::new(sr.mysql_url()),
            http_url: Some(sr.http_url()),
            user: None,
            password: None,
            database: DB.into(),
            create_tables: true,
            // Keyed incremental tables must become PRIMARY KEY whatever this says.
            model: TableModel::Duplicate,
            distribution: None,
            buckets: None,
            replication_num: Some(1),
            load,
            lake_catalog: Some("lake".into()),
            // A few rows per request, so a load is several labelled requests.
            request_bytes: 12,
            max_filter_ratio: "0".into(),
            timeout_secs: 60,
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn job<'a>(
        run: &'a str,
        info: &'a TableInfo,
        files: &'a [String],
        io: &'a iceberg::io::FileIO,
    ) -> LoadJob<'a> {
        LoadJob {
            workflow: "w",
            run,
            info,
            ov: None,
            files,
            io,
            batch_rows: 2,
            scale: 1.0,
            lake_namespace: "ns".into(),
        }
    }

    /// The table's rows as (ID, NAME) sorted; `\N` for NULL.
    fn rows(sr: &StarRocksDouble, table: &str) -> Vec<(i64, String)> {
        let mut r: Vec<(i64, String)> = sr
            .rows_text(DB, table)
            .into_iter()
            .map(|r| (r[0].parse().unwrap(), r[1].clone()))
            .collect();
        r.sort();
        r
    }

    fn owned(rows: &[(i64, &str)]) -> Vec<(i64, String)> {
        rows.iter().map(|(i, n)| (*i, n.to_string())).collect()
    }

    /// How often each label's rows became visible.
    fn visible_loads(sr: &StarRocksDouble) -> HashMap<String, usize> {
        let mut n = HashMap::new();
        for l in sr.loads() {
            if l.state == crate::starrocks::LabelState::Visible {
                *n.entry(l.label).or_default() += 1;
            }
        }
        n
    }

    /// Runs `load_append`, failing the way a killed process would right after request
    /// `crash_after` was sent and before its outcome was recorded; returns the requests as the
    /// state store last held them.
    fn append_crashing(
        rt: &tokio::runtime::Runtime,
        t: &StarRocksTarget,
        job: LoadJob<'_>,
        crash_after: usize,
    ) -> Vec<LoadRequestRecord> {
        let mut saved = Vec::new();
        let mut calls = 0;
        let mut requests = Vec::new();
        let e = rt
            .block_on(t.load_append(job, &mut requests, |r| {
                calls += 1;
                // Two records per request: pending, then its outcome.
                if calls == 2 * (crash_after + 1) {
                    return Err(Error::internal("killed"));
                }
                saved = r.to_vec();
                Ok(())
            }))
            .unwrap_err();
        assert!(e.message.contains("killed"), "{e}");
        saved
    }

    #[test]
    fn starrocks_incremental_run_upserts_into_a_primary_key_table_once() {
        let sr = double();
        let dir = tempfile::tempdir().unwrap();
        let io = iceberg::io::FileIO::new_with_fs();
        // One runtime per test: the target's connection pool lives on it.
        let rt = rt();
        let t = StarRocksTarget::new(&config(&sr, LoadMode::Stream)).unwrap();

        // Run 1: the full refresh of an incremental table creates it as PRIMARY KEY.
        let full = incremental_table("T", true, false);
        let f = [id_name_parquet(
            dir.path(),
            "r1.parquet",
            &[(1, Some("one")), (2, Some("two")), (3, None)],
        )];
        let mut requests = Vec::new();
        rt.block_on(t.load(job("run1", &full, &f, &io), &mut requests, |_| Ok(())))
            .unwrap();
        let def = sr.table_info(DB, "T").unwrap();
        assert_eq!(def.model, KeyModel::Primary, "{}", def.ddl);
        assert_eq!(rows(&sr, "T"), owned(&[(1, "one"), (2, "two"), (3, "\\N")]));

        // Run 2 appends: row 2 and 3 changed, 4 and 5 new, over two files and several
        // requests; the process dies after request 1 was loaded, before its outcome was kept.
        let inc = incremental_table("T", true, true);
        let files = [
            id_name_parquet(
                dir.path(),
                "r2a.parquet",
                &[(2, Some("TWO")), (3, Some("three")), (4, Some("four"))],
            ),
            id_name_parquet(dir.path(), "r2b.parquet", &[(5, Some("five"))]),
        ];
        let mut requests = append_crashing(&rt, &t, job("run2", &inc, &files, &io), 1);
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[1].outcome, RequestOutcome::Pending);
        let pending = requests[1].label.clone();
        let s = rt
            .block_on(t.load_append(job("run2", &inc, &files, &io), &mut requests, |_| Ok(())))
            .unwrap();
        // The pending request was answered by its label, not loaded again.
        assert_eq!(requests[1].outcome, RequestOutcome::Found);
        assert!(requests.len() >= 3, "{requests:?}");
        assert_eq!(s.found, 2, "{s:?}");
        assert_eq!(s.loaded as usize, requests.len() - 2);
        let want = owned(&[
            (1, "one"),
            (2, "TWO"),
            (3, "three"),
            (4, "four"),
            (5, "five"),
        ]);
        assert_eq!(rows(&sr, "T"), want);
        let visible = visible_loads(&sr);
        assert_eq!(visible[&pending], 1);
        for r in &requests {
            assert_eq!(visible[&r.label], 1, "label {} applied twice", r.label);
            assert!(r.label.contains("run2"), "{}", r.label);
        }
        // No staging table: the rows went straight into the live table.
        assert_eq!(sr.tables(DB), vec!["T".to_string()]);

        // A repeat of the whole load (a retry after the state was written) sends nothing new.
        let before = be_loads(&sr).len();
        let s = rt
            .block_on(t.load_append(job("run2", &inc, &files, &io), &mut requests, |_| Ok(())))
            .unwrap();
        assert_eq!((s.loaded, s.found as usize), (0, requests.len()));
        assert_eq!(be_loads(&sr).len(), before);
        assert_eq!(rows(&sr, "T"), want);
    }

    #[test]
    fn starrocks_incremental_run_of_a_keyless_table_appends_each_request_once() {
        let sr = double();
        let dir = tempfile::tempdir().unwrap();
        let io = iceberg::io::FileIO::new_with_fs();
        // One runtime per test: the target's connection pool lives on it.
        let rt = rt();
        let t = StarRocksTarget::new(&config(&sr, LoadMode::Stream)).unwrap();
        // No table yet (the first run was not a full refresh): the append creates it.
        let inc = incremental_table("K", false, true);
        let files = [id_name_parquet(
            dir.path(),
            "k.parquet",
            &[
                (1, Some("a")),
                (1, Some("a")),
                (2, Some("b")),
                (3, Some("c")),
            ],
        )];
        let mut requests = append_crashing(&rt, &t, job("run1", &inc, &files, &io), 0);
        assert_eq!(requests.len(), 1);
        rt.block_on(t.load_append(job("run1", &inc, &files, &io), &mut requests, |_| Ok(())))
            .unwrap();
        assert_eq!(sr.table_info(DB, "K").unwrap().model, KeyModel::Duplicate);
        // Every row once, the duplicate source row included; none twice.
        assert_eq!(
            rows(&sr, "K"),
            owned(&[(1, "a"), (1, "a"), (2, "b"), (3, "c")])
        );
        assert!(visible_loads(&sr).values().all(|n| *n == 1));
    }

    #[test]
    fn starrocks_incremental_run_refuses_a_duplicate_key_table_and_lake_mode() {
        let sr = double();
        let dir = tempfile::tempdir().unwrap();
        let io = iceberg::io::FileIO::new_with_fs();
        // One runtime per test: the target's connection pool lives on it.
        let rt = rt();
        sr.execute(&format!("CREATE DATABASE {DB}")).unwrap();
        sr.execute(&format!(
            "CREATE TABLE {DB}.T (ID BIGINT NOT NULL, NAME VARCHAR(20)) DUPLICATE KEY(ID) \
             DISTRIBUTED BY HASH(ID) PROPERTIES (\"replication_num\" = \"1\")"
        ))
        .unwrap();
        let inc = incremental_table("T", true, true);
        let files = [id_name_parquet(dir.path(), "a.parquet", &[(1, Some("x"))])];
        let t = StarRocksTarget::new(&config(&sr, LoadMode::Stream)).unwrap();
        let e = rt
            .block_on(t.load_append(job("run2", &inc, &files, &io), &mut Vec::new(), |_| Ok(())))
            .unwrap_err();
        for part in [
            "wz.T",
            "DUPLICATE KEY",
            "table T",
            "(ID)",
            "PRIMARY KEY",
            "full refresh",
        ] {
            assert!(e.message.contains(part), "{part}: {e}");
        }
        assert!(be_loads(&sr).is_empty(), "nothing may be sent");

        let t = StarRocksTarget::new(&config(&sr, LoadMode::Lake)).unwrap();
        let e = rt
            .block_on(t.load_append(job("run2", &inc, &files, &io), &mut Vec::new(), |_| Ok(())))
            .unwrap_err();
        assert!(e.message.contains("load = \"stream\""), "{e}");
        assert!(e.message.contains("table T"), "{e}");
        assert!(sr.rows(DB, "T").is_empty());
    }
}
