//! The lake in a REST catalog: `rustberg`, a REST catalog server from crates.io (built on
//! iceberg-rust, not by us; `tests/run` installs it into `target/tools`), started by each test in
//! dev mode with an embedded catalog store, API-key authentication and the test's warehouse.
//! pyiceberg's own REST client and DuckDB read what dag committed through it; a commit by
//! another writer while dag commits is detected and built upon, not overwritten; a kill at each
//! lake commit point is resumed without a second commit.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::lakehouse::{keep_transactions, own_demo, sums};
use crate::mssql::{expected, server, workflow};
use crate::support::*;
use crate::tds::fixtures;

/// The API key the tests' catalog accepts (rustberg keys are `rb_` and 7 to 61 more
/// characters); distinctive, so that a leak into output would be found.
const KEY: &str = "rb_dag-test-key-must-not-leak";

/// The `rustberg` binary: `DAG_TEST_RUSTBERG`, else where `tests/run` installs it.
fn rustberg() -> Result<PathBuf, String> {
    let path = std::env::var_os("DAG_TEST_RUSTBERG")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/tools/bin/rustberg"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no REST catalog server at {} (tests/run installs rustberg there; or set \
             DAG_TEST_RUSTBERG)",
            path.display()
        ))
    }
}

/// A rustberg REST catalog on a free loopback port, its warehouse the local directory given;
/// killed on drop.
pub struct RestServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for RestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RestServer {
    pub fn start(bin: &Path, warehouse: &Path) -> RestServer {
        std::fs::create_dir_all(warehouse).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // A port the kernel just gave out and took back: free unless someone races for it
        // (rustberg never reports the port it bound to when given port 0).
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("rustberg.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[server]
host = "127.0.0.1"
port = {port}

[server.auth]
api_key_enabled = true

[[server.auth.api_keys]]
name = "dag-tests"
tenant = "default"
roles = ["admin"]
key_env = "RUSTBERG_TEST_KEY"

[storage]
catalog_url = "file://{store}"
warehouse_location = "file://{warehouse}"

[rate_limit]
enabled = false

[audit]
sink = "none"
"#,
                store = dir.path().join("store").display(),
                warehouse = warehouse.display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("rustberg.log")).unwrap();
        let child = Command::new(bin)
            .args(["--dev", "--insecure-http", "--config"])
            .arg(&config)
            .env("RUSTBERG_TEST_KEY", KEY)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start rustberg");
        let mut s = RestServer {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((status, body)) = s.get("/v1/config") {
                assert_eq!(status, 200, "rustberg answers GET /v1/config with {body}");
                break;
            }
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("rustberg exited ({st}): {}", s.log());
            }
            assert!(
                Instant::now() < deadline,
                "rustberg did not answer: {}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("rustberg.log")).unwrap_or_default()
    }

    /// One authenticated HTTP/1.1 GET: status and body.
    fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        let auth = format!("Authorization: Bearer {KEY}\r\n");
        http_request(self.port, "GET", path, &auth, "")
    }
}

/// The REST server and the python readers, or why the test cannot run.
fn setup(env: &Env) -> Option<RestServer> {
    if !require(python_readers()) {
        return None;
    }
    let bin = match rustberg() {
        Ok(b) => b,
        Err(why) => {
            require(Err(why));
            return None;
        }
    };
    Some(RestServer::start(&bin, &env.state().join("warehouse")))
}

/// `workflow`'s `[lake]` section pointed at the REST catalog `srv`.
fn through_rest(workflow: &str, srv: &RestServer) -> String {
    let lake = workflow
        .find("[lake]\n")
        .expect("the workflow has a [lake] section");
    let mut out = workflow.to_string();
    out.insert_str(
        lake + "[lake]\n".len(),
        &format!(
            "catalog = \"rest\"\nuri = \"{}\"\ntoken = \"{KEY}\"\n",
            srv.uri()
        ),
    );
    out
}

/// history.py on `table` of the REST catalog: every snapshot read by pyiceberg and DuckDB.
fn history(env: &Env, srv: &RestServer, ns: &str, table: &str, column: &str) -> Command {
    let mut c = python_command();
    c.arg(repo().join("tests/readers/history.py"))
        .args(["--catalog", &srv.uri()])
        .arg("--warehouse")
        .arg(env.state().join("warehouse"))
        .args(["--namespace", ns, "--table", table, "--column", column])
        .env("DAG_TEST_REST_TOKEN", KEY);
    c
}

/// What history.py reads of TRANSACTIONS (by TXN_ID) in the REST catalog `srv`.
fn read_history(env: &Env, srv: &RestServer) -> Value {
    let o: Ran = history(env, srv, "worldzone", "TRANSACTIONS", "TXN_ID")
        .output()
        .unwrap()
        .into();
    assert_eq!(o.code, Some(0), "{o:?}");
    serde_json::from_str(o.stdout.trim()).unwrap()
}

fn no_key_in(r: &Ran) {
    assert!(
        !r.stdout.contains(KEY) && !r.stderr.contains(KEY),
        "the catalog's token was shown: {r:?}"
    );
}

/// The demo through the REST catalog, run twice with the source changed in between: pyiceberg's
/// REST client and DuckDB read every table with the source's counts and fingerprints, and the
/// refreshed table kept its identity with both versions readable by snapshot id.
#[test]
fn rest_catalog_demo_read_by_independent_readers() {
    let env = Env::new();
    let Some(srv) = setup(&env) else { return };
    let source = own_demo(&env);
    env.workflow("wz", &through_rest(&small_workflow(&source), &srv));
    let r = env.dag(&["run", "wz"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    no_key_in(&r);
    let first = sums(&source);
    keep_transactions(&source, 20_001);
    let r = env.dag(&["run", "wz"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let second = sums(&source);
    assert_ne!(first, second);
    assert!(
        !env.state().join("catalog.db").exists(),
        "an SQL catalog was made too"
    );
    let out = env
        .lake_check("worldzone")
        .rest(&srv.uri(), KEY)
        .arg("--source")
        .arg(&source)
        .arg("--target-db")
        .arg(env.state().join("target.db"))
        .run();
    assert!(out.contains("all 4 tables match the source"), "{out}");

    let h = read_history(&env, &srv);
    let snaps = h["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 2, "{h}");
    assert_eq!(snaps[1]["parent"], snaps[0]["id"], "{h}");
    assert_eq!(snaps[1]["operation"], "overwrite", "{h}");
    for (s, (rows, keys)) in snaps.iter().zip([first, second]) {
        assert_eq!(s["pyiceberg"], s["duckdb"], "{h}");
        assert_eq!(s["pyiceberg"]["rows"], rows, "{h}");
        assert_eq!(s["pyiceberg"]["keys"], keys, "{h}");
    }
    let status = env.dag(&["status", "wz"]);
    assert_eq!(status.code, Some(0), "{status:?}");
    no_key_in(&status);
    assert!(status.stdout.contains("snapshot"), "{status:?}");

    // Retention through the catalog: a third run keeping no history expires the first snapshot
    // (a commit of its own) and deletes the files only it referenced.
    let first_run_id = snaps[0]["summary"]["dag.run-id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(parquet_files(&env.state(), "TRANSACTIONS", &first_run_id) > 0);
    env.workflow(
        "wz",
        &through_rest(&small_workflow(&source), &srv)
            .replace("[lake]\n", "[lake]\nretention = 0\n"),
    );
    let r = env.dag(&["run", "wz", "--lake-only"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let h = read_history(&env, &srv);
    let left = h["snapshots"].as_array().unwrap();
    assert_eq!(
        left.len(),
        2,
        "the current snapshot and its parent stay: {h}"
    );
    assert_eq!(left[0]["id"], snaps[1]["id"], "{h}");
    assert_eq!(left[1]["pyiceberg"]["rows"], second.0, "{h}");
    assert_eq!(
        parquet_files(&env.state(), "TRANSACTIONS", &first_run_id),
        0,
        "the expired snapshot's files are deleted"
    );
}

/// Another writer commits to the table while dag commits a refresh (dag is held just before its
/// catalog commit): the catalog refuses dag's commit built on the older state, dag builds it again
/// on the other writer's snapshot, and that snapshot stays in the table's lineage.
#[test]
fn rest_catalog_detects_a_concurrent_commit() {
    let env = Env::new();
    let Some(srv) = setup(&env) else { return };
    let source = own_demo(&env);
    env.workflow("wz", &through_rest(&small_workflow(&source), &srv));
    let args = ["run", "wz", "--lake-only", "--tables", "TRANSACTIONS"];
    let r = env.dag(&args);
    assert_eq!(r.code, Some(0), "{r:?}");
    keep_transactions(&source, 25_001);

    // The other writer: pyiceberg loads the table first, then waits to be let go.
    let (holder, go) = hold_table(
        history(&env, &srv, "worldzone", "TRANSACTIONS", "TXN_ID"),
        env.path(),
    );
    let mut dag = env.spawn(&args, Some("stall:before_catalog_commit:TRANSACTIONS@10"));
    let mut stdout = dag.stdout.take().unwrap();
    let drain = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
    });
    let mut stderr = dag.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        let mut told = false;
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            if !told && String::from_utf8_lossy(&all).contains("stalling at") {
                told = true;
                let _ = tx.send(());
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    rx.recv_timeout(Duration::from_secs(300))
        .expect("dag never reached its catalog commit");
    // dag has built its commit and waits before sending it: pyiceberg appends now.
    std::fs::write(&go, "").unwrap();
    let other: Ran = holder.wait_with_output().unwrap().into();
    assert_eq!(other.code, Some(0), "{other:?}");
    let other: Value = serde_json::from_str(other.stdout.trim()).unwrap();
    let status = dag.wait().unwrap();
    let err = reader.join().unwrap();
    drain.join().unwrap();
    assert!(status.success(), "{status}: {err}");

    let h = read_history(&env, &srv);
    let snaps = h["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 3, "dag, pyiceberg, dag: {h}");
    assert_eq!(
        snaps[1]["id"], other["snapshot_appended"],
        "pyiceberg's snapshot: {h}"
    );
    assert!(snaps[1]["summary"].get("dag.run-id").is_none(), "{h}");
    assert_eq!(
        snaps[2]["parent"], snaps[1]["id"],
        "dag's refresh was built on the other writer's commit: {h}"
    );
    assert_eq!(h["current"], snaps[2]["id"], "{h}");
    let (rows, keys) = sums(&source);
    assert_eq!(snaps[2]["pyiceberg"]["rows"], rows, "{h}");
    assert_eq!(snaps[2]["pyiceberg"]["keys"], keys, "{h}");
    assert_eq!(snaps[2]["duckdb"], snaps[2]["pyiceberg"], "{h}");
}

/// A SQL Server table (the TDS test server) through the REST catalog: pyiceberg and DuckDB find
/// the counts and fingerprints computed from the server's own values.
#[test]
fn rest_catalog_holds_a_sql_server_table_exactly() {
    let env = Env::new();
    let Some(rest) = setup(&env) else { return };
    let wide = fixtures::wide_table("AGENTSVES", 4_000);
    let types = fixtures::types_table();
    let want: std::collections::BTreeMap<String, Value> = [&wide, &types]
        .iter()
        .map(|t| (t.name.clone(), expected(t)))
        .collect();
    let srv = server(vec![wide, types]);
    env.workflow(
        "wz",
        &through_rest(
            &workflow(
                srv.port(),
                "Pa55word!",
                "[table.AGENTSVES]\nchunk_rows = 1500\n",
            ),
            &rest,
        ),
    );
    let r = env.dag(&["run", "wz", "--lake-only"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let file = env.path().join("expect.json");
    std::fs::write(&file, serde_json::to_string(&want).unwrap()).unwrap();
    env.lake_check("migrated_WorldZone")
        .rest(&rest.uri(), KEY)
        .arg("--expect")
        .arg(&file)
        .run();
}

/// A kill at each point of the lake commit, through the REST catalog, then a resumed run: one
/// snapshot of the run in the table, and the lake exactly the source.
#[test]
fn rest_catalog_kills_at_the_commit_points_commit_once() {
    for point in [
        "before_catalog_commit:TRANSACTIONS",
        "after_commit:TRANSACTIONS",
        "after_publish:TRANSACTIONS",
    ] {
        let env = Env::new();
        let Some(srv) = setup(&env) else { return };
        let source = small_demo_source();
        env.workflow("w", &through_rest(&small_workflow(&source), &srv));
        // All tables: a run of some (`--tables`) is not resumed but started anew.
        let args = ["run", "w", "--lake-only"];
        let r = env.dag_fault(&args, &format!("kill:{point}"));
        assert_eq!(r.signal, Some(9), "expected a SIGKILL at {point}: {r:?}");
        let r = env.dag(&args);
        assert_eq!(r.code, Some(0), "{point}: {r:?}");
        assert!(r.stderr.contains("resuming run"), "{point}: {r:?}");
        let h = read_history(&env, &srv);
        assert_eq!(
            h["snapshots"].as_array().unwrap().len(),
            1,
            "{point}: one commit of the run: {h}"
        );
        let (run, tasks) = env.status("w");
        assert_eq!(run["sessions"], 2, "{point}: {run}");
        let write = tasks
            .iter()
            .find(|t| t["table"] == "TRANSACTIONS" && t["stage"] == "write_iceberg")
            .unwrap();
        assert_eq!(write["attempts"], 2, "{point}: {write}");
        let out = env
            .lake_check("worldzone")
            .rest(&srv.uri(), KEY)
            .arg("--source")
            .arg(&source)
            .run();
        assert!(
            out.contains("all 4 tables match the source"),
            "{point}: {out}"
        );
    }
}

/// A wrong token is refused with a clear message naming the catalog, before anything runs.
#[test]
fn rest_catalog_refuses_a_wrong_token_clearly() {
    let env = Env::new();
    let Some(srv) = setup(&env) else { return };
    let source = small_demo_source();
    let wf =
        through_rest(&small_workflow(&source), &srv).replace(KEY, "rb_not-the-right-key-at-all");
    env.workflow("w", &wf);
    let r = env.dag(&["run", "w", "--lake-only"]);
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(r.signal.is_none(), "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("lake REST catalog {}", srv.uri()))
            && r.stderr.contains("401")
            && r.stderr.contains("lake.token"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("rb_not-the-right-key-at-all"), "{r:?}");
}

/// An OAuth2 token endpoint on a free loopback port: answers every POST with `token` as the
/// access token and keeps the form bodies it was sent.
struct TokenEndpoint {
    port: u16,
    forms: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl TokenEndpoint {
    fn start(token: &'static str) -> TokenEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let forms = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = forms.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut c) = conn else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then as many body bytes as Content-Length says.
                let body = loop {
                    let Ok(n) = c.read(&mut chunk) else {
                        break None;
                    };
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break Some(body[..len].to_string());
                        }
                    }
                };
                let Some(body) = body else { continue };
                seen.lock().unwrap().push(body);
                let answer = format!(
                    r#"{{"access_token":"{token}","token_type":"bearer","expires_in":3600}}"#
                );
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        TokenEndpoint { port, forms }
    }

    fn uri(&self) -> String {
        format!("http://127.0.0.1:{}/oauth/token", self.port)
    }

    /// The form fields of every request, each sorted.
    fn forms(&self) -> Vec<Vec<(String, String)>> {
        self.forms
            .lock()
            .unwrap()
            .iter()
            .map(|f| {
                let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(f.as_bytes())
                    .into_owned()
                    .collect();
                pairs.sort();
                pairs
            })
            .collect()
    }
}

/// An OAuth2 client credential instead of a token: dag exchanges it at the token endpoint with
/// the same form pyiceberg's REST client sends (client credentials grant, RFC 6749 4.4), and the
/// catalog accepts the token it got.
#[test]
fn rest_catalog_credential_is_exchanged_for_a_token() {
    let env = Env::new();
    let Some(srv) = setup(&env) else { return };
    let idp = TokenEndpoint::start(KEY);
    let source = small_demo_source();
    let wf = through_rest(&small_workflow(&source), &srv).replace(
        &format!("token = \"{KEY}\"\n"),
        &format!(
            "credential = \"dag-client:cl1ent-s3cret\"\noauth_uri = \"{}\"\n",
            idp.uri()
        ),
    );
    assert!(wf.contains("credential"), "{wf}");
    env.workflow("w", &wf);
    let r = env.dag(&["run", "w", "--lake-only"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stderr.contains("cl1ent-s3cret"), "{r:?}");
    let ours = idp.forms();
    assert_eq!(ours.len(), 1, "one exchange for the run: {ours:?}");

    // pyiceberg's REST client, given the same credential and endpoint.
    let o: Ran = python_command()
        .arg("-c")
        .arg(
            "import sys; from pyiceberg.catalog.rest import RestCatalog; \
             c = RestCatalog('dag', uri=sys.argv[1], credential='dag-client:cl1ent-s3cret', \
             **{'oauth2-server-uri': sys.argv[2]}); \
             print(c.load_table('worldzone.COUNTRIES').scan().to_arrow().num_rows)",
        )
        .arg(srv.uri())
        .arg(idp.uri())
        .output()
        .unwrap()
        .into();
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.stdout.trim(), "249", "{o:?}");
    let all = idp.forms();
    assert!(all.len() >= 2, "pyiceberg never asked for a token: {all:?}");
    for theirs in &all[1..] {
        assert_eq!(&all[0], theirs, "dag's form and pyiceberg's differ");
    }
    assert!(
        all[0].contains(&("grant_type".into(), "client_credentials".into()))
            && all[0].contains(&("client_id".into(), "dag-client".into()))
            && all[0].contains(&("client_secret".into(), "cl1ent-s3cret".into())),
        "{all:?}"
    );
}
