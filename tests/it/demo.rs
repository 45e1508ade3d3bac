//! The embedded demo, end to end, checked by readers we did not write.

use crate::support::*;

#[test]
fn the_demo_runs_end_to_end_and_independent_readers_agree_with_the_source() {
    let env = Env::new();
    let workflows = repo().join("workflows");
    let wf = workflows.to_str().unwrap();
    let r = env.dag(&["--workflows", wf, "run", "demo"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let (run, tasks) = env.status("demo");
    assert_eq!(run["status"], "succeeded");
    let extracted = |t: &str| {
        tasks
            .iter()
            .find(|x| x["table"] == t && x["stage"] == "extract")
            .unwrap()["outputs"]["digest"]["rows"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(extracted("AGENTSVES"), 9066);
    assert!(extracted("TRANSACTIONS") >= 1_000_000);
    let ag = tasks
        .iter()
        .find(|x| x["table"] == "AGENTSVES" && x["stage"] == "extract")
        .unwrap();
    assert_eq!(
        ag["outputs"]["schema"]["columns"].as_array().unwrap().len(),
        66
    );

    let source = env.state().join("demo/worldzone.db");
    let target = env.state().join("demo/target.db");
    let readers_ok = require_for("the independent readers' checks", python_readers());
    if readers_ok {
        let report = env.check_lake(&source, "worldzone", Some(&target));
        assert!(report.contains("AGENTSVES source rows=9066"), "{report}");
    }

    // A second full run under a small budget replaces every table: nothing doubles.
    let r = env.dag(&["--workflows", wf, "run", "demo", "--memory", "24MiB"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let (run2, tasks2) = env.status("demo");
    assert_ne!(run2["id"], run["id"]);
    // TRANSACTIONS' extract is estimated above 24 MiB (about 30 MiB): it ran alone, holding the
    // whole budget.
    let big = tasks2
        .iter()
        .find(|x| x["table"] == "TRANSACTIONS" && x["stage"] == "extract")
        .unwrap();
    assert_eq!(big["mem_estimate"].as_u64(), Some(24 << 20), "{big}");
    assert!(run2["peak_reserved"].as_u64().unwrap() <= 24 << 20);
    // Both runs' files stay (the replaced version is a snapshot to go back to), beside the
    // table's metadata directory.
    let versions = std::fs::read_dir(env.state().join("warehouse/worldzone/AGENTSVES"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "metadata")
        .count();
    assert_eq!(versions, 2);
    if readers_ok {
        env.check_lake(&source, "worldzone", Some(&target));
    }
}

#[test]
fn the_python_checker_passes_its_own_known_answer_test() {
    if !require(python_readers()) {
        return;
    }
    let out = python_command()
        .arg(repo().join("tests/readers/check_lake.py"))
        .arg("--self-test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The one-int-row value is the same one the Rust unit test derives from SHA-256 directly.
    assert!(String::from_utf8_lossy(&out.stdout).contains("ad1bd49ee893af1af6e71b35ddedf60c"));
}
