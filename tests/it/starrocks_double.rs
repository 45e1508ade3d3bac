//! Cross-checks the StarRocks test double (tests/doubles/src/starrocks) with clients we did not
//! write: curl driving Stream Load exactly as StarRocks documents it, the mariadb CLI and
//! mysql_async on the MySQL port, and Python's csv module as an independent reader of the CSV
//! dialect. If they all see what a StarRocks cluster would show them, loader tests against the
//! double exercise the real protocol.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::starrocks::{
    Cell, DoubleConfig, Fault, KeyModel, LabelState, PortKind, SrType, StarRocksDouble,
};
use crate::support;

const DB: &str = "db";

fn curl_ok() -> Result<(), String> {
    match Command::new("curl").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("curl missing (apt-get install curl)".into()),
    }
}

fn mariadb_ok() -> Result<(), String> {
    match Command::new("mariadb").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("mariadb client missing (apt-get install mariadb-client)".into()),
    }
}

fn python_ok() -> Result<(), String> {
    support::python_can("Python's csv and json modules", "import csv, json")
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run(program: &str, args: &[&str]) -> Out {
    let o = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn json(out: &Out) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// A double with database `db` and the given tables.
fn double_with(tables: &[&str]) -> StarRocksDouble {
    let d = StarRocksDouble::start(DoubleConfig::default());
    d.execute("CREATE DATABASE IF NOT EXISTS `db`").unwrap();
    for t in tables {
        d.execute(t).unwrap_or_else(|e| panic!("{t}: {e}"));
    }
    d
}

const ORDERS: &str = "CREATE TABLE IF NOT EXISTS `db`.`orders` (
    `id` INT NOT NULL COMMENT 'order id',
    `customer` VARCHAR(12) NULL,
    `amount` DECIMAL(10,2),
    `placed` DATETIME
) ENGINE=OLAP PRIMARY KEY(`id`) COMMENT 'orders of customers'
DISTRIBUTED BY HASH(`id`) BUCKETS 1 PROPERTIES (\"replication_num\" = \"1\")";

fn write_file(dir: &Path, name: &str, body: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().into_owned()
}

/// `curl --location-trusted -u root:secret -H label:.. -H Expect:100-continue ...` as in
/// StarRocks' STREAM_LOAD documentation.
fn curl_load(d: &StarRocksDouble, table: &str, label: &str, file: &str, extra: &[&str]) -> Out {
    curl_load_in(d, DB, table, label, file, extra)
}

/// [`curl_load`] into database `db`.
fn curl_load_in(
    d: &StarRocksDouble,
    db: &str,
    table: &str,
    label: &str,
    file: &str,
    extra: &[&str],
) -> Out {
    let url = format!("{}/api/{db}/{table}/_stream_load", d.http_url());
    let label_h = format!("label:{label}");
    let mut args = vec![
        "-sS",
        "--location-trusted",
        "-u",
        "root:secret",
        "-H",
        label_h.as_str(),
        "-H",
        "Expect:100-continue",
        "-H",
        "column_separator:,",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-T", file, "-XPUT", url.as_str()]);
    run("curl", &args)
}

fn text_rows(rows: &[Vec<Cell>]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Some(v) => String::from_utf8_lossy(v).into_owned(),
                    None => "\\N".into(),
                })
                .collect()
        })
        .collect()
}

#[test]
fn curl_stream_load_as_documented() {
    if !support::require(curl_ok()) {
        return;
    }
    let d = double_with(&[ORDERS]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "data.csv",
        b"1,alice,10.5,2024-01-01 10:00:00\n2,\\N,-0.25,2024-02-29 23:59:59.000001\n",
    );
    let out = curl_load(&d, "orders", "l1", &file, &[]);
    let v = json(&out);
    assert_eq!(v["Status"], "Success", "{out:?}");
    assert_eq!(v["Label"], "l1");
    assert_eq!(v["NumberTotalRows"], 2);
    assert_eq!(v["NumberLoadedRows"], 2);
    assert_eq!(v["NumberFilteredRows"], 0);
    assert_eq!(v["LoadBytes"], std::fs::metadata(&file).unwrap().len());
    assert!(v["TxnId"].as_i64().unwrap() > 0);
    assert!(v.get("ErrorURL").is_none());
    assert_eq!(
        text_rows(&d.rows(DB, "orders")),
        vec![
            vec!["1", "alice", "10.50", "2024-01-01 10:00:00"],
            vec!["2", "\\N", "-0.25", "2024-02-29 23:59:59.000001"],
        ]
    );
    // curl followed the 307 with its credentials; the FE never read the body.
    let reqs = d.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].port, PortKind::Fe);
    assert_eq!(reqs[0].http_status, 307);
    assert_eq!(reqs[0].body_len, 0);
    assert!(reqs[0].expect_continue && reqs[0].auth_valid);
    assert_eq!(reqs[1].port, PortKind::Be);
    assert_eq!(reqs[1].target, "/api/db/orders/_stream_load");
    assert!(reqs[1].auth_valid && reqs[1].expect_continue);
    assert_eq!(reqs[1].body_len, std::fs::metadata(&file).unwrap().len());
    assert_eq!(reqs[1].outcome, "Success");
    assert_eq!(d.label_state(DB, "l1"), LabelState::Visible);
}

#[test]
fn curl_without_location_trusted_is_refused_at_the_be() {
    if !support::require(curl_ok()) {
        return;
    }
    let d = double_with(&[ORDERS]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "data.csv", b"1,alice,1,2024-01-01 00:00:00\n");
    let url = format!("{}/api/{DB}/orders/_stream_load", d.http_url());
    // -L without --location-trusted: curl drops Authorization when the port changes.
    let out = run(
        "curl",
        &[
            "-sS",
            "-L",
            "-u",
            "root:secret",
            "-H",
            "label:l1",
            "-H",
            "Expect:100-continue",
            "-H",
            "column_separator:,",
            "-T",
            &file,
            "-XPUT",
            &url,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ],
    );
    assert_eq!(out.stdout, "401", "{out:?}");
    let reqs = d.requests();
    let be = reqs
        .iter()
        .find(|r| r.port == PortKind::Be)
        .expect("BE request");
    assert!(!be.auth_present && !be.auth_valid, "{be:?}");
    assert_eq!(be.body_len, 0);
    assert!(d.rows(DB, "orders").is_empty());
    assert_eq!(d.label_state(DB, "l1"), LabelState::Unknown);
    // A wrong password is refused by the FE already.
    let out = run(
        "curl",
        &[
            "-sS",
            "--location-trusted",
            "-u",
            "root:nope",
            "-H",
            "Expect:100-continue",
            "-T",
            &file,
            "-XPUT",
            &url,
            "-w",
            "\n%{http_code}",
        ],
    );
    assert!(out.stdout.ends_with("\n401"), "{out:?}");
    assert!(out.stdout.contains("Access denied"), "{out:?}");
}

#[test]
fn curl_same_label_again_is_label_already_exists() {
    if !support::require(curl_ok()) {
        return;
    }
    let d = double_with(&[ORDERS]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "data.csv", b"1,alice,1,2024-01-01 00:00:00\n");
    assert_eq!(
        json(&curl_load(&d, "orders", "l1", &file, &[]))["Status"],
        "Success"
    );
    let out = curl_load(&d, "orders", "l1", &file, &[]);
    let v = json(&out);
    assert_eq!(v["Status"], "Label Already Exists", "{out:?}");
    assert_eq!(v["ExistingJobStatus"], "FINISHED");
    assert_eq!(v["Message"], "Label [l1] has already been used.");
    assert_eq!(d.rows(DB, "orders").len(), 1);
    // The label is per database: the same label in another database is free.
    d.execute("CREATE DATABASE `db2`").unwrap();
    d.execute("CREATE TABLE `db2`.`orders` LIKE `db`.`orders`")
        .unwrap();
    let out = curl_load_in(&d, "db2", "orders", "l1", &file, &[]);
    assert_eq!(json(&out)["Status"], "Success", "{out:?}");
    // A bad label is refused before anything is loaded.
    let out = curl_load(&d, "orders", "bad.label", &file, &[]);
    let v = json(&out);
    assert_eq!(v["Status"], "Fail");
    assert!(
        v["Message"]
            .as_str()
            .unwrap()
            .contains("Label format error"),
        "{out:?}"
    );
}

#[test]
fn curl_bad_rows_fail_with_an_error_url_curl_can_read() {
    if !support::require(curl_ok()) {
        return;
    }
    let d = double_with(&[ORDERS]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "data.csv",
        "1,alice,1.5,2024-01-01 00:00:00\n2,only-three-fields,1\n\\N,bob,2,2024-01-01 00:00:00\n3,ééééééé,3,2024-01-01 00:00:00\n4,dave,4,2024-01-01 00:00:00\n"
            .as_bytes(),
    );
    let out = curl_load(&d, "orders", "l1", &file, &[]);
    let v = json(&out);
    assert_eq!(v["Status"], "Fail", "{out:?}");
    assert_eq!(v["Message"], "too many filtered rows");
    assert_eq!(v["NumberTotalRows"], 5);
    // Without strict mode the over-long name becomes NULL; two rows are filtered.
    assert_eq!(v["NumberFilteredRows"], 2);
    let url = v["ErrorURL"].as_str().expect("ErrorURL").to_string();
    assert!(
        url.starts_with(&format!(
            "http://127.0.0.1:{}/api/_load_error_log?file=",
            d.be_http_port()
        )),
        "{url}"
    );
    assert!(d.rows(DB, "orders").is_empty(), "nothing may be loaded");
    assert_eq!(d.label_state(DB, "l1"), LabelState::Aborted);

    let log = run("curl", &["-sS", "--fail", &url]);
    assert_eq!(log.code, Some(0), "{log:?}");
    let lines: Vec<&str> = log.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{log:?}");
    assert!(
        lines[0].starts_with("Error: Value count does not match column count: expected = 4, actual = 3. Column separator: ',', Row delimiter: '\\n'"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].ends_with("Row: 2,only-three-fields,1"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("NULL value in non-nullable column 'id'"));

    // An aborted label is loaded again with the same label. In strict mode the over-long name
    // is filtered too; 3 of 5 is within a ratio of 0.6.
    let out = curl_load(
        &d,
        "orders",
        "l1",
        &file,
        &["-H", "max_filter_ratio:0.6", "-H", "strict_mode:true"],
    );
    let v = json(&out);
    assert_eq!(v["Status"], "Success", "{out:?}");
    assert_eq!(v["NumberFilteredRows"], 3);
    assert_eq!(v["NumberLoadedRows"], 2);
    let url = v["ErrorURL"].as_str().unwrap();
    let log = run("curl", &["-sS", "--fail", url]);
    assert!(
        log.stdout
            .contains("The field (name = customer, pos = 1) is out of range"),
        "{log:?}"
    );
    assert!(
        v["ErrorURL"].is_string(),
        "filtered rows keep an ErrorURL on success"
    );
    assert_eq!(
        text_rows(&d.rows(DB, "orders")),
        vec![
            vec!["1", "alice", "1.50", "2024-01-01 00:00:00"],
            vec!["4", "dave", "4.00", "2024-01-01 00:00:00"],
        ]
    );
}

#[test]
fn curl_get_load_state_answers_like_the_fe() {
    if !support::require(curl_ok()) {
        return;
    }
    let d = double_with(&[ORDERS]);
    let dir = tempfile::tempdir().unwrap();
    let good = write_file(dir.path(), "good.csv", b"1,a,1,2024-01-01 00:00:00\n");
    let bad = write_file(dir.path(), "bad.csv", b"x,a,1,2024-01-01 00:00:00\n");
    curl_load(&d, "orders", "ok1", &good, &[]);
    curl_load(&d, "orders", "bad1", &bad, &[]);
    let state = |label: &str| {
        let url = format!("{}/api/{DB}/get_load_state?label={label}", d.http_url());
        json(&run(
            "curl",
            &["-sS", "--location-trusted", "-u", "root:secret", &url],
        ))
    };
    let v = state("ok1");
    assert_eq!(
        v,
        serde_json::json!({"state": "VISIBLE", "reason": "", "status": "OK", "code": "0",
            "msg": "Success", "message": "OK"})
    );
    let v = state("bad1");
    assert_eq!(v["state"], "ABORTED");
    assert_eq!(v["reason"], "too many filtered rows");
    let v = state("never");
    assert_eq!(v["state"], "UNKNOWN");
    assert!(v.get("reason").is_none(), "{v}");
    let url = format!("{}/api/nodb/get_load_state?label=x", d.http_url());
    let v = json(&run("curl", &["-sS", "-u", "root:secret", &url]));
    assert_eq!(v["status"], "FAILED");
    assert_eq!(v["msg"], "unknown database, database=nodb");
    let url = format!("{}/api/{DB}/get_load_state?label=ok1", d.http_url());
    let out = run(
        "curl",
        &["-sS", "-o", "/dev/null", "-w", "%{http_code}", &url],
    );
    assert_eq!(out.stdout, "401");
}

#[test]
fn fe_refuses_a_load_without_expect_and_redirects_with_the_query_string() {
    if !support::require(curl_ok()) {
        return;
    }
    let d = double_with(&[ORDERS]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "data.csv", b"1,a,1,2024-01-01 00:00:00\n");
    let url = format!("{}/api/{DB}/orders/_stream_load", d.http_url());
    // `-H "Expect:"` makes curl send no Expect header at all.
    let out = run(
        "curl",
        &[
            "-sS",
            "--location-trusted",
            "-u",
            "root:secret",
            "-H",
            "Expect:",
            "-T",
            &file,
            "-XPUT",
            &url,
        ],
    );
    let v = json(&out);
    assert_eq!(v["Status"], "FAILED", "{out:?}");
    assert!(
        v["Message"]
            .as_str()
            .unwrap()
            .ends_with("There is no 100-continue header")
    );
    assert!(d.rows(DB, "orders").is_empty());

    let out = run(
        "curl",
        &[
            "-sS",
            "-u",
            "root:secret",
            "-H",
            "Expect:100-continue",
            "-T",
            &file,
            "-XPUT",
            &format!("{url}?x=1&y=a%20b"),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ],
    );
    assert_eq!(
        out.stdout,
        format!(
            "307 http://127.0.0.1:{}/api/db/orders/_stream_load?x=1&y=a%20b",
            d.be_http_port()
        ),
        "{out:?}"
    );
}

#[test]
fn injected_faults_behave_as_documented() {
    if !support::require(curl_ok()) {
        return;
    }
    let d = double_with(&[ORDERS]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "data.csv", b"1,a,1,2024-01-01 00:00:00\n");

    // Lost response: curl sees an empty reply (exit 52), but the rows are committed.
    d.inject(Fault::LoseResponseAfterCommit {
        label: Some("lost".into()),
    });
    let out = curl_load(&d, "orders", "other", &file, &[]);
    assert_eq!(json(&out)["Status"], "Success", "label filter: {out:?}");
    let out = curl_load(&d, "orders", "lost", &file, &[]);
    assert_eq!(out.code, Some(52), "{out:?}");
    assert_eq!(d.label_state(DB, "lost"), LabelState::Visible);
    assert!(d.pending_faults().is_empty());
    let out = curl_load(&d, "orders", "lost", &file, &[]);
    assert_eq!(json(&out)["ExistingJobStatus"], "FINISHED", "{out:?}");

    // Failed request: nothing loaded, label ABORTED, the same label then succeeds.
    d.execute("TRUNCATE TABLE `db`.`orders`").unwrap();
    d.inject(Fault::FailRequest { label: None });
    let v = json(&curl_load(&d, "orders", "f1", &file, &[]));
    assert_eq!(v["Status"], "Fail");
    assert_eq!(d.label_state(DB, "f1"), LabelState::Aborted);
    assert!(d.rows(DB, "orders").is_empty());
    assert_eq!(
        json(&curl_load(&d, "orders", "f1", &file, &[]))["Status"],
        "Success"
    );
    assert_eq!(d.rows(DB, "orders").len(), 1);

    // Publish timeout: COMMITTED and invisible until the second get_load_state poll.
    d.execute("TRUNCATE TABLE `db`.`orders`").unwrap();
    d.inject(Fault::PublishTimeout {
        label: Some("p1".into()),
        visible_after_polls: 2,
    });
    let v = json(&curl_load(&d, "orders", "p1", &file, &[]));
    assert_eq!(v["Status"], "Publish Timeout", "{v}");
    assert_eq!(d.label_state(DB, "p1"), LabelState::Committed);
    assert!(d.rows(DB, "orders").is_empty());
    let v = json(&curl_load(&d, "orders", "p1", &file, &[]));
    assert_eq!(v["ExistingJobStatus"], "FINISHED");
    let url = format!("{}/api/{DB}/get_load_state?label=p1", d.http_url());
    let poll = || json(&run("curl", &["-sS", "-u", "root:secret", &url]))["state"].clone();
    assert_eq!(poll(), "COMMITTED");
    assert_eq!(poll(), "VISIBLE");
    assert_eq!(d.rows(DB, "orders").len(), 1);
}

/// Encodes one field for the CSV test: enclosed with escapes, or bare with escapes. NULL is
/// `\\N`: StarRocks compares the field with `\N` after removing escapes.
fn encode_field(v: Option<&str>, enclosed: bool) -> String {
    let Some(v) = v else {
        return "\\\\N".into();
    };
    let mut out = String::new();
    if enclosed {
        out.push('"');
    }
    for c in v.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ',' | '\n' | '\r' if !enclosed => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    if enclosed {
        out.push('"');
    }
    out
}

#[test]
fn csv_dialect_matches_pythons_csv_module() {
    if !support::require(curl_ok()) || !support::require(python_ok()) {
        return;
    }
    let d = double_with(&[
        "CREATE TABLE `db`.`s` (`c1` STRING, `c2` STRING, `c3` STRING, `c4` STRING, `c5` STRING) DUPLICATE KEY(`c1`) DISTRIBUTED BY RANDOM",
    ]);
    let rows: Vec<Vec<Option<&str>>> = vec![
        vec![
            Some("plain"),
            Some("with,comma"),
            Some("multi\nline"),
            Some("quote\"inside"),
            Some("back\\slash"),
        ],
        vec![
            Some(""),
            None,
            Some("tab\there"),
            Some("cr\r\nlf"),
            Some("ünïcødé ✓"),
        ],
        vec![
            Some("N"),
            Some("\\"),
            Some("\"starts"),
            Some("ends\\"),
            Some(","),
        ],
        vec![None, Some(""), Some("\n"), None, Some("  spaces  ")],
        vec![
            Some("a\"b\"c"),
            Some("x\\,y"),
            Some(""),
            Some("\r"),
            Some("last"),
        ],
    ];
    let mut body = String::new();
    for (i, r) in rows.iter().enumerate() {
        let fields: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(j, v)| {
                // Alternate enclosed and bare fields; bare ones cannot hold a bare \r for
                // Python, so those are always enclosed.
                let enclosed = (i + j) % 2 == 0 || v.is_some_and(|s| s.contains('\r'));
                encode_field(*v, enclosed)
            })
            .collect();
        body.push_str(&fields.join(","));
        body.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "tricky.csv", body.as_bytes());

    let out = curl_load(
        &d,
        "s",
        "csv1",
        &file,
        &["-H", "enclose:\"", "-H", "escape:\\"],
    );
    assert_eq!(json(&out)["Status"], "Success", "{out:?}");
    let ours = d.rows(DB, "s");

    let script = "import csv, json, sys\n\
        with open(sys.argv[1], newline='') as f:\n\
        \x20   rows = list(csv.reader(f, delimiter=',', quotechar='\"', escapechar='\\\\', doublequote=False, strict=True))\n\
        print(json.dumps(rows))\n";
    let py = run(&support::python().to_string_lossy(), &["-c", script, &file]);
    assert_eq!(py.code, Some(0), "{py:?}");
    let theirs: Vec<Vec<String>> = serde_json::from_str(&py.stdout).unwrap();

    assert_eq!(theirs.len(), rows.len(), "python: {theirs:?}");
    assert_eq!(ours.len(), rows.len(), "double: {ours:?}");
    for (i, want) in rows.iter().enumerate() {
        for (j, w) in want.iter().enumerate() {
            let py_field = &theirs[i][j];
            let our_field = &ours[i][j];
            match w {
                // Python knows no NULL: it reads `\\N` as the two characters `\N`.
                None => {
                    assert_eq!(py_field, "\\N", "python row {i} col {j}");
                    assert_eq!(our_field, &None, "double row {i} col {j}");
                }
                Some(w) => {
                    assert_eq!(py_field, w, "python row {i} col {j}");
                    assert_eq!(
                        our_field.as_deref(),
                        Some(w.as_bytes()),
                        "double row {i} col {j}"
                    );
                }
            }
        }
    }

    // What StarRocks cannot tell apart: the string `\N` (written `"\\N"`) reads as NULL, and a
    // bare `\N` is the escaped letter N.
    let file = write_file(dir.path(), "null.csv", b"\"\\\\N\",\\N,a,b,c\n");
    let out = curl_load(
        &d,
        "s",
        "csv2",
        &file,
        &["-H", "enclose:\"", "-H", "escape:\\"],
    );
    assert_eq!(json(&out)["Status"], "Success", "{out:?}");
    let last = d.rows(DB, "s").pop().unwrap();
    assert_eq!(last[0], None);
    assert_eq!(last[1].as_deref(), Some(&b"N"[..]));
}

/// mariadb CLI in batch mode: tab-separated rows after a header line.
fn mariadb(d: &StarRocksDouble, password: &str, sql: &str) -> Out {
    let port = d.mysql_port().to_string();
    let pw = format!("-p{password}");
    run(
        "mariadb",
        &[
            "-h127.0.0.1",
            "-P",
            &port,
            "-uroot",
            &pw,
            "--batch",
            "-e",
            sql,
        ],
    )
}

#[test]
fn mariadb_cli_runs_ddl_inserts_and_queries() {
    if !support::require(mariadb_ok()) {
        return;
    }
    let d = StarRocksDouble::start(DoubleConfig::default());
    let out = mariadb(
        &d,
        "secret",
        "CREATE DATABASE IF NOT EXISTS `shop`;
         CREATE TABLE IF NOT EXISTS `shop`.`items` (`id` BIGINT NOT NULL, `day` DATE NOT NULL, `name` VARCHAR(20) COMMENT 'it''s the name', `price` DECIMAL(8,3)) PRIMARY KEY(`id`, `day`) COMMENT 'items' PARTITION BY date_trunc('day', `day`) DISTRIBUTED BY HASH(`id`) PROPERTIES (\"replication_num\" = \"1\");
         INSERT INTO `shop`.`items` WITH LABEL `ins1` (`id`, `name`, `price`, `day`) VALUES (1, 'a\\'b', 2.5, '2024-03-01'), (2, NULL, -1, '0000-01-01');
         SELECT `price`, `id`, `name` FROM `shop`.`items`;
         SELECT COUNT(*) FROM `shop`.`items`;
         SELECT TABLE_NAME, TABLE_COMMENT FROM information_schema.tables WHERE TABLE_SCHEMA = 'shop';
         SELECT STATE, ERROR_MSG FROM information_schema.loads WHERE DB_NAME = 'shop' AND LABEL = 'ins1'",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "price\tid\tname\n2.500\t1\ta'b\n-1.000\t2\tNULL\n\
         count(*)\n2\n\
         TABLE_NAME\tTABLE_COMMENT\nitems\titems\n\
         STATE\tERROR_MSG\nFINISHED\tNULL\n",
        "{out:?}"
    );
    let info = d.table_info("shop", "items").unwrap();
    assert_eq!(info.model, KeyModel::Primary);
    assert_eq!(info.partition_column.as_deref(), Some("day"));
    assert_eq!(info.keys, vec!["id", "day"]);
    assert_eq!(info.columns[2].comment.as_deref(), Some("it's the name"));
    assert_eq!(info.columns[3].ty, SrType::Decimal(8, 3));
    assert!(
        info.ddl
            .starts_with("CREATE TABLE IF NOT EXISTS `shop`.`items` ("),
        "{}",
        info.ddl
    );
    // The CLI split the script itself: one COM_QUERY per statement.
    let q = d.queries();
    assert_eq!(q.len(), 7, "{q:?}");
    assert!(
        q[2].starts_with("INSERT INTO `shop`.`items` WITH LABEL `ins1`"),
        "{q:?}"
    );
    // The probe the interactive CLI sends on connect is answered.
    let out = mariadb(&d, "secret", "select @@version_comment limit 1");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .starts_with("@@version_comment\nStarRocks version"),
        "{out:?}"
    );

    // DDL StarRocks refuses is refused with a clear message.
    let out = mariadb(
        &d,
        "secret",
        "CREATE TABLE `shop`.`bad` (`f` DOUBLE NOT NULL, `x` INT) DUPLICATE KEY(`f`)",
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("Float or double can not used as a key"),
        "{out:?}"
    );

    let out = mariadb(&d, "wrong", "SELECT 1");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("Access denied for user 'root'"),
        "{out:?}"
    );
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn mysql_async_connects_queries_and_resets() {
    use mysql_async::prelude::*;
    let d = double_with(&[ORDERS]);
    d.execute("INSERT INTO `db`.`orders` VALUES (1, 'a', 1.5, '2024-01-01 00:00:00'), (2, NULL, NULL, NULL)")
        .unwrap();
    let url = format!("{}/{DB}", d.mysql_url());
    rt().block_on(async {
        let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap())
            .await
            .expect("connect");
        conn.ping().await.expect("ping");
        let rows: Vec<(i64, Option<String>, Option<String>)> = conn
            .query("SELECT `id`, `customer`, `amount` FROM `orders`")
            .await
            .expect("select");
        assert_eq!(
            rows,
            vec![(1, Some("a".into()), Some("1.50".into())), (2, None, None)]
        );
        let n: Option<u64> = conn
            .query_first("SELECT COUNT(*) FROM `db`.`orders`")
            .await
            .unwrap();
        assert_eq!(n, Some(2));
        assert!(conn.reset().await.expect("COM_RESET_CONNECTION"));
        let e = conn
            .exec_drop("SELECT ?", (1,))
            .await
            .expect_err("prepared statements are refused");
        assert!(e.to_string().contains("not supported"), "{e}");
        let e = conn
            .query_drop("SELECT `nope` FROM `db`.`orders`")
            .await
            .expect_err("unknown column");
        match e {
            mysql_async::Error::Server(s) => {
                assert_eq!(s.code, 1054);
                assert_eq!(s.state, "42S22");
            }
            other => panic!("{other}"),
        }
        conn.disconnect().await.unwrap();

        let bad = format!("mysql://root:wrong@127.0.0.1:{}/{DB}", d.mysql_port());
        let e = mysql_async::Conn::new(mysql_async::Opts::from_url(&bad).unwrap())
            .await
            .expect_err("wrong password");
        assert!(e.to_string().contains("Access denied"), "{e}");
    });
    // mysql_async's connect-time probe (Conn::read_settings) was answered.
    let q = d.queries();
    assert!(
        q.iter()
            .any(|s| s == "SELECT @@max_allowed_packet,@@wait_timeout,@@socket"),
        "{q:?}"
    );
}

#[test]
fn insert_from_an_external_catalog_with_labels() {
    use mysql_async::prelude::*;
    let d = double_with(&[ORDERS]);
    d.set_catalog_reader(|catalog, ns, table, cols| {
        assert_eq!((catalog, ns, table), ("lake", "sales", "orders"));
        let all: Vec<Vec<&str>> = if cols.len() == 4 {
            vec![
                vec!["1", "a", "1.5", "2024-01-01 00:00:00.5"],
                vec!["2", "b", "2", "2024-01-02 00:00:00"],
            ]
        } else {
            vec![vec!["3", "bad-decimal"]]
        };
        Ok(all
            .into_iter()
            .map(|r| r.into_iter().map(|c| Some(c.as_bytes().to_vec())).collect())
            .collect())
    });
    let url = d.mysql_url();
    rt().block_on(async {
        let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap())
            .await
            .unwrap();
        let insert = "INSERT INTO `db`.`orders` WITH LABEL `job_1` (`id`, `customer`, `amount`, `placed`) SELECT `id`, `customer`, `amount`, `placed` FROM `lake`.`sales`.`orders`";
        let e = c.query_drop(insert).await.expect_err("no catalog yet");
        assert!(e.to_string().contains("Unknown catalog 'lake'"), "{e}");
        c.query_drop("CREATE EXTERNAL CATALOG lake PROPERTIES (\"type\"=\"iceberg\", \"iceberg.catalog.type\"=\"rest\", \"iceberg.catalog.uri\"=\"http://rest:8181\")")
            .await
            .unwrap();
        c.query_drop(insert).await.expect("insert");
        assert_eq!(c.affected_rows(), 2);
        let e = c.query_drop(insert).await.expect_err("label reuse");
        assert!(e.to_string().contains("Label [job_1] has already been used."), "{e}");
        let st: Vec<(String, Option<String>)> = c
            .query("SELECT STATE, ERROR_MSG FROM information_schema.loads WHERE DB_NAME = 'db' AND LABEL = 'job_1'")
            .await
            .unwrap();
        assert_eq!(st, vec![("FINISHED".to_string(), None)]);

        // A value the target type refuses fails the whole INSERT (strict) and cancels the job.
        let bad = "INSERT INTO `db`.`orders` WITH LABEL `job_2` (`id`, `amount`) SELECT `id`, `amount` FROM `lake`.`sales`.`orders`";
        let e = c.query_drop(bad).await.expect_err("bad value");
        assert!(e.to_string().contains("Insert has filtered data in strict mode"), "{e}");
        let st: Vec<(String, Option<String>)> = c
            .query("SELECT STATE, ERROR_MSG FROM information_schema.loads WHERE DB_NAME = 'db' AND LABEL = 'job_2'")
            .await
            .unwrap();
        assert_eq!(st.len(), 1);
        assert_eq!(st[0].0, "CANCELLED");
        assert!(st[0].1.as_deref().unwrap_or("").contains("bad-decimal"), "{st:?}");

        // A lost answer: the connection drops, the insert is applied.
        d.inject(Fault::LoseInsertResponse { label: Some("job_3".into()) });
        let again = insert.replace("job_1", "job_3");
        assert!(c.query_drop(&again).await.is_err(), "the answer must be lost");
    });
    assert_eq!(d.catalogs()[0].0, "lake");
    assert!(
        d.catalogs()[0]
            .1
            .contains(&("type".to_string(), "iceberg".to_string()))
    );
    assert_eq!(d.label_state(DB, "job_2"), LabelState::Aborted);
    assert_eq!(d.label_state(DB, "job_3"), LabelState::Visible);
    // PRIMARY KEY table: job_3 upserted the same keys.
    assert_eq!(
        text_rows(&d.rows(DB, "orders")),
        vec![
            vec!["1", "a", "1.50", "2024-01-01 00:00:00.500000"],
            vec!["2", "b", "2.00", "2024-01-02 00:00:00"],
        ]
    );
    let kinds: Vec<(&str, LabelState)> = d.loads().iter().map(|l| (l.kind, l.state)).collect();
    assert_eq!(
        kinds,
        vec![
            ("INSERT", LabelState::Visible),
            ("INSERT", LabelState::Aborted),
            ("INSERT", LabelState::Visible)
        ]
    );
}

#[test]
fn table_swap_rename_comment_and_drop() {
    let d = double_with(&[ORDERS]);
    d.execute("INSERT INTO `db`.`orders` (`id`) VALUES (1)")
        .unwrap();
    d.execute("CREATE TABLE IF NOT EXISTS `db`.`orders_new` LIKE `db`.`orders`")
        .unwrap();
    assert!(
        d.ddl(DB, "orders_new")
            .starts_with("CREATE TABLE IF NOT EXISTS `db`.`orders_new` (")
    );
    d.execute("INSERT INTO `db`.`orders_new` (`id`) VALUES (2), (3)")
        .unwrap();
    d.execute("ALTER TABLE `db`.`orders` SWAP WITH `orders_new`")
        .unwrap();
    assert_eq!(d.rows(DB, "orders").len(), 2);
    assert_eq!(d.rows(DB, "orders_new").len(), 1);
    assert!(d.ddl(DB, "orders").contains("`db`.`orders` ("));
    d.execute("ALTER TABLE `db`.`orders` COMMENT = 'swapped in'")
        .unwrap();
    assert_eq!(d.table_comment(DB, "orders"), "swapped in");
    let r = d
        .execute("SELECT TABLE_NAME, TABLE_COMMENT FROM information_schema.tables WHERE TABLE_SCHEMA = 'db' ORDER BY TABLE_NAME")
        .unwrap();
    assert_eq!(
        text_rows(&r.rows),
        vec![
            vec!["orders", "swapped in"],
            vec!["orders_new", "orders of customers"]
        ]
    );
    let e = d
        .execute("ALTER TABLE `db`.`orders_new` RENAME `orders`")
        .unwrap_err();
    assert!(e.contains("already exists"), "{e}");
    d.execute("ALTER TABLE `db`.`orders_new` RENAME `orders_old`")
        .unwrap();
    assert_eq!(d.tables(DB), vec!["orders", "orders_old"]);
    let e = d
        .execute("ALTER TABLE `db`.`orders` SWAP WITH `missing`")
        .unwrap_err();
    assert!(e.contains("Unknown table"), "{e}");
    d.execute("DROP TABLE IF EXISTS `db`.`orders_old` FORCE")
        .unwrap();
    d.execute("DROP TABLE IF EXISTS `db`.`orders_old` FORCE")
        .unwrap();
    assert!(d.execute("DROP TABLE `db`.`orders_old`").is_err());
    assert_eq!(d.tables(DB), vec!["orders"]);
    // Backquotes inside names are doubled.
    let e = d
        .execute("CREATE TABLE `db`.`we``ird` (`a` INT)")
        .unwrap_err();
    assert!(e.contains("only letters, digits and '_'"), "{e}");
}

#[test]
fn ddl_is_validated_like_starrocks() {
    let d = double_with(&[]);
    let refused = [
        (
            "CREATE TABLE `db`.`t` (`a` INT, `b` INT) DUPLICATE KEY(`b`)",
            "ordered prefix",
        ),
        (
            "CREATE TABLE `db`.`t` (`a` INT NULL) PRIMARY KEY(`a`)",
            "cannot be nullable",
        ),
        (
            "CREATE TABLE `db`.`t` (`a` DECIMAL(10,2) NOT NULL) PRIMARY KEY(`a`)",
            "primary key column",
        ),
        (
            "CREATE TABLE `db`.`t` (`a` FLOAT) DUPLICATE KEY(`a`)",
            "Float or double",
        ),
        ("CREATE TABLE `db`.`t` (`a-b` INT)", "only letters"),
        ("CREATE TABLE `db`.`t` (`a` VARCHAR(0))", "VARCHAR length"),
        (
            "CREATE TABLE `db`.`t` (`a` VARCHAR(1048577))",
            "VARCHAR length",
        ),
        ("CREATE TABLE `db`.`t` (`a` CHAR(256))", "CHAR length"),
        ("CREATE TABLE `db`.`t` (`a` DECIMAL(39,2))", "precision"),
        ("CREATE TABLE `db`.`t` (`a` DATETIME(6))", "DATETIME(p)"),
        ("CREATE TABLE `db`.`t` (`a` TIME)", "no TIME"),
        (
            "CREATE TABLE `db`.`t` (`a` INT, `a` INT)",
            "Duplicate column",
        ),
        (
            "CREATE TABLE `db`.`t` (`a` INT NOT NULL, `b` INT) PRIMARY KEY(`a`) DISTRIBUTED BY HASH(`b`)",
            "must be a key column",
        ),
        (
            "CREATE TABLE `db`.`t` (`a` INT NOT NULL, `d` DATE) PRIMARY KEY(`a`) PARTITION BY date_trunc('day', `d`)",
            "primary key column",
        ),
        (
            "CREATE TABLE `db`.`t` (`a` INT, `s` STRING) PARTITION BY date_trunc('day', `s`)",
            "DATE or DATETIME",
        ),
        ("CREATE TABLE `nodb`.`t` (`a` INT)", "Unknown database"),
    ];
    for (sql, want) in refused {
        let e = d.execute(sql).expect_err(sql);
        assert!(e.contains(want), "{sql}\n -> {e}");
    }
    assert!(d.tables(DB).is_empty());
    d.execute("CREATE TABLE `db`.`t` (`a` INT NOT NULL, `d` DATETIME NOT NULL, `v` DOUBLE) PRIMARY KEY(`a`, `d`) PARTITION BY date_trunc('month', `d`) DISTRIBUTED BY HASH(`a`) BUCKETS 4 ORDER BY (`v`) PROPERTIES (\"replication_num\" = \"1\");")
        .unwrap();
    let e = d.execute("CREATE TABLE `db`.`t` (`a` INT)").unwrap_err();
    assert!(e.contains("already exists"), "{e}");
    d.execute("CREATE TABLE IF NOT EXISTS `db`.`t` (`a` INT)")
        .unwrap();
    assert_eq!(
        d.columns(DB, "t").len(),
        3,
        "IF NOT EXISTS keeps the old table"
    );
    assert!(d.columns(DB, "t")[1].is_key);
}

/// A raw HTTP/1.1 PUT straight to the BE (our own client; the curl tests cover curl).
fn be_put(
    d: &StarRocksDouble,
    table: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> serde_json::Value {
    let mut s = TcpStream::connect(("127.0.0.1", d.be_http_port())).unwrap();
    let mut req = format!(
        "PUT /api/{DB}/{table}/_stream_load HTTP/1.1\r\nHost: x\r\nAuthorization: Basic cm9vdDpzZWNyZXQ=\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, json_body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{resp}");
    serde_json::from_str(json_body).unwrap()
}

#[test]
fn every_type_is_checked_and_stored_as_starrocks_prints_it() {
    let d = double_with(&["CREATE TABLE `db`.`all` (
        `b` BOOLEAN, `ti` TINYINT, `si` SMALLINT, `i` INT, `bi` BIGINT, `li` LARGEINT,
        `f` FLOAT, `db` DOUBLE, `de` DECIMAL(5,2), `d` DATE, `dt` DATETIME,
        `c` CHAR(3), `vc` VARCHAR(4), `s` STRING, `vb` VARBINARY(4)) DISTRIBUTED BY RANDOM"]);
    let good = "true|-128|32767|-2147483648|9223372036854775807|-170141183460469231731687303715884105728|1.5|0.1|-999.99|0000-01-01|9999-12-31 23:59:59.999999|abc|éé|x|AP+h\n\
                0|127|-32768|2147483647|-9223372036854775808|170141183460469231731687303715884105727|-0|1e300|0.5|2024-02-29|2024-01-01 00:00:00.000|\\N||\\N|\n";
    let v = be_put(
        &d,
        "all",
        &[
            ("column_separator", "|"),
            ("label", "good"),
            ("strict_mode", "true"),
        ],
        good.as_bytes(),
    );
    assert_eq!(v["Status"], "Success", "{v}");
    let rows = d.rows(DB, "all");
    let r0 = text_rows(&rows[..1])[0].clone();
    assert_eq!(
        r0[..14],
        [
            "1",
            "-128",
            "32767",
            "-2147483648",
            "9223372036854775807",
            "-170141183460469231731687303715884105728",
            "1.5",
            "0.1",
            "-999.99",
            "0000-01-01",
            "9999-12-31 23:59:59.999999",
            "abc",
            "éé",
            "x",
        ]
    );
    assert_eq!(rows[0][14], Some(vec![0x00, 0xff, 0xa1]));
    let r1 = text_rows(&rows[1..])[0].clone();
    assert_eq!(r1[0], "0");
    assert_eq!(r1[6], "-0");
    assert_eq!(r1[8], "0.50");
    assert_eq!(r1[10], "2024-01-01 00:00:00");
    assert_eq!(r1[11], "\\N");
    assert_eq!(r1[12], "");
    assert_eq!(rows[1][14], Some(vec![]));

    // Each of these rows breaks exactly one rule; in strict mode each is filtered.
    let bad = [
        "2|0|0|0|0|0|0|0|0|2024-01-01|2024-01-01 00:00:00|a|a|a|00",
        "1|128|0|0|0|0|0|0|0|2024-01-01|2024-01-01 00:00:00|a|a|a|00",
        "1|0|0|0|9223372036854775808|0|0|0|0|2024-01-01|2024-01-01 00:00:00|a|a|a|00",
        "1|0|0|0|0|0|nan|0|0|2024-01-01|2024-01-01 00:00:00|a|a|a|00",
        "1|0|0|0|0|0|0|0|1000|2024-01-01|2024-01-01 00:00:00|a|a|a|00",
        "1|0|0|0|0|0|0|0|0.001|2024-01-01|2024-01-01 00:00:00|a|a|a|00",
        "1|0|0|0|0|0|0|0|0|2023-02-29|2024-01-01 00:00:00|a|a|a|00",
        "1|0|0|0|0|0|0|0|0|2024-01-01|2024-01-01 24:00:00|a|a|a|00",
        "1|0|0|0|0|0|0|0|0|2024-01-01|2024-01-01 00:00:00.1234567|a|a|a|00",
        "1|0|0|0|0|0|0|0|0|2024-01-01|2024-01-01 00:00:00|abcd|a|a|00",
        "1|0|0|0|0|0|0|0|0|2024-01-01|2024-01-01 00:00:00|a|ééé|a|00",
        "1|0|0|0|0|0|0|0|0|2024-01-01|2024-01-01 00:00:00|a|a|a|!!!!!",
        "1|0|0|0|0|0|0|0|0|2024-01-01|2024-01-01 00:00:00|a|a|a|0000000000",
    ];
    let body = bad.join("\n");
    let v = be_put(
        &d,
        "all",
        &[
            ("column_separator", "|"),
            ("label", "bad"),
            ("strict_mode", "true"),
            ("max_filter_ratio", "1"),
        ],
        body.as_bytes(),
    );
    assert_eq!(v["Status"], "Success", "{v}");
    assert_eq!(v["NumberFilteredRows"], bad.len(), "{v}");
    assert_eq!(v["NumberLoadedRows"], 0);
    let file = v["ErrorURL"]
        .as_str()
        .unwrap()
        .split("file=")
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(d.error_log(&file).unwrap().lines().count(), bad.len());

    // Without strict mode a value that does not fit becomes NULL (too long ones as well).
    let v = be_put(
        &d,
        "all",
        &[("column_separator", "|"), ("label", "lenient")],
        format!("{}\n{}", bad[1], bad[10]).as_bytes(),
    );
    assert_eq!(v["NumberLoadedRows"], 2, "{v}");
    assert_eq!(v["NumberFilteredRows"], 0, "{v}");
    assert_eq!(d.rows(DB, "all")[2][1], None);
    assert_eq!(d.rows(DB, "all")[3][12], None);
    // VARBINARY in CSV is base64 ("00" reads as one byte), not hex.
    assert_eq!(d.rows(DB, "all")[2][14], Some(vec![0xd3]));
}

#[test]
fn stream_load_headers_columns_separators_and_upserts() {
    let d = double_with(&[ORDERS]);
    // `columns` maps fields by name; hex separators; a PRIMARY KEY table keeps the last row.
    let body =
        b"2024-01-01 00:00:00\x011\x01a\x02\x02\x02\x022024-01-02 00:00:00\x011\x01b\x02\x02";
    let v = be_put(
        &d,
        "orders",
        &[
            ("label", "h1"),
            ("columns", "placed, id, `customer`"),
            ("column_separator", "\\x01"),
            ("row_delimiter", "\\x0202"),
        ],
        body,
    );
    assert_eq!(v["Status"], "Success", "{v}");
    assert_eq!(v["NumberTotalRows"], 2, "the empty record is skipped: {v}");
    assert_eq!(
        text_rows(&d.rows(DB, "orders")),
        vec![vec!["1", "b", "\\N", "2024-01-02 00:00:00"]]
    );

    // A label is generated when absent (a UUID, as the BE does).
    let v = be_put(
        &d,
        "orders",
        &[("column_separator", ",")],
        b"5,e,1,2024-01-01 00:00:00",
    );
    assert_eq!(v["Status"], "Success", "{v}");
    assert_eq!(v["Label"].as_str().unwrap().len(), 36, "{v}");

    for (headers, want) in [
        (vec![("format", "json")], "not supported"),
        (
            vec![("columns", "customer,amount,placed")],
            "Column has no default value",
        ),
        (
            vec![("columns", "id,nope,customer,amount")],
            "Unknown column 'nope'",
        ),
        (
            vec![("columns", "id,customer=upper(customer)")],
            "expressions",
        ),
        (vec![("where", "id > 1")], "where is not supported"),
        (vec![("max_filter_ratio", "2")], "max_filter_ratio"),
        (vec![("timeout", "abc")], "Invalid timeout format"),
        (vec![("enclose", "ab")], "single-byte"),
    ] {
        let v = be_put(&d, "orders", &headers, b"9,x,1,2024-01-01 00:00:00");
        assert_eq!(v["Status"], "Fail", "{headers:?}: {v}");
        assert!(
            v["Message"].as_str().unwrap().contains(want),
            "{headers:?}: {v}"
        );
    }
    assert_eq!(d.rows(DB, "orders").len(), 2);
}

#[test]
fn tests_can_tamper_with_the_target() {
    let d = double_with(&[ORDERS]);
    d.execute("INSERT INTO `db`.`orders` (`id`, `customer`) VALUES (1, 'a'), (2, 'b')")
        .unwrap();
    d.set_cell(DB, "orders", 1, "customer", Some(b"tampered".to_vec()));
    d.with_rows_mut(DB, "orders", |rows, cols| {
        assert_eq!(cols[0], "id");
        rows.remove(0);
    });
    let r = d.execute("SELECT `customer` FROM `db`.`orders`").unwrap();
    assert_eq!(text_rows(&r.rows), vec![vec!["tampered"]]);
}

#[test]
fn mariadb_interactive_session_gets_its_connect_probe_answered() {
    if !support::require(mariadb_ok()) {
        return;
    }
    if !support::require(match Command::new("script").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("script (util-linux) missing".into()),
    }) {
        return;
    }
    let d = double_with(&[ORDERS]);
    // `script` gives the CLI a terminal, so it runs as an interactive session would.
    let cmd = format!("mariadb -h127.0.0.1 -P{} -uroot -psecret", d.mysql_port());
    let dir = tempfile::tempdir().unwrap();
    let typescript = dir.path().join("typescript");
    let mut child = Command::new("script")
        .args(["-qec", &cmd, &typescript.to_string_lossy()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT COUNT(*) FROM db.orders;\nexit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("Server version: 8.0.33"), "{screen}");
    assert!(screen.contains("| count(*) |"), "{screen}");
    let q = d.queries();
    assert_eq!(
        q[q.len() - 2..],
        [
            "select @@version_comment limit 1",
            "SELECT COUNT(*) FROM db.orders"
        ],
        "{screen}"
    );
}

/// Sends a whole request at once (as hyper does even with `Expect: 100-continue`) and returns
/// the response head.
fn send_all_at_once(port: u16, head: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let writer = {
        let mut w = s.try_clone().unwrap();
        let mut all = head.as_bytes().to_vec();
        all.extend_from_slice(body);
        std::thread::spawn(move || {
            let _ = w.write_all(&all);
        })
    };
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    writer.join().unwrap();
    String::from_utf8_lossy(&resp).into_owned()
}

#[test]
fn fe_answers_survive_clients_that_send_the_body_without_waiting() {
    let d = double_with(&[ORDERS]);
    let body = vec![b'x'; 8 << 20];
    let head = format!(
        "PUT /api/db/orders/_stream_load HTTP/1.1\r\nHost: a\r\nAuthorization: Basic cm9vdDpzZWNyZXQ=\r\nExpect: 100-continue\r\nlabel: big\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let resp = send_all_at_once(d.fe_http_port(), &head, &body);
    assert!(
        resp.starts_with("HTTP/1.1 307 Temporary Redirect\r\n"),
        "{resp}"
    );
    assert!(
        resp.contains(&format!(
            "Location: http://127.0.0.1:{}/api/db/orders/_stream_load\r\n",
            d.be_http_port()
        )),
        "{resp}"
    );
    assert!(
        !resp.contains("100 Continue"),
        "the FE never sends 100 Continue"
    );
    // HTTP/1.0 has no Expect mechanism: the FE redirects without it.
    let head10 = "PUT /api/db/orders/_stream_load HTTP/1.0\r\nAuthorization: Basic cm9vdDpzZWNyZXQ=\r\nContent-Length: 3\r\n\r\n";
    let resp = send_all_at_once(d.fe_http_port(), head10, b"1,a");
    assert!(resp.starts_with("HTTP/1.1 307"), "{resp}");
    // A label already taken is answered at once on the BE, body unread.
    d.execute("INSERT INTO `db`.`orders` WITH LABEL `big` (`id`) VALUES (1)")
        .unwrap();
    let resp = send_all_at_once(d.be_http_port(), &head, &body);
    assert!(
        resp.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        &resp[..resp.len().min(300)]
    );
    assert!(!resp.contains("100 Continue"), "{resp}");
    assert!(
        resp.contains("\"Status\": \"Label Already Exists\""),
        "{resp}"
    );
    assert!(
        resp.contains("\"ExistingJobStatus\": \"FINISHED\""),
        "{resp}"
    );
    let be = d
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.port == PortKind::Be)
        .unwrap();
    assert_eq!(be.body_len, 0);
}

#[test]
fn chunked_bodies_and_dropping_the_double_stops_it() {
    let d = double_with(&[ORDERS]);
    let head = "PUT /api/db/orders/_stream_load HTTP/1.1\r\nHost: a\r\nAuthorization: Basic cm9vdDpzZWNyZXQ=\r\nlabel: ch\r\ncolumn_separator: ,\r\nTransfer-Encoding: chunked\r\n\r\n";
    let body = b"4\r\n1,a,\r\n1d;ext=1\r\n2,2024-01-01 00:00:00\n2,b,3,\n\r\n0\r\n\r\n";
    let resp = send_all_at_once(d.be_http_port(), head, body);
    assert!(resp.contains("\"Status\": \"Success\""), "{resp}");
    assert_eq!(
        text_rows(&d.rows(DB, "orders")),
        vec![
            vec!["1", "a", "2.00", "2024-01-01 00:00:00"],
            vec!["2", "b", "3.00", "\\N"]
        ]
    );
    let ports = [d.fe_http_port(), d.be_http_port(), d.mysql_port()];
    let mut open = TcpStream::connect(("127.0.0.1", ports[2])).unwrap();
    let mut greeting = [0u8; 4];
    open.read_exact(&mut greeting).unwrap();
    drop(d);
    for port in ports {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "port {port} still accepts"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    // Open connections were shut down too: the rest of the greeting, then end of stream.
    let mut buf = [0u8; 256];
    open.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    loop {
        match open.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) => panic!("connection not closed: {e}"),
        }
    }
}
