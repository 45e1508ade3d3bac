//! The lake on S3: the demo workflow with an `s3://` warehouse on a real S3-compatible server
//! (moto, in memory, on loopback, started by each test), read back by pyiceberg and DuckDB,
//! loaded into the SQLite target, replaced by later runs and resumed after a crash.

use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

pub(crate) const BUCKET: &str = "dag-lake";
pub(crate) const KEY_ID: &str = "AKIDDAGTEST";
/// Distinctive, so that a leak into output or state would be found.
pub(crate) const SECRET: &str = "s3cr3t-that-must-never-be-shown";

/// moto's S3 server (`python -m moto.server`, from moto[server]), the S3 server the tests start.
pub(crate) fn moto() -> Result<(), String> {
    python_can(
        "moto's S3 server (moto[server])",
        "import moto.server, flask",
    )
}

/// DuckDB's httpfs extension, which reads the lake from S3 (beside the other readers).
pub(crate) fn httpfs() -> Result<(), String> {
    python_can(
        "DuckDB's httpfs extension",
        "import duckdb_extension_httpfs",
    )
}

/// An in-memory S3 server on a free loopback port with one bucket; killed on drop.
pub struct S3Server {
    child: Child,
    pub port: u16,
}

impl S3Server {
    pub fn start() -> S3Server {
        // A port the kernel just gave out and took back: free unless someone races for it.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = python_command()
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto's S3 server");
        let s = S3Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((status, _)) = s.http("GET", "/", "") {
                assert_eq!(status, 200, "moto's S3 server answers GET / with {status}");
                break;
            }
            assert!(Instant::now() < deadline, "moto's S3 server did not answer");
            std::thread::sleep(Duration::from_millis(200));
        }
        let (status, body) = s.http("PUT", &format!("/{BUCKET}"), "").unwrap();
        assert_eq!(status, 200, "create bucket: {body}");
        s
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One plain HTTP/1.1 request (moto accepts unsigned ones): status and body.
    fn http(&self, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        http_request(self.port, method, path, "", body)
    }

    /// Every key in the bucket under `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut path = format!("/{BUCKET}?list-type=2&prefix={prefix}");
            if let Some(t) = &token {
                path += &format!("&continuation-token={}", encode_query(t));
            }
            let (status, body) = self.http("GET", &path, "").unwrap();
            assert_eq!(status, 200, "list {prefix}: {body}");
            keys.extend(xml_values(&body, "Key"));
            token = xml_values(&body, "NextContinuationToken")
                .into_iter()
                .next();
            if token.is_none() {
                break;
            }
        }
        keys.sort();
        keys
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn encode_query(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The texts of every `<tag>...</tag>` in an XML document (S3 listings escape no key we write).
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_string());
        rest = &after[j + close.len()..];
    }
    out
}

/// The small demo workflow with its lake in the bucket; the keys come from the environment.
fn s3_workflow(src: &std::path::Path, s3: &S3Server) -> String {
    let local = "[lake]\nnamespace = \"worldzone\"\n";
    let wf = small_workflow(src);
    assert!(wf.contains(local));
    wf.replace(
        local,
        &format!(
            "{local}warehouse = \"s3://{BUCKET}/lake\"\nretention = 0\n\n[lake.s3]\nendpoint = \"{}\"\n\
             path_style = true\n",
            s3.endpoint()
        ),
    )
}

fn dag_s3(env: &Env, args: &[&str], fault: Option<&str>) -> Ran {
    let r: Ran = env
        .command(args, fault)
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .output()
        .expect("run dag")
        .into();
    assert!(
        !r.stdout.contains(SECRET) && !r.stderr.contains(SECRET),
        "the secret key was printed: {r:?}"
    );
    r
}

/// pyiceberg and DuckDB read the lake from the bucket and agree with the source (and target).
fn check_s3_lake(env: &Env, s3: &S3Server, src: &std::path::Path) -> String {
    let out = env
        .lake_check("worldzone")
        .s3(
            &format!("s3://{BUCKET}/lake"),
            &s3.endpoint(),
            KEY_ID,
            SECRET,
        )
        .arg("--source")
        .arg(src)
        .arg("--target-db")
        .arg(env.state().join("target.db"))
        .run();
    assert!(out.contains("all "), "{out}");
    out
}

/// Run directories of `table` in the bucket.
fn runs_in_bucket(s3: &S3Server, table: &str) -> Vec<String> {
    let prefix = format!("lake/worldzone/{table}/");
    let mut runs: Vec<String> = s3
        .keys(&prefix)
        .iter()
        .filter_map(|k| k[prefix.len()..].split('/').next().map(str::to_string))
        // The table's own metadata directory is not a run's.
        .filter(|d| d != "metadata")
        .collect();
    runs.dedup();
    runs
}

fn data_files_in_bucket(s3: &S3Server, table: &str, run: &str) -> usize {
    s3.keys(&format!("lake/worldzone/{table}/{run}/data/"))
        .iter()
        .filter(|k| k.ends_with(".parquet"))
        .count()
}

fn verify_full_and_exact(env: &Env) {
    let (run, tasks) = env.status("w");
    assert_eq!(run["status"], "succeeded", "{run}");
    let verifies: Vec<_> = tasks.iter().filter(|t| t["stage"] == "verify").collect();
    assert!(!verifies.is_empty());
    for t in verifies {
        let o = &t["outputs"];
        assert_eq!(o["verify_mode"], "full", "{t}");
        assert_eq!(o["lake"], o["digest"], "{t}");
        assert_eq!(o["target"], o["digest"], "{t}");
    }
}

#[test]
fn the_demo_on_s3_runs_replaces_and_reads_back() {
    if !require(moto()) {
        return;
    }
    let s3 = S3Server::start();
    let src = small_demo_source();
    let env = Env::new();
    env.workflow("w", &s3_workflow(&src, &s3));

    let t0 = Instant::now();
    let r = dag_s3(&env, &["run", "w"], None);
    eprintln!("demo run on S3: {:.2}s", t0.elapsed().as_secs_f64());
    assert_eq!(r.code, Some(0), "{r:?}");
    verify_full_and_exact(&env);
    let (run1, tasks) = env.status("w");
    let run1 = run1["id"].as_str().unwrap().to_string();
    // Nothing went to the local disk: the files are in the bucket, one per recorded data file.
    assert!(!env.state().join("warehouse").exists());
    for t in tasks.iter().filter(|t| t["stage"] == "extract") {
        let table = t["table"].as_str().unwrap();
        assert_eq!(
            data_files_in_bucket(&s3, table, &run1) as u64,
            t["outputs"]["data_files"].as_u64().unwrap(),
            "{table}"
        );
    }
    let status = dag_s3(&env, &["status", "w", "--json"], None);
    assert!(!status.stdout.contains(SECRET));
    let readers = require_for("the independent readers' checks", python_readers())
        && require_for("the independent readers' checks", httpfs());
    if readers {
        let report = check_s3_lake(&env, &s3, &src);
        assert!(report.contains("AGENTSVES source rows=9066"), "{report}");
    }

    // Later full runs replace every table: with `retention = 0` the replaced version stays for
    // readers that opened it, anything older goes (snapshot expired, its files deleted from the
    // bucket), as on local disk.
    let r = dag_s3(&env, &["run", "w"], None);
    assert_eq!(r.code, Some(0), "{r:?}");
    verify_full_and_exact(&env);
    let run2 = env.status("w").0["id"].as_str().unwrap().to_string();
    assert_eq!(
        runs_in_bucket(&s3, "AGENTSVES"),
        [run1.clone(), run2.clone()]
    );
    let r = dag_s3(&env, &["run", "w"], None);
    assert_eq!(r.code, Some(0), "{r:?}");
    let run3 = env.status("w").0["id"].as_str().unwrap().to_string();
    for table in ["AGENTSVES", "TRANSACTIONS", "COUNTRIES"] {
        assert_eq!(
            runs_in_bucket(&s3, table),
            [run2.clone(), run3.clone()],
            "{table}"
        );
    }
    let (n, distinct) = count_distinct(&env.state().join("target.db"), "AGENTSVES", "AGENT_ID");
    assert_eq!((n, distinct), (9066, 9066));
    if readers {
        check_s3_lake(&env, &s3, &src);
    }
    // The state store holds no secret either.
    for entry in walk(&env.state()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "secret stored in {}",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_crash_on_s3_resumes_exactly_and_leaves_no_stray_files() {
    if !require(moto()) {
        return;
    }
    let s3 = S3Server::start();
    let src = small_demo_source();
    let env = Env::new();
    env.workflow("w", &s3_workflow(&src, &s3));
    let r = dag_s3(&env, &["run", "w"], Some("kill:after_chunk:AGENTSVES:1"));
    assert_eq!(r.signal, Some(9), "expected a SIGKILL: {r:?}");
    // What an attempt killed while writing chunk 2 leaves: a data file no chunk record names.
    let id = env.status("w").0["id"].as_str().unwrap().to_string();
    let stray = format!("lake/worldzone/AGENTSVES/{id}/data/{id}-c00002-a1-00000.parquet");
    let (status, body) = s3
        .http("PUT", &format!("/{BUCKET}/{stray}"), "torn")
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(s3.keys(&stray).contains(&stray));
    let r = dag_s3(&env, &["run", "w"], None);
    assert_eq!(r.code, Some(0), "the resumed run must finish: {r:?}");
    assert!(r.stderr.contains("resuming run"), "{r:?}");
    assert!(
        r.stdout
            .contains("removed 1 data file(s) of an unfinished attempt")
            || r.stderr
                .contains("removed 1 data file(s) of an unfinished attempt"),
        "{r:?}"
    );
    assert!(s3.keys(&stray).is_empty(), "the stray file is still there");
    verify_full_and_exact(&env);
    let (run, tasks) = env.status("w");
    let id = run["id"].as_str().unwrap();
    let ex = env.task("w", "AGENTSVES", "extract");
    assert_eq!(ex["attempts"].as_u64(), Some(2));
    // Only the committed files are left in the bucket: those of the dead attempt are gone.
    for t in tasks.iter().filter(|t| t["stage"] == "extract") {
        let table = t["table"].as_str().unwrap();
        assert_eq!(
            data_files_in_bucket(&s3, table, id) as u64,
            t["outputs"]["data_files"].as_u64().unwrap(),
            "{table}: stray data files"
        );
    }
    let target = env.state().join("target.db");
    for (table, key) in [("AGENTSVES", "AGENT_ID"), ("TRANSACTIONS", "TXN_ID")] {
        let (n, distinct) = count_distinct(&target, table, key);
        assert_eq!(n, distinct, "{table}: duplicate keys in the target");
    }
    if require_for("the independent readers' checks", python_readers())
        && require_for("the independent readers' checks", httpfs())
    {
        check_s3_lake(&env, &s3, &src);
    }
}
