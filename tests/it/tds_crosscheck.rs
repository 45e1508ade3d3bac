//! Cross-checks the TDS test server (tests/doubles/src/tds) with clients we did not write: pytds
//! (python-tds 1.11.0, the version Debian 12 ships) and FreeTDS `tsql`. If they decode every
//! value the server meant to send, the server's encoding can be trusted as a stand-in for SQL
//! Server in connector tests. A raw-socket client checks packet framing (Attention) and
//! measures generation throughput.

use crate::support;
use crate::tds::fixtures::{self, BIG_NVARCHAR_CHARS, REGIONS};
use crate::tds::{
    DAYS_1900, Fault, ServerConfig, SqlType, TICKS_PER_DAY, Table, TdsServer, Value, at_precision,
    canonical, ymd_from_days,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "sa";
const PASSWORD: &str = "Secret123!";
const DB: &str = "WorldZone";

/// pytds (PyPI python-tds, pinned in tests/readers/requirements.txt) in the test Python.
fn pytds() -> Result<(), String> {
    support::python_can("pytds (python-tds)", "import pytds")
}

fn tsql() -> Result<(), String> {
    match Command::new("tsql").arg("-C").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("tsql missing (apt-get install freetds-bin; tests/run installs it)".into()),
    }
}

fn server(tables: Vec<Table>, max_packet: Option<usize>) -> TdsServer {
    let mut cfg = ServerConfig::new(DB, USER, PASSWORD, tables);
    cfg.max_packet = max_packet;
    TdsServer::start(cfg).expect("start TDS server")
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cut = |s: &str| s.chars().take(3000).collect::<String>();
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            cut(&self.stdout),
            cut(&self.stderr)
        )
    }
}

fn run_pytds(port: u16, password: &str, query: &str, extra: &[&str]) -> Out {
    let o = support::python_command()
        .arg(support::repo().join("tests/readers/tds_pytds.py"))
        .args([
            "--port",
            &port.to_string(),
            "--user",
            USER,
            "--password",
            password,
        ])
        .args(["--database", DB, "--query", query])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run tds_pytds.py");
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn json_rows(out: &Out) -> Vec<Vec<Option<String>>> {
    assert_eq!(out.code, Some(0), "pytds failed: {out:?}");
    out.stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON row");
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .collect()
}

/// Python's datetime/time stop at microseconds: compare date/time values at 6 fraction digits.
fn python_precision(ty: &SqlType, s: Option<String>) -> Option<String> {
    match ty {
        SqlType::Time(_)
        | SqlType::DateTime
        | SqlType::SmallDateTime
        | SqlType::DateTime2(_)
        | SqlType::DateTimeOffset(_) => s.map(|s| at_precision(&s, 6)),
        _ => s,
    }
}

fn short(s: &Option<String>) -> String {
    match s {
        None => "NULL".into(),
        Some(s) if s.chars().count() > 120 => format!(
            "{}... ({} chars)",
            s.chars().take(120).collect::<String>(),
            s.chars().count()
        ),
        Some(s) => format!("{s:?}"),
    }
}

/// Compares rows cell by cell, naming the first differences.
fn assert_rows(
    what: &str,
    names: &[String],
    got: &[Vec<Option<String>>],
    want: &[Vec<Option<String>>],
) {
    assert_eq!(got.len(), want.len(), "{what}: row count");
    let mut diffs = Vec::new();
    for (r, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}: column count of row {r}");
        for (c, (a, b)) in g.iter().zip(w).enumerate() {
            if a != b {
                diffs.push(format!(
                    "row {r} column {}: client read {} but the server meant {}",
                    names[c],
                    short(a),
                    short(b)
                ));
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn tds_pytds_reads_every_type() {
    if !support::require(pytds()) {
        return;
    }
    let table = fixtures::types_table();
    let srv = server(vec![table.clone()], None);
    let cols = table.columns.clone();
    let names: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
    let rows = fixtures::types_rows();

    // (a) SELECT *: every type in its native wire form.
    let got = json_rows(&run_pytds(
        srv.port(),
        PASSWORD,
        "SELECT * FROM [dbo].[ALLTYPES]",
        &[],
    ));
    let want: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .zip(&cols)
                .map(|(v, c)| python_precision(&c.ty, canonical(v, &c.ty)))
                .collect()
        })
        .collect();
    assert_rows("pytds SELECT *", &names, &got, &want);

    // Spot checks spelled out independently of `canonical`.
    let col = |n: &str| names.iter().position(|x| x == n).unwrap();
    let cell = |r: usize, n: &str| got[r][col(n)].clone().unwrap_or_default();
    assert_eq!(cell(0, "C_GUID"), "6f9619ff-8b86-d011-b42d-00c04fd430c8");
    assert_eq!(cell(0, "C_MONEY"), "922337203685477.5807");
    assert_eq!(cell(1, "C_MONEY"), "-922337203685477.5808");
    assert_eq!(cell(0, "C_SMALLMONEY"), "214748.3647");
    assert_eq!(cell(1, "C_SMALLMONEY"), "-214748.3648");
    assert_eq!(
        cell(0, "C_DEC38_10"),
        "9999999999999999999999999999.9999999999"
    );
    assert_eq!(
        cell(1, "C_DEC38_0"),
        "-99999999999999999999999999999999999999"
    );
    assert_eq!(cell(3, "C_DATETIME"), "2024-02-29 23:59:59.997000");
    assert_eq!(cell(0, "C_DTO"), "9999-12-31 23:59:59.999999+14:00");
    assert_eq!(cell(1, "C_DTO"), "0001-01-01 00:00:00.000000-12:00");
    assert_eq!(cell(0, "C_DT2"), "9999-12-31 23:59:59.999999");
    assert_eq!(cell(1, "C_DATE"), "0001-01-01");
    assert_eq!(cell(0, "C_TINYINT"), "255");
    assert_eq!(cell(0, "C_VARCHAR"), "café €uro ŠŽ");
    assert_eq!(cell(0, "C_NVARCHAR"), "Zoë 東京 😀 naïve");
    assert_eq!(cell(0, "C_HIERARCHYID"), "5bc0"); // '/1/3/' as SQL Server serializes it
    assert!(cell(0, "C_GEOGRAPHY").starts_with("e6100000010c")); // SRID 4326, v1, point
    assert_eq!(got[1][col("C_NVARCHAR")], Some(String::new())); // '' is not NULL
    assert_eq!(got[2][col("C_NVARCHAR")], None);
    assert!(cell(3, "C_NVARCHARMAX").encode_utf16().count() >= BIG_NVARCHAR_CHARS);
    assert_eq!(
        cell(3, "C_VARBINARYMAX").len(),
        2 * fixtures::BIG_VARBINARY_BYTES
    );

    // The conversions the connector selects: CAST to decimal/nvarchar/varbinary, STAsText().
    let casts: [(&str, &str, SqlType); 12] = [
        (
            "C_MONEY",
            "CAST([C_MONEY] AS decimal(19,4))",
            SqlType::Decimal(19, 4),
        ),
        (
            "C_SMALLMONEY",
            "CAST([C_SMALLMONEY] AS decimal(10,4))",
            SqlType::Decimal(10, 4),
        ),
        (
            "C_CHAR",
            "CAST([C_CHAR] AS nvarchar(10))",
            SqlType::NVarChar(Some(10)),
        ),
        (
            "C_VARCHAR",
            "CAST([C_VARCHAR] AS nvarchar(50))",
            SqlType::NVarChar(Some(50)),
        ),
        (
            "C_VARCHARMAX",
            "CAST([C_VARCHARMAX] AS nvarchar(max))",
            SqlType::NVarChar(None),
        ),
        (
            "C_TEXT",
            "CAST([C_TEXT] AS nvarchar(max))",
            SqlType::NVarChar(None),
        ),
        (
            "C_NTEXT",
            "CAST([C_NTEXT] AS nvarchar(max))",
            SqlType::NVarChar(None),
        ),
        (
            "C_IMAGE",
            "CAST([C_IMAGE] AS varbinary(max))",
            SqlType::VarBinary(None),
        ),
        (
            "C_XML",
            "CAST([C_XML] AS nvarchar(max))",
            SqlType::NVarChar(None),
        ),
        (
            "C_HIERARCHYID",
            "CAST([C_HIERARCHYID] AS nvarchar(4000))",
            SqlType::NVarChar(Some(4000)),
        ),
        (
            "C_GEOGRAPHY",
            "[C_GEOGRAPHY].STAsText()",
            SqlType::NVarChar(None),
        ),
        (
            "C_VARIANT",
            "CAST([C_VARIANT] AS nvarchar(4000))",
            SqlType::NVarChar(Some(4000)),
        ),
    ];
    let list: Vec<String> = casts
        .iter()
        .map(|(n, e, _)| format!("{e} AS [{n}]"))
        .chain(std::iter::once(
            "[C_GEOMETRY].STAsText() AS [C_GEOMETRY]".to_string(),
        ))
        .collect();
    let q = format!(
        "SELECT {} FROM [dbo].[ALLTYPES] ORDER BY [ID]",
        list.join(", ")
    );
    let got = json_rows(&run_pytds(srv.port(), PASSWORD, &q, &[]));
    let mut cnames: Vec<String> = casts.iter().map(|c| c.0.to_string()).collect();
    cnames.push("C_GEOMETRY".into());
    let want: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|r| {
            casts
                .iter()
                .map(|(n, _, ty)| canonical(&r[col(n)], ty))
                .chain(std::iter::once(canonical(
                    &r[col("C_GEOMETRY")],
                    &SqlType::NVarChar(None),
                )))
                .collect()
        })
        .collect();
    assert_rows("pytds CAST/STAsText", &cnames, &got, &want);
    assert_eq!(got[0][0].as_deref(), Some("922337203685477.5807"));
    assert_eq!(got[0][9].as_deref(), Some("/1/3/"));
    assert_eq!(got[0][10].as_deref(), Some("POINT (2.35 48.85)"));
}

#[test]
fn tds_pytds_reads_a_million_wide_rows_in_small_packets() {
    if !support::require(pytds()) {
        return;
    }
    let rows = 1_000_000;
    let table = fixtures::wide_table("AGENTSVES", rows);
    let srv = server(vec![table.clone()], Some(512));
    // (b) 1M rows through 512-byte packets. pytds decodes ~6k full 66-column rows/s, so the
    // million rows are read with five columns (the server still generates whole rows), and a
    // range of full rows is compared value by value below.
    let t = Instant::now();
    let out = run_pytds(
        srv.port(),
        PASSWORD,
        "SELECT [ID], [NAME], [BALANCE], [CREATED], [GUID] FROM [dbo].[AGENTSVES]",
        &["--count"],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], format!("count {rows}"));
    eprintln!("pytds: {rows} rows x 5 columns in {:?}", t.elapsed());
    let mut buf = Vec::new();
    for (line, i) in [(lines[1], 0u64), (lines[2], rows - 1)] {
        (table.row)(i, &mut buf);
        let got: Vec<Option<String>> = serde_json::from_str::<Vec<Option<String>>>(line).unwrap();
        let want: Vec<Option<String>> = [0usize, 2, 13, 16, 21]
            .iter()
            .map(|&c| {
                python_precision(
                    &table.columns[c].ty,
                    canonical(&buf[c], &table.columns[c].ty),
                )
            })
            .collect();
        assert_eq!(got, want, "row {i}");
    }
    let q = srv.queries();
    let last = q.last().unwrap();
    assert_eq!((last.rows_sent, last.completed), (rows, true));

    // Full rows, every column, in the middle of the table (binary-searched range).
    let got = json_rows(&run_pytds(
        srv.port(),
        PASSWORD,
        "SELECT * FROM [dbo].[AGENTSVES] WHERE [ID] >= 500001 AND [ID] < 503001",
        &[],
    ));
    let want: Vec<Vec<Option<String>>> = (500_000..503_000u64)
        .map(|i| {
            (table.row)(i, &mut buf);
            buf.iter()
                .zip(&table.columns)
                .map(|(v, c)| python_precision(&c.ty, canonical(v, &c.ty)))
                .collect()
        })
        .collect();
    let names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
    assert_rows("pytds wide rows", &names, &got, &want);
}

/// `%.{prec}g` as C's printf writes it (what FreeTDS prints for real/float).
fn fmt_g(x: f64, prec: usize) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let e = format!("{:.*e}", prec - 1, x);
    let (m, exp) = e.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    let strip = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if exp < -4 || exp >= prec as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip(m.to_string()), exp.abs())
    } else {
        strip(format!("{:.*}", (prec as i32 - 1 - exp).max(0) as usize, x))
    }
}

/// FreeTDS's default date format `%b %e %Y %I:%M%p` (minutes: seconds and fractions are lost).
fn tsql_date(days: i64, ticks: u64) -> String {
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d) = ymd_from_days(days);
    let mins = ticks / 600_000_000;
    let (h, mi) = (mins / 60, mins % 60);
    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
    let ampm = if h < 12 { "AM" } else { "PM" };
    format!("{} {d:>2} {y} {h12:02}:{mi:02}{ampm}", MON[m as usize - 1])
}

/// What `tsql` prints for a value (its text forms are lossy for dates and floats).
fn tsql_text(v: &Value, ty: &SqlType) -> String {
    let day1900 = DAYS_1900;
    match (v, ty) {
        (Value::Null, _) => "NULL".into(),
        (Value::Bool(b), _) => (if *b { "1" } else { "0" }).into(),
        (Value::F32(f), _) => fmt_g(*f as f64, 9),
        (Value::F64(f), _) => fmt_g(*f, 17),
        (Value::Date(d), _) => tsql_date(*d as i64, 0),
        (Value::Time(t), _) => tsql_date(day1900, *t),
        (Value::DateTime2 { days, ticks }, _) => tsql_date(*days as i64, *ticks),
        (
            Value::DateTimeOffset {
                days,
                ticks,
                offset_min,
            },
            _,
        ) => {
            // shown in its own offset
            let local = *days as i64 * TICKS_PER_DAY as i64
                + *ticks as i64
                + *offset_min as i64 * 600_000_000;
            tsql_date(
                local.div_euclid(TICKS_PER_DAY as i64),
                local.rem_euclid(TICKS_PER_DAY as i64) as u64,
            )
        }
        (Value::DateTime { days, ticks300 }, _) => {
            tsql_date(day1900 + *days as i64, *ticks300 as u64 * 10_000_000 / 300)
        }
        (Value::SmallDateTime { days, minutes }, _) => {
            tsql_date(day1900 + *days as i64, *minutes as u64 * 600_000_000)
        }
        (Value::Guid(_), _) => canonical(v, ty).unwrap().to_uppercase(),
        // tsql cannot convert CLR UDTs (hierarchyid, geography, geometry) to text: empty.
        (Value::Str(_), SqlType::HierarchyId | SqlType::Geography | SqlType::Geometry) => {
            String::new()
        }
        _ => canonical(v, ty).unwrap(),
    }
}

fn run_tsql(port: u16, password: &str, query: &str) -> Out {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("freetds.conf");
    std::fs::write(
        &conf,
        "[global]\n\ttds version = 7.4\n\tclient charset = UTF-8\n",
    )
    .unwrap();
    let mut child = Command::new("tsql")
        .args([
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            USER,
            "-P",
            password,
            "-D",
            DB,
        ])
        .env("TDSVER", "7.4")
        .env("FREETDSCONF", &conf)
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tsql");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{query}\ngo\nquit\n").as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Parses tsql's tab-separated output: (header, rows).
fn tsql_rows(out: &Out) -> (Vec<String>, Vec<Vec<String>>) {
    let strip = |l: &str| {
        let mut l = l;
        while let Some(p) = l.find("> ") {
            if l[..p].chars().all(|c| c.is_ascii_digit()) && p > 0 {
                l = &l[p + 2..];
            } else {
                break;
            }
        }
        l.to_string()
    };
    // The header follows the first prompt ("1> 2> "); lines before it are tsql's chatter.
    let mut lines = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("1> "))
        .map(strip)
        .filter(|l| !l.is_empty());
    let header: Vec<String> = lines
        .next()
        .unwrap_or_else(|| panic!("no tsql output: {out:?}"))
        .split('\t')
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for l in lines {
        if l.starts_with('(') && l.contains("affected") {
            break;
        }
        rows.push(l.split('\t').map(str::to_string).collect());
    }
    (header, rows)
}

#[test]
fn tds_tsql_reads_every_type() {
    if !support::require(tsql()) {
        return;
    }
    let table = fixtures::types_table();
    let srv = server(vec![table.clone()], Some(512));
    // (c) tsql prints dates as `Mon dd yyyy hh:mmAM` (FreeTDS's default; freetds.conf has no
    // setting for it), floats with %.9g / %.17g, GUIDs upper-case, binary as hex, and CLR UDTs
    // as empty text. Those are compared in exactly that form.
    // tsql cannot display CLR UDT values (hierarchyid, geography, geometry): it prints nothing
    // for them, not even the column separator, so they are left out here and read as text below.
    // The same happens for a zero-length sql_variant (pytds reads it as ''), so sql_variant is
    // checked below on the rows where it is not empty.
    let udt = |t: &SqlType| {
        matches!(
            t,
            SqlType::HierarchyId | SqlType::Geography | SqlType::Geometry | SqlType::SqlVariant
        )
    };
    let cols: Vec<usize> = (0..table.columns.len())
        .filter(|&i| !udt(&table.columns[i].ty))
        .collect();
    let names: Vec<String> = cols
        .iter()
        .map(|&i| table.columns[i].name.clone())
        .collect();
    let list: Vec<String> = names.iter().map(|n| format!("[{n}]")).collect();
    let q = format!("SELECT {} FROM [dbo].[ALLTYPES]", list.join(", "));
    let out = run_tsql(srv.port(), PASSWORD, &q);
    let (header, got) = tsql_rows(&out);
    assert_eq!(header, names, "{out:?}");
    let got: Vec<Vec<Option<String>>> = got
        .into_iter()
        .map(|r| r.into_iter().map(Some).collect())
        .collect();
    let want: Vec<Vec<Option<String>>> = fixtures::types_rows()
        .iter()
        .map(|r| {
            cols.iter()
                .map(|&i| Some(tsql_text(&r[i], &table.columns[i].ty)))
                .collect()
        })
        .collect();
    assert_rows("tsql SELECT *", &names, &got, &want);

    // The text conversions, where tsql is exact (geography as WKT, money as decimal).
    let out = run_tsql(
        srv.port(),
        PASSWORD,
        "SELECT [ID], CAST([C_MONEY] AS decimal(19,4)) AS [M], [C_GEOGRAPHY].STAsText() AS [G], \
         CAST([C_HIERARCHYID] AS nvarchar(4000)) AS [H] FROM [dbo].[ALLTYPES] WHERE [ID] <= 2",
    );
    let (_, rows) = tsql_rows(&out);
    let variants = run_tsql(
        srv.port(),
        PASSWORD,
        "SELECT [ID], [C_VARIANT] FROM [dbo].[ALLTYPES] WHERE [ID] = 1 OR [ID] >= 3",
    );
    assert_eq!(
        tsql_rows(&variants).1,
        vec![
            vec!["1", "variant text"],
            vec!["3", "NULL"],
            vec!["4", "42"],
            vec!["5", "NULL"]
        ]
    );
    assert_eq!(
        rows,
        vec![
            vec!["1", "922337203685477.5807", "POINT (2.35 48.85)", "/1/3/"],
            vec!["2", "-922337203685477.5808", "POINT (-122.349 47.651)", "/"],
        ]
    );
}

#[test]
fn tds_wrong_password_fails_login_in_both_clients() {
    let srv = server(vec![fixtures::types_table()], None);
    if support::require_for("pytds's check", pytds()) {
        let out = run_pytds(srv.port(), "wrong", "SELECT 1", &[]);
        assert_eq!(out.code, Some(4), "{out:?}");
        assert!(
            out.stderr.contains("Login failed for user 'sa'."),
            "{out:?}"
        );
    }
    if support::require_for("tsql's check", tsql()) {
        let out = run_tsql(srv.port(), "wrong", "SELECT 1");
        assert!(
            out.stderr.contains("Msg 18456") || out.stdout.contains("Msg 18456"),
            "{out:?}"
        );
        assert!((out.stderr.clone() + &out.stdout).contains("Login failed for user 'sa'."));
    }
    assert!(
        srv.queries().is_empty(),
        "no statement may run after a failed login"
    );
}

#[test]
fn tds_errors_reach_pytds_with_number_and_message() {
    if !support::require(pytds()) {
        return;
    }
    let srv = server(vec![fixtures::types_table()], None);
    let out = run_pytds(srv.port(), PASSWORD, "SELECT * FROM [dbo].[NOPE]", &[]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stderr.contains("208"), "{out:?}");
    assert!(
        out.stderr.contains("Invalid object name 'dbo.NOPE'."),
        "{out:?}"
    );

    let out = run_pytds(
        srv.port(),
        PASSWORD,
        "SELECT [NOPE] FROM [dbo].[ALLTYPES]",
        &[],
    );
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stderr.contains("207") && out.stderr.contains("Invalid column name 'NOPE'."));

    srv.inject(Fault::Error {
        sql_contains: "ALLTYPES".into(),
        number: 1205,
        class: 13,
        message: "Transaction was deadlocked.".into(),
    });
    let out = run_pytds(
        srv.port(),
        PASSWORD,
        "SELECT [ID] FROM [dbo].[ALLTYPES]",
        &[],
    );
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr.contains("1205") && out.stderr.contains("deadlocked"),
        "{out:?}"
    );
    // one-shot
    let ok = json_rows(&run_pytds(
        srv.port(),
        PASSWORD,
        "SELECT [ID] FROM [dbo].[ALLTYPES]",
        &[],
    ));
    assert_eq!(ok.len(), 5);
}

#[test]
fn tds_query_log_params_and_connector_shapes() {
    if !support::require(pytds()) {
        return;
    }
    let wide = fixtures::wide_table("WIDE", 2_000_000);
    let comp = fixtures::composite_table(10_000);
    let mut cfg = ServerConfig::new(
        DB,
        USER,
        PASSWORD,
        vec![wide, comp, fixtures::types_table()],
    );
    cfg.deny_dmv = true;
    let srv = TdsServer::start(cfg).unwrap();
    let port = srv.port();
    let rows = |q: &str, p: &str| json_rows(&run_pytds(port, PASSWORD, q, &["--params", p]));

    // A chunk of a 2M-row table through sp_executesql: binary search, not a scan.
    let t = Instant::now();
    let got = rows(
        "SELECT [ID], [CODE] FROM [dbo].[WIDE] WHERE [ID] >= %s AND [ID] < %s",
        "[1500000, 1500010]",
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(got.len(), 10);
    assert_eq!(
        got[0],
        vec![Some("1500000".into()), Some("AG01500000".into())]
    );
    let q = srv.queries();
    let last = q.last().unwrap();
    assert!(
        last.sql.contains("@P1") && last.sql.contains("@P2"),
        "{last:?}"
    );
    assert_eq!(last.params, vec!["1500000", "1500010"]);
    assert_eq!((last.rows_sent, last.completed), (10, true));

    // Key bounds, counts with predicates, open-ended ranges.
    let got = rows(
        "SELECT MIN([ID]) AS lo, MAX([ID]) AS hi, COUNT_BIG(*) AS n FROM [dbo].[WIDE]",
        "[]",
    );
    assert_eq!(
        got,
        vec![vec![
            Some("1".into()),
            Some("2000000".into()),
            Some("2000000".into())
        ]]
    );
    let got = rows(
        "SELECT COUNT_BIG(*) AS n FROM [dbo].[WIDE] WHERE [ID] IS NULL OR [ID] < %s",
        "[1000]",
    );
    assert_eq!(got, vec![vec![Some("999".into())]]);
    let got = rows(
        "SELECT COUNT_BIG(*) AS n FROM [dbo].[WIDE] WHERE [ID] >= %s",
        "[1999991]",
    );
    assert_eq!(got, vec![vec![Some("10".into())]]);

    // Composite key: chunk boundaries and an expanded range predicate with CAST(@P AS nvarchar).
    let got = rows(
        "SELECT [REGION], [ID] FROM (SELECT [REGION], [ID], ROW_NUMBER() OVER (ORDER BY [REGION], [ID]) AS rn FROM [dbo].[COMPOSITE]) AS x WHERE (x.rn - 1) %% %s = 0 ORDER BY [REGION], [ID]",
        "[2500]",
    );
    assert_eq!(
        got,
        vec![
            vec![Some(REGIONS[0].into()), Some("1".into())],
            vec![Some(REGIONS[1].into()), Some("2501".into())],
            vec![Some(REGIONS[2].into()), Some("5001".into())],
            vec![Some(REGIONS[3].into()), Some("7501".into())],
        ]
    );
    let got = rows(
        "SELECT COUNT_BIG(*) AS n FROM [dbo].[COMPOSITE] WHERE ([REGION] > CAST(%s AS nvarchar(20)) OR ([REGION] = CAST(%s AS nvarchar(20)) AND [ID] >= %s)) AND ([REGION] < CAST(%s AS nvarchar(20)) OR ([REGION] = CAST(%s AS nvarchar(20)) AND [ID] < %s))",
        r#"["AMERICAS", "AMERICAS", 2501, "ASIA", "ASIA", 5001]"#,
    );
    assert_eq!(got, vec![vec![Some("2500".into())]]);

    // Catalog: tables (DMV denied -> ERROR 300; sys.partitions fallback), columns, key.
    let dmv = "SELECT s.name AS schema_name, t.name AS table_name, CAST(SUM(ps.row_count) AS bigint) AS row_count, CAST(SUM(ps.used_page_count) * 8192.0 / NULLIF(SUM(ps.row_count), 0) AS float) AS avg_row_bytes FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id JOIN sys.dm_db_partition_stats ps ON ps.object_id = t.object_id AND ps.index_id IN (0, 1) WHERE s.name = %s GROUP BY s.name, t.name ORDER BY t.name";
    let out = run_pytds(port, PASSWORD, dmv, &["--params", r#"["dbo"]"#]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr.contains("300")
            && out
                .stderr
                .contains("VIEW DATABASE STATE permission denied in database 'WorldZone'.")
    );
    let fallback = "SELECT s.name AS schema_name, t.name AS table_name, CAST(SUM(p.rows) AS bigint) AS row_count, CAST(NULL AS float) AS avg_row_bytes FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id JOIN sys.partitions p ON p.object_id = t.object_id AND p.index_id IN (0, 1) WHERE s.name = %s GROUP BY s.name, t.name ORDER BY t.name";
    let got = rows(fallback, r#"["dbo"]"#);
    assert_eq!(
        got[0],
        vec![
            Some("dbo".into()),
            Some("ALLTYPES".into()),
            Some("5".into()),
            None
        ]
    );
    assert_eq!(got[2][1].as_deref(), Some("WIDE"));
    let columns = "SELECT c.column_id, c.name, ty.name AS type_name, bt.name AS base_type, c.max_length, c.precision, c.scale, c.is_nullable, c.is_identity, c.is_computed FROM sys.columns c JOIN sys.types ty ON ty.user_type_id = c.user_type_id LEFT JOIN sys.types bt ON bt.user_type_id = ty.system_type_id WHERE c.object_id = OBJECT_ID(%s) ORDER BY c.column_id";
    let got = rows(columns, r#"["[dbo].[ALLTYPES]"]"#);
    let find = |n: &str| {
        got.iter()
            .find(|r| r[1].as_deref() == Some(n))
            .unwrap()
            .clone()
    };
    let s = |x: &str| Some(x.to_string());
    assert_eq!(
        find("C_DEC38_10")[2..7],
        [s("decimal"), s("decimal"), s("17"), s("38"), s("10")]
    );
    assert_eq!(
        find("C_DT2")[2..7],
        [s("datetime2"), s("datetime2"), s("8"), s("27"), s("7")]
    );
    assert_eq!(find("C_NVARCHAR")[4], s("200"));
    assert_eq!(find("C_NVARCHARMAX")[4], s("-1"));
    assert_eq!(find("C_ROWVERSION")[2], s("timestamp"));
    assert_eq!(find("C_HIERARCHYID")[2..4], [s("hierarchyid"), None]);
    assert_eq!(find("ID")[7..10], [s("false"), s("false"), s("false")]);
    assert!(rows(columns, r#"["[dbo].[MISSING]"]"#).is_empty());
    let pk = "SELECT ic.key_ordinal, c.name FROM sys.indexes i JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id WHERE i.object_id = OBJECT_ID(%s) AND i.is_primary_key = 1 ORDER BY ic.key_ordinal";
    assert_eq!(
        rows(pk, r#"["[dbo].[COMPOSITE]"]"#),
        vec![vec![s("1"), s("REGION")], vec![s("2"), s("ID")]]
    );

    // DropAfterRows: the client sees a broken connection, the log an incomplete query.
    srv.clear_log();
    srv.inject(Fault::DropAfterRows {
        table: "WIDE".into(),
        rows: 1000,
    });
    let out = run_pytds(port, PASSWORD, "SELECT * FROM [dbo].[WIDE]", &["--count"]);
    assert_ne!(out.code, Some(0), "{out:?}");
    let q = srv.queries();
    assert_eq!((q[0].rows_sent, q[0].completed), (1000, false), "{q:?}");
}

#[test]
fn tds_pytds_cancel_sends_attention() {
    if !support::require(pytds()) {
        return;
    }
    // (g) cursor.cancel() after 1,000 of 1,000,000 rows: pytds sends Attention and reads up to
    // DONE with the attention flag; the connection then runs another statement.
    let srv = server(vec![fixtures::wide_table("WIDE", 1_000_000)], None);
    let out = run_pytds(
        srv.port(),
        PASSWORD,
        "SELECT * FROM [dbo].[WIDE]",
        &["--cancel-after", "1000"],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "cancelled after 1000\n[\"1\"]\n");
    let q = srv.queries();
    assert!(!q[0].completed && q[0].rows_sent < 1_000_000, "{q:?}");
    assert!(q[1].completed && q[1].sql == "SELECT 1");
}

// ---------------------------------------------------------------- raw TDS client

fn send(s: &mut TcpStream, ty: u8, payload: &[u8]) {
    let mut chunks = payload.chunks(4088).peekable();
    let mut id = 1u8;
    if payload.is_empty() {
        s.write_all(&[ty, 1, 0, 8, 0, 0, 1, 0]).unwrap();
        return;
    }
    while let Some(c) = chunks.next() {
        let eom = chunks.peek().is_none() as u8;
        let len = (c.len() + 8) as u16;
        let mut h = vec![ty, eom];
        h.extend_from_slice(&len.to_be_bytes());
        h.extend_from_slice(&[0, 0, id, 0]);
        h.extend_from_slice(c);
        s.write_all(&h).unwrap();
        id = id.wrapping_add(1);
    }
}

/// Reads one message; returns its payload and the largest packet size seen.
fn recv(s: &mut TcpStream) -> (Vec<u8>, usize) {
    let mut p = Vec::new();
    let mut biggest = 0;
    loop {
        let mut h = [0u8; 8];
        s.read_exact(&mut h).unwrap();
        assert_eq!(h[0], 0x04, "response packets are type 4");
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        biggest = biggest.max(len);
        let st = p.len();
        p.resize(st + len - 8, 0);
        s.read_exact(&mut p[st..]).unwrap();
        if h[1] & 1 == 1 {
            return (p, biggest);
        }
    }
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// Connects and logs in with a hand-built PRELOGIN and LOGIN7.
fn raw_login(port: u16, packet: u32) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // PRELOGIN: VERSION + ENCRYPTION(not supported)
    let pre = [0u8, 0, 11, 0, 6, 1, 0, 17, 0, 1, 0xFF, 0, 0, 0, 0, 0, 0, 2];
    send(&mut s, 0x12, &pre);
    recv(&mut s);
    let fields = [
        ("host", false),
        (USER, false),
        (PASSWORD, true),
        ("raw", false),
        ("", false),
        ("", false),
        ("raw", false),
        ("", false),
        (DB, false),
    ];
    let mut fixed = vec![0u8; 94];
    fixed[4..8].copy_from_slice(&0x7400_0004u32.to_le_bytes());
    fixed[8..12].copy_from_slice(&packet.to_le_bytes());
    let mut data = Vec::new();
    for (i, (v, pw)) in fields.iter().enumerate() {
        let mut b = utf16(v);
        if *pw {
            for x in b.iter_mut() {
                *x = x.rotate_left(4) ^ 0xA5;
            }
        }
        let off = (94 + data.len()) as u16;
        fixed[36 + 4 * i..38 + 4 * i].copy_from_slice(&off.to_le_bytes());
        fixed[38 + 4 * i..40 + 4 * i]
            .copy_from_slice(&(v.encode_utf16().count() as u16).to_le_bytes());
        data.extend_from_slice(&b);
    }
    let mut login = fixed;
    login.extend_from_slice(&data);
    let n = login.len() as u32;
    login[0..4].copy_from_slice(&n.to_le_bytes());
    send(&mut s, 0x10, &login);
    let (r, _) = recv(&mut s);
    assert_eq!(r[0], 0xAD, "LOGINACK first");
    s
}

fn batch(s: &mut TcpStream, sql: &str) {
    let mut p = vec![
        22, 0, 0, 0, 18, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    ];
    p.extend_from_slice(&utf16(sql));
    send(s, 0x01, &p);
}

fn last_done(msg: &[u8]) -> (u8, u16, u64) {
    let t = &msg[msg.len() - 13..];
    (
        t[0],
        u16::from_le_bytes([t[1], t[2]]),
        u64::from_le_bytes(t[5..13].try_into().unwrap()),
    )
}

#[test]
fn tds_raw_attention_ends_with_done_attn() {
    let srv = server(vec![fixtures::wide_table("WIDE", 1_000_000)], Some(512));
    let mut s = raw_login(srv.port(), 4096);
    batch(&mut s, "SELECT * FROM [dbo].[WIDE]");
    // Read some packets of the result, then send Attention.
    let mut h = [0u8; 8];
    let mut seen = 0;
    for _ in 0..20 {
        s.read_exact(&mut h).unwrap();
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        assert!(len <= 512 && h[1] & 1 == 0);
        let mut b = vec![0u8; len - 8];
        s.read_exact(&mut b).unwrap();
        seen += 1;
    }
    send(&mut s, 0x06, &[]);
    // The rest of the message ends with DONE(attention acknowledged).
    let (rest, biggest) = recv(&mut s);
    assert!(biggest <= 512);
    let (tok, status, _) = last_done(&rest);
    assert_eq!((tok, status & 0x20), (0xFD, 0x20), "after {seen} packets");
    // The connection is usable afterwards.
    batch(&mut s, "SELECT 1");
    let (msg, _) = recv(&mut s);
    assert_eq!(last_done(&msg), (0xFD, 0x10, 1));
    let q = srv.queries();
    assert!(!q[0].completed && q[0].rows_sent < 1_000_000);
}

#[test]
fn tds_raw_throughput_of_the_wide_table() {
    // Measures what the server generates and encodes for one reader that only frames packets.
    let rows = 300_000u64;
    let srv = server(vec![fixtures::wide_table("WIDE", rows)], None);
    let mut s = raw_login(srv.port(), 32767);
    let t = Instant::now();
    batch(&mut s, "SELECT * FROM [dbo].[WIDE]");
    let mut bytes = 0usize;
    let mut tail = Vec::new();
    loop {
        let mut h = [0u8; 8];
        s.read_exact(&mut h).unwrap();
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        let mut b = vec![0u8; len - 8];
        s.read_exact(&mut b).unwrap();
        bytes += len;
        tail.extend_from_slice(&b);
        if tail.len() > 64 {
            tail.drain(..tail.len() - 64);
        }
        if h[1] & 1 == 1 {
            break;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(last_done(&tail), (0xFD, 0x10, rows));
    eprintln!(
        "TDS server: {rows} rows x 66 columns, {:.0} bytes/row, {:.0} rows/s, {:.0} MB/s",
        bytes as f64 / rows as f64,
        rows as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}
