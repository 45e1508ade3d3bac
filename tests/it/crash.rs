//! Crash safety: the process is SIGKILLed at each injection point (and at random moments), then
//! `dag run` finishes the run. Lake and target must equal the source exactly, and only unfinished
//! work may have been redone.

use serde_json::Value;

use crate::support::*;

const SIGKILL: i32 = 9;

fn killed_then_resumed(point: &str) -> (Env, std::path::PathBuf) {
    let src = small_demo_source();
    let env = Env::new();
    env.workflow("w", &small_workflow(&src));
    let r = env.dag_fault(&["run", "w"], &format!("kill:{point}"));
    assert_eq!(
        r.signal,
        Some(SIGKILL),
        "expected a SIGKILL at {point}: {r:?}"
    );
    let (run, _) = env.status("w");
    assert_eq!(run["status"], "running", "a killed run stays unfinished");
    let text = env.dag(&["status", "w"]);
    assert!(text.stdout.contains("interrupted"), "{text:?}");
    let r = env.dag(&["run", "w"]);
    assert_eq!(r.code, Some(0), "the resumed run must finish: {r:?}");
    assert!(r.stderr.contains("resuming run"), "{r:?}");
    let (run, tasks) = env.status("w");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["sessions"], 2);
    assert!(
        tasks.iter().all(|t| t["status"] == "succeeded"),
        "{tasks:?}"
    );
    (env, src)
}

pub(crate) fn assert_exact(env: &Env, src: &std::path::Path) {
    let target = env.state().join("target.db");
    for (table, key) in [
        ("AGENTSVES", "AGENT_ID"),
        ("TRANSACTIONS", "TXN_ID"),
        ("COUNTRIES", "COUNTRY_ID"),
    ] {
        let (n, distinct) = count_distinct(&target, table, key);
        assert_eq!(n, distinct, "{table}: duplicate keys in the target");
    }
    // Every verify compared lake and target with what the source returned at extraction.
    let (run, tasks) = env.status("w");
    for t in tasks.iter().filter(|t| t["stage"] == "verify") {
        let o = &t["outputs"];
        assert_eq!(o["lake"], o["digest"], "{t}");
        assert_eq!(o["target"], o["digest"], "{t}");
    }
    // No file of an unfinished attempt is left beside the committed ones.
    let id = run["id"].as_str().unwrap();
    for t in tasks.iter().filter(|t| t["stage"] == "extract") {
        let table = t["table"].as_str().unwrap();
        assert_eq!(
            parquet_files(&env.state(), table, id) as u64,
            t["outputs"]["data_files"].as_u64().unwrap(),
            "{table}: stray data files"
        );
    }
    if require_for("the independent readers' checks", python_readers()) {
        env.check_lake(src, "worldzone", Some(&target));
    }
}

fn attempts(t: &Value) -> u64 {
    t["attempts"].as_u64().unwrap()
}

#[test]
fn kill_after_a_chunk_redoes_only_the_unfinished_chunks() {
    let (env, src) = killed_then_resumed("after_chunk:AGENTSVES:1");
    let ex = env.task("w", "AGENTSVES", "extract");
    assert_eq!(attempts(&ex), 2);
    assert_eq!(ex["outputs"]["chunk_plan"].as_array().unwrap().len(), 5);
    assert_eq!(
        ex["outputs"]["chunks_reused"], 2,
        "chunks 0 and 1 were recorded before the kill"
    );
    assert_eq!(ex["outputs"]["digest"]["rows"], 9066);
    assert_exact(&env, &src);
}

#[test]
fn kill_after_the_lake_commit_does_not_commit_twice() {
    let (env, src) = killed_then_resumed("after_commit:AGENTSVES");
    assert_eq!(attempts(&env.task("w", "AGENTSVES", "extract")), 1);
    let wi = env.task("w", "AGENTSVES", "write_iceberg");
    assert_eq!(attempts(&wi), 2);
    assert_eq!(wi["outputs"]["commit_found"], true);
    assert_exact(&env, &src);
}

/// Killed after the snapshot's manifests and metadata were written but before the catalog
/// pointed at them: nothing was committed, so the resumed task commits (once), and the lake
/// ends exact with the abandoned files unreferenced.
#[test]
fn kill_before_the_catalog_commit_commits_once() {
    let (env, src) = killed_then_resumed("before_catalog_commit:COUNTRIES");
    let wi = env.task("w", "COUNTRIES", "write_iceberg");
    assert_eq!(attempts(&wi), 2);
    assert_ne!(wi["outputs"]["commit_found"], true, "{wi}");
    assert_eq!(wi["outputs"]["snapshots"], 1, "{wi}");
    assert_exact(&env, &src);
}

#[test]
fn kill_after_publishing_before_the_state_flush_finds_the_published_commit() {
    let (env, src) = killed_then_resumed("after_publish:TRANSACTIONS");
    assert_eq!(attempts(&env.task("w", "TRANSACTIONS", "extract")), 1);
    let wi = env.task("w", "TRANSACTIONS", "write_iceberg");
    assert_eq!(attempts(&wi), 2);
    assert_eq!(wi["outputs"]["commit_found"], true);
    assert_exact(&env, &src);
}

#[test]
fn kill_in_the_middle_of_a_load_loads_each_chunk_once() {
    let (env, src) = killed_then_resumed("mid_load:AGENTSVES:2");
    assert_eq!(attempts(&env.task("w", "AGENTSVES", "extract")), 1);
    assert_eq!(attempts(&env.task("w", "AGENTSVES", "write_iceberg")), 1);
    let load = env.task("w", "AGENTSVES", "load");
    assert_eq!(attempts(&load), 2);
    assert_eq!(load["outputs"]["chunks_already_loaded"], 2);
    assert_eq!(load["outputs"]["chunks_loaded"], 3);
    assert_exact(&env, &src);
}

#[test]
fn kills_at_random_moments_then_a_run_gives_the_same_result() {
    let src = small_demo_source();
    let env = Env::new();
    env.workflow("w", &small_workflow(&src));
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..4 {
        let mut child = env.spawn(&["run", "w"], None);
        std::thread::sleep(std::time::Duration::from_millis(rng.u64(50..700)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    let r = env.dag(&["run", "w"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_exact(&env, &src);
}

#[test]
fn a_failed_load_skips_verify_other_tables_finish_and_retry_does_not_re_extract() {
    let src = small_demo_source();
    let env = Env::new();
    env.workflow("w", &small_workflow(&src));
    let r = env.dag_fault(&["run", "w"], "fail:COUNTRIES.load");
    assert_eq!(r.code, Some(1), "{r:?}");
    let (run, tasks) = env.status("w");
    assert_eq!(run["status"], "failed");
    let st = |table: &str, stage: &str| {
        tasks
            .iter()
            .find(|t| t["table"] == table && t["stage"] == stage)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(st("COUNTRIES", "load"), "failed");
    assert_eq!(st("COUNTRIES", "verify"), "skipped");
    assert_eq!(st("AGENTSVES", "verify"), "succeeded");
    assert_eq!(st("TRANSACTIONS", "verify"), "succeeded");
    let load = env.task("w", "COUNTRIES", "load");
    assert_eq!(
        attempts(&load),
        1,
        "an injected (non-retryable) failure is not retried"
    );
    assert!(load["last_error"].as_str().unwrap().contains("injected"));

    let r = env.dag(&["retry", "COUNTRIES"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(
        attempts(&env.task("w", "COUNTRIES", "extract")),
        1,
        "no re-extract"
    );
    assert_eq!(attempts(&env.task("w", "COUNTRIES", "load")), 2);
    assert_eq!(env.status("w").0["status"], "succeeded");
    assert_exact(&env, &src);
}

#[test]
fn a_transient_failure_is_retried_with_backoff() {
    let src = small_demo_source();
    let env = Env::new();
    env.workflow("w", &small_workflow(&src));
    let r = env.dag_fault(
        &["run", "w", "--tables", "COUNTRIES"],
        "flaky:COUNTRIES.extract",
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("retrying in"), "{r:?}");
    assert_eq!(attempts(&env.task("w", "COUNTRIES", "extract")), 2);
}
