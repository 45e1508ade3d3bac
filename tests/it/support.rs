//! Test harness: a scratch directory per test, the `dag` binary, the shared small demo source
//! and the independent Python readers.
//!
//! A test that needs a tool or service which may be absent (a Python reader, a client, a
//! server) checks it first with [`require`] (or [`require_for`] for one part of the test):
//! without it the test prints why it skips, except under `CI=true`, where it fails with that
//! reason. `tests/run` installs the tools.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

pub const DAG: &str = env!("CARGO_BIN_EXE_dag");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether the test may use what `ok` checked. Without it the test prints why it skips and
/// returns false, except under CI, where a missing dependency fails the test.
pub fn require(ok: Result<(), String>) -> bool {
    match ok {
        Ok(()) => true,
        Err(why) if under_ci() => panic!("required under CI: {why}"),
        Err(why) => {
            skipped("SKIPPED", &why);
            false
        }
    }
}

/// [`require`] for one part of a test (`part`, e.g. "the independent readers' checks"): without
/// it the test goes on without that part, after saying so; under CI it fails.
pub fn require_for(part: &str, ok: Result<(), String>) -> bool {
    match ok {
        Ok(()) => true,
        Err(why) if under_ci() => panic!("required under CI ({part}): {why}"),
        Err(why) => {
            skipped(&format!("SKIPPED {part} of"), &why);
            false
        }
    }
}

/// Prints `<what> <test>: <why>` straight to stderr, past the test harness's capture of
/// `eprintln!`, so every run shows what was skipped and why.
pub fn skipped(what: &str, why: &str) {
    use std::io::Write;
    let current = std::thread::current();
    let test = current.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "{what} {test}: {why}");
}

/// The Python the tests run their readers and clients with: `DAG_TEST_PYTHON` when set
/// (`tests/run` sets it to the virtualenv it fills from `tests/readers/requirements.txt`,
/// `target/test-venv`), else that virtualenv when it exists, else `python3` on the PATH.
pub fn python() -> std::ffi::OsString {
    if let Some(p) = std::env::var_os("DAG_TEST_PYTHON").filter(|p| !p.is_empty()) {
        return p;
    }
    let venv = repo().join("target/test-venv/bin/python");
    if venv.exists() {
        venv.into_os_string()
    } else {
        "python3".into()
    }
}

/// A command running [`python`].
pub fn python_command() -> Command {
    Command::new(python())
}

/// Whether [`python`] runs `statement` (imports, as a reader needs them); why not, naming `what`
/// is missing and how to get it, when it does not. Each statement is tried once per process.
pub fn python_can(what: &str, statement: &str) -> Result<(), String> {
    static SEEN: Mutex<BTreeMap<String, Result<(), String>>> = Mutex::new(BTreeMap::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    seen.entry(statement.to_string())
        .or_insert_with(|| {
            let py = python();
            let shown = py.to_string_lossy().into_owned();
            let out = Command::new(&py)
                .args(["-c", statement])
                .stdin(Stdio::null())
                .output()
                .map_err(|e| {
                    format!("{what}: Python ({shown}) is not runnable ({e}); run tests/run")
                })?;
            if out.status.success() {
                Ok(())
            } else {
                let err = String::from_utf8_lossy(&out.stderr);
                Err(format!(
                    "{what} missing in {shown} ({}); tests/run installs it (or pip install -r \
                     tests/readers/requirements.txt into the Python that DAG_TEST_PYTHON names)",
                    err.lines().last().unwrap_or("").trim()
                ))
            }
        })
        .clone()
}

/// The independent readers: pyiceberg (its SQL catalog), pyarrow and DuckDB with its avro and
/// iceberg extensions, as `tests/readers/check_lake.py` imports them.
pub fn python_readers() -> Result<(), String> {
    python_can(
        "the python readers (pyiceberg, pyarrow, DuckDB)",
        "import pyarrow, pyarrow.compute, duckdb, duckdb_extension_iceberg, duckdb_extension_avro; \
         from pyiceberg.catalog.sql import SqlCatalog",
    )
}

pub struct Env {
    pub dir: tempfile::TempDir,
}

pub struct Ran {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?} signal {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.signal, self.stdout, self.stderr
        )
    }
}

impl From<Output> for Ran {
    fn from(o: Output) -> Self {
        use std::os::unix::process::ExitStatusExt;
        Ran {
            code: o.status.code(),
            signal: o.status.signal(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
        Env { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn state(&self) -> PathBuf {
        self.path().join("state")
    }

    pub fn workflow(&self, name: &str, text: &str) {
        std::fs::write(
            self.path().join("workflows").join(format!("{name}.toml")),
            text,
        )
        .unwrap();
    }

    pub fn command(&self, args: &[&str], fault: Option<&str>) -> Command {
        let mut c = Command::new(DAG);
        c.args(args)
            .current_dir(self.path())
            .env_remove("DAG_STATE")
            .env_remove("DAG_WORKFLOWS")
            .env("DAG_PROGRESS", "plain")
            .stdin(Stdio::null());
        match fault {
            Some(f) => c.env("DAG_FAULT", f),
            None => c.env_remove("DAG_FAULT"),
        };
        c
    }

    pub fn dag(&self, args: &[&str]) -> Ran {
        self.command(args, None).output().expect("run dag").into()
    }

    pub fn dag_fault(&self, args: &[&str], fault: &str) -> Ran {
        self.command(args, Some(fault))
            .output()
            .expect("run dag")
            .into()
    }

    pub fn spawn(&self, args: &[&str], fault: Option<&str>) -> Child {
        self.command(args, fault)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dag")
    }

    /// `dag status <wf> --json` of the latest run: (run, tasks).
    pub fn status(&self, wf: &str) -> (serde_json::Value, Vec<serde_json::Value>) {
        let r = self.dag(&["status", wf, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {r:?}"));
        let entry = &v[0];
        (
            entry["run"].clone(),
            entry["tasks"].as_array().cloned().unwrap_or_default(),
        )
    }

    pub fn task(&self, wf: &str, table: &str, stage: &str) -> serde_json::Value {
        self.status(wf)
            .1
            .into_iter()
            .find(|t| t["table"] == table && t["stage"] == stage)
            .unwrap_or_else(|| panic!("no task {table}.{stage}"))
    }

    /// Runs the independent readers (pyiceberg, DuckDB) over the lake and reads the SQLite
    /// target too; panics with their report if anything differs from the source.
    pub fn check_lake(&self, source: &Path, namespace: &str, target: Option<&Path>) -> String {
        let mut check = self.lake_check(namespace).arg("--source").arg(source);
        if let Some(t) = target {
            check = check.arg("--target-db").arg(t);
        }
        check.run()
    }

    /// `tests/readers/check_lake.py` over this state's lake (SQLite catalog, local warehouse),
    /// to adjust before [`LakeCheck::run`].
    pub fn lake_check(&self, namespace: &str) -> LakeCheck {
        let state = self.state();
        LakeCheck {
            catalog: state.join("catalog.db").into_os_string(),
            warehouse: state.join("warehouse").into_os_string(),
            namespace: namespace.to_string(),
            args: Vec::new(),
            envs: Vec::new(),
        }
    }
}

/// One run of `tests/readers/check_lake.py`: where the lake is and what to compare it with.
pub struct LakeCheck {
    catalog: std::ffi::OsString,
    warehouse: std::ffi::OsString,
    namespace: String,
    args: Vec<std::ffi::OsString>,
    envs: Vec<(String, String)>,
}

impl LakeCheck {
    /// Another catalog: a SQLite file or a `postgres://` URI.
    pub fn catalog(mut self, catalog: impl AsRef<std::ffi::OsStr>) -> Self {
        self.catalog = catalog.as_ref().to_owned();
        self
    }

    /// A REST catalog at `uri`, reached with the bearer `token` (given in the environment).
    pub fn rest(mut self, uri: &str, token: &str) -> Self {
        self.catalog = uri.into();
        self.envs.push(("DAG_TEST_REST_TOKEN".into(), token.into()));
        self
    }

    /// The warehouse in S3 (path style), with the keys given to the readers in the environment.
    pub fn s3(mut self, warehouse: &str, endpoint: &str, key_id: &str, secret: &str) -> Self {
        self.warehouse = warehouse.into();
        self.args.extend([
            "--s3-endpoint".into(),
            endpoint.into(),
            "--s3-path-style".into(),
        ]);
        self.envs.push(("AWS_ACCESS_KEY_ID".into(), key_id.into()));
        self.envs
            .push(("AWS_SECRET_ACCESS_KEY".into(), secret.into()));
        self
    }

    /// More arguments: `--source DB`, `--expect JSON`, `--tables T`, `--target-db DB`.
    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    /// Runs it; panics with its report unless every reader agrees. Returns what it printed.
    pub fn run(self) -> String {
        let out = self.run_report();
        assert_eq!(
            out.code,
            Some(0),
            "independent readers disagree with the source: {out:?}"
        );
        out.stdout
    }

    /// Runs it and returns how it ended, agreeing or not.
    pub fn run_report(self) -> Ran {
        python_command()
            .arg(repo().join("tests/readers/check_lake.py"))
            .arg("--catalog")
            .arg(&self.catalog)
            .args(["--catalog-name", "dag", "--namespace", &self.namespace])
            .arg("--warehouse")
            .arg(&self.warehouse)
            .args(&self.args)
            .envs(self.envs)
            .output()
            .expect("run check_lake.py")
            .into()
    }
}

/// A small demo source (AGENTSVES 9,066 x 66 and friends, TRANSACTIONS of 30,000 rows), made once
/// per test process and shared read-only.
pub fn small_demo_source() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("dag-it-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("worldzone-small.db");
        dag::demo::ensure(&db, 30_000).expect("generate the small demo");
        db
    })
    .clone()
}

/// A workflow over the small demo with chunks small enough to crash between.
pub fn small_workflow(source: &Path) -> String {
    format!(
        r#"
[source]
kind = "sqlite"
path = "{}"

[lake]
namespace = "worldzone"

[target]
kind = "sqlite"
path = "${{DAG_STATE_DIR}}/target.db"

[limits]
memory = "512MiB"
retries = 1

[table.AGENTSVES]
chunk_rows = 2000
# One connection: chunks finish in order, so a kill after chunk n leaves exactly 0..=n recorded
# (parallel chunk reads are covered by the SQL Server crash test).
connections = 1

[table.TRANSACTIONS]
chunk_rows = 10000
"#,
        source.display()
    )
}

pub fn count_distinct(db: &Path, table: &str, key: &str) -> (i64, i64) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        &format!("SELECT COUNT(*), COUNT(DISTINCT \"{key}\") FROM \"{table}\""),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// Parquet files present in the warehouse for a table's run.
pub fn parquet_files(state: &Path, table: &str, run: &str) -> usize {
    std::fs::read_dir(
        state
            .join("warehouse/worldzone")
            .join(table)
            .join(run)
            .join("data"),
    )
    .map(|d| {
        d.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
            .count()
    })
    .unwrap_or(0)
}

/// `T(ID bigint NOT NULL [PRIMARY KEY], NAME nvarchar(20) NULL)` as an incremental table; its
/// runs append when `append`. For driving a target's API directly.
pub fn incremental_table(name: &str, keyed: bool, append: bool) -> dag::model::TableInfo {
    use dag::model::{ColType, Column, Incremental, TableInfo};
    let mut t = TableInfo::new(
        name,
        vec![
            Column {
                name: "ID".into(),
                ty: ColType::Int64,
                nullable: false,
            },
            Column {
                name: "NAME".into(),
                ty: ColType::String,
                nullable: true,
            },
        ],
        keyed.then(|| "ID".to_string()),
        0,
    );
    if keyed {
        t.primary_key = vec!["ID".into()];
    }
    t.incremental = Some(Incremental {
        cursor: "ID".into(),
        low: None,
        high: None,
        append,
    });
    t
}

/// A Parquet data file of `(ID, NAME)` rows, as the lake writer would leave it; its location.
pub fn id_name_parquet(dir: &Path, file: &str, rows: &[(i64, Option<&str>)]) -> String {
    use std::sync::Arc;
    let ids: arrow_array::ArrayRef = Arc::new(arrow_array::Int64Array::from(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
    ));
    let names: arrow_array::ArrayRef = Arc::new(arrow_array::StringArray::from(
        rows.iter().map(|r| r.1).collect::<Vec<_>>(),
    ));
    let batch = arrow_array::RecordBatch::try_from_iter([("ID", ids), ("NAME", names)]).unwrap();
    let path = dir.join(file);
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    format!("file://{}", path.display())
}

/// One plain HTTP/1.1 request to a server on loopback `port`, with extra header lines
/// (`headers`, each ending in CRLF): its status and body.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port))?;
    c.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = Vec::new();
    c.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Starts history.py's hold mode with `history` (a history.py command): it loads the table,
/// creates `<dir>/ready`, and waits for `<dir>/go` before it refreshes its handle and appends.
/// Returns once the table is loaded, with the process and the file that lets it go.
pub fn hold_table(mut history: Command, dir: &Path) -> (Child, PathBuf) {
    let (ready, go) = (dir.join("ready"), dir.join("go"));
    let holder = history
        .arg("--hold")
        .arg(&ready)
        .arg("--release")
        .arg(&go)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start history.py");
    let t0 = std::time::Instant::now();
    while !ready.exists() {
        assert!(
            t0.elapsed().as_secs() < 120,
            "history.py never loaded the table"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (holder, go)
}
