//! The command line: one writer per workflow, validation before any state, plan output.

use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn a_second_concurrent_run_is_refused_and_a_killed_run_does_not_block_the_next() {
    let src = small_demo_source();
    let env = Env::new();
    env.workflow("w", &small_workflow(&src));
    let mut first = env.spawn(&["run", "w"], Some("stall:after_chunk:AGENTSVES:0"));
    // Wait until the first run holds the lock and has started extracting.
    let lock = env.state().join("locks/w.lock");
    let t0 = Instant::now();
    loop {
        let held = std::fs::read_to_string(&lock).is_ok_and(|s| s.contains("pid"));
        if held && env.state().join("db/w.status.json").exists() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the first run never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = env.dag(&["run", "w"]);
    assert_eq!(second.code, Some(2), "{second:?}");
    assert!(second.stderr.contains("already running"), "{second:?}");
    assert!(
        second.stderr.contains(&format!("pid {}", first.id())),
        "{second:?}"
    );
    // status works while the run holds the database.
    let status = env.dag(&["status", "w"]);
    assert!(status.stdout.contains("running"), "{status:?}");

    first.kill().unwrap(); // SIGKILL: no clean-up runs
    first.wait().unwrap();
    let third = env.dag(&["run", "w"]);
    assert_eq!(third.code, Some(0), "{third:?}");
    assert!(third.stderr.contains("resuming run"), "{third:?}");
}

#[test]
fn an_invalid_workflow_reports_every_problem_with_its_location_and_writes_no_state() {
    let env = Env::new();
    env.workflow(
        "bad",
        r#"description = "four problems"
[lake]
namespace = "worldzone"
colour = "blue"

[limits]
memory = "lots"

[table.A]
after = ["B"]

[table.B]
after = ["A"]
"#,
    );
    let r = env.dag(&["run", "bad"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    for expected in [
        "workflows/bad.toml:1:1: source: missing required section",
        "workflows/bad.toml:4:1: lake.colour: unknown key",
        "workflows/bad.toml:7:1: limits.memory: \"lots\" is not a size",
        "cycle: A -> B -> A",
        "4 problems",
    ] {
        assert!(
            r.stderr.contains(expected),
            "missing `{expected}` in: {r:?}"
        );
    }
    assert!(!env.state().exists(), "validation must not write state");
    let r = env.dag(&["validate", "bad"]);
    assert_eq!(r.code, Some(2));
    assert!(!env.state().exists());
}

#[test]
fn a_bad_memory_flag_and_an_unknown_table_are_usage_errors() {
    let src = small_demo_source();
    let env = Env::new();
    env.workflow("w", &small_workflow(&src));
    let r = env.dag(&["run", "w", "--memory", "a lot"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("--memory"), "{r:?}");
    let r = env.dag(&["run", "w", "--memory", "1KiB"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("minimum"), "{r:?}");
    let r = env.dag(&["run", "w", "--tables", "NOPE"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("NOPE"), "{r:?}");
    let r = env.dag(&["run", "missing"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("w"), "lists available workflows: {r:?}");
}

#[test]
fn plan_shows_tables_tasks_estimates_and_graphviz() {
    let src = small_demo_source();
    let env = Env::new();
    env.workflow(
        "w",
        &format!(
            "{}\n[table.COUNTRIES]\nafter = [\"CURRENCY_RATES\"]\n",
            small_workflow(&src)
        ),
    );
    let r = env.dag(&["plan", "w"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("AGENTSVES"))
        .expect("AGENTSVES row");
    assert!(
        line.contains("9066") && line.contains(" 66 ") && line.contains("extract"),
        "{line}"
    );
    assert!(r.stdout.contains("write_iceberg") && r.stdout.contains("verify"));
    let pos = |t: &str| r.stdout.find(&format!("\n{t} ")).unwrap();
    assert!(
        pos("CURRENCY_RATES") < pos("COUNTRIES"),
        "declared order: {}",
        r.stdout
    );
    let dot = env.dag(&["plan", "w", "--format", "dot", "--lake-only"]);
    assert!(dot.stdout.starts_with("digraph"), "{dot:?}");
    assert!(
        !dot.stdout.contains("load"),
        "lake-only has no load: {}",
        dot.stdout
    );
    assert!(!env.state().join("db").exists(), "plan writes no run state");
}

#[test]
fn lake_only_runs_have_no_load_and_history_lists_runs() {
    let src = small_demo_source();
    let env = Env::new();
    env.workflow("w", &small_workflow(&src));
    let r = env.dag(&[
        "run",
        "w",
        "--lake-only",
        "--tables",
        "COUNTRIES,CURRENCY_RATES",
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let (run, tasks) = env.status("w");
    assert_eq!(run["lake_only"], true);
    assert_eq!(tasks.len(), 6);
    assert!(tasks.iter().all(|t| t["stage"] != "load"));
    assert!(!env.state().join("target.db").exists());
    let r = env.dag(&["run", "w", "--tables", "COUNTRIES"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let h = env.dag(&["history"]);
    assert_eq!(
        h.stdout.lines().filter(|l| l.contains("succeeded")).count(),
        2,
        "{h:?}"
    );
}

#[test]
fn status_shows_each_tasks_rss_and_only_tasks_over_budget_are_named_in_warnings() {
    let src = small_demo_source();
    let env = Env::new();
    env.workflow("w", &small_workflow(&src));
    // The smallest budget: the process's own baseline may or may not stay within it + 32 MiB,
    // so what is checked is that the warnings name exactly the tasks whose RSS went over.
    let r = env.dag(&["run", "w", "--memory", "16MiB"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let (run, tasks) = env.status("w");
    let limit = run["memory_budget"].as_u64().unwrap() + (32 << 20);
    assert_eq!(limit, 48 << 20);
    // The part of the peak that is the program's code: some, never all of it.
    let code = run["peak_rss_code"].as_u64().expect("peak_rss_code");
    assert!(
        code > 1 << 20 && code < run["peak_rss"].as_u64().unwrap(),
        "{run}"
    );
    assert!(
        r.stdout.contains(" code)"),
        "the run's line shows the code part: {r:?}"
    );
    let mut over = Vec::new();
    for t in &tasks {
        let rss = t["peak_rss"]
            .as_u64()
            .unwrap_or_else(|| panic!("no peak_rss: {t}"));
        // Nothing runs in less than the process's code and runtime.
        assert!(rss > 8 << 20, "{t}");
        assert!(
            rss <= run["peak_rss"].as_u64().unwrap(),
            "{t} vs the run's peak"
        );
        let name = format!(
            "{}.{}",
            t["table"].as_str().unwrap(),
            t["stage"].as_str().unwrap()
        );
        let warned = r
            .stderr
            .lines()
            .any(|l| l.contains(&format!("{name}: the process held")));
        assert_eq!(
            warned,
            rss > limit,
            "{name}: RSS {rss}, limit {limit}\n{}",
            r.stderr
        );
        if rss > limit {
            over.push(name);
        }
    }
    println!("tasks over 16 MiB + 32 MiB: {over:?}");
    // The text view has the RSS column, filled for every task.
    let text = env.dag(&["status", "w"]);
    let header = text
        .stdout
        .lines()
        .find(|l| l.starts_with("TABLE"))
        .unwrap();
    assert!(
        header.contains("MEMORY") && header.contains("RSS"),
        "{header}"
    );
    let task_lines = || {
        text.stdout
            .lines()
            .filter(|l| !l.starts_with("workflow ") && l.contains(" succeeded "))
    };
    let rows = task_lines().count();
    let with_rss = task_lines()
        .filter(|l| l.matches("MiB").count() >= 2)
        .count();
    assert_eq!(
        (rows, with_rss),
        (tasks.len(), tasks.len()),
        "{}",
        text.stdout
    );
}

#[test]
fn bad_data_fails_only_its_table_with_table_column_and_value_named() {
    let env = Env::new();
    let src = env.path().join("src.db");
    let c = rusqlite::Connection::open(&src).unwrap();
    c.execute_batch(
        "CREATE TABLE GOOD (ID INTEGER PRIMARY KEY, NAME TEXT);
         INSERT INTO GOOD VALUES (1, 'a'), (2, 'b');
         CREATE TABLE BADVAL (ID INTEGER PRIMARY KEY, AMOUNT TEXT DECIMAL(5,2));
         INSERT INTO BADVAL VALUES (1, '1.50'), (2, '12345.6');
         CREATE TABLE BADTYPE (ID INTEGER PRIMARY KEY, SHAPE GEOGRAPHY);
         INSERT INTO BADTYPE VALUES (1, 2.5), (2, 'POINT(1 2)');",
    )
    .unwrap();
    drop(c);
    env.workflow(
        "w",
        "[source]\nkind = \"sqlite\"\npath = \"src.db\"\n[lake]\nnamespace = \"ns\"\n\
         [target]\nkind = \"sqlite\"\npath = \"${DAG_STATE_DIR}/t.db\"\n",
    );
    let r = env.dag(&["run", "w"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    let bad = env.task("w", "BADVAL", "extract");
    assert_eq!(bad["status"], "failed");
    let msg = bad["last_error"].as_str().unwrap();
    assert!(
        msg.contains("column AMOUNT, key 2") && msg.contains("'12345.6'"),
        "{msg}"
    );
    // GEOGRAPHY has numeric affinity (SQLite's rules): read as a double, whose text value
    // fails naming the column, the key and the value.
    let ty = env.task("w", "BADTYPE", "extract");
    let msg = ty["last_error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("column SHAPE, key 2") && msg.contains("POINT(1 2)"),
        "{ty}"
    );
    assert_eq!(
        env.task("w", "BADVAL", "write_iceberg")["status"],
        "skipped"
    );
    assert_eq!(env.task("w", "GOOD", "verify")["status"], "succeeded");
    // Nothing of the failed tables reached the lake or the target.
    let t = rusqlite::Connection::open(env.state().join("t.db")).unwrap();
    let n: i64 = t
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'BADVAL'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn logs_to_a_pipe_are_plain_text_without_colour_codes() {
    let src = small_demo_source();
    let env = Env::new();
    env.workflow("w", &small_workflow(&src));
    // stderr and stdout are pipes here, not terminals; progress is left to decide by itself.
    let out = env
        .command(&["run", "w", "--lake-only", "--tables", "COUNTRIES"], None)
        .env_remove("DAG_PROGRESS")
        .env_remove("NO_COLOR")
        .output()
        .expect("run dag");
    let r: Ran = out.clone().into();
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stderr
            .contains(" INFO extract started table=\"COUNTRIES\" rows=249"),
        "the log line is missing or coloured: {r:?}"
    );
    for (name, bytes) in [("stderr", &out.stderr), ("stdout", &out.stdout)] {
        assert!(
            !bytes.contains(&0x1b),
            "{name} carries ANSI escape codes: {r:?}"
        );
    }
}
