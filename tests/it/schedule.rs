//! `dag schedule` on a simulated clock and `dag next`: the real binary runs two workflows with
//! different schedules through a night in one process, each when due.

use crate::support::*;

/// A small lake-only workflow over its own generated demo source.
fn scheduled(name: &str, keys: &str) -> String {
    format!(
        r#"{keys}

[source]
kind = "sqlite"
path = "${{DAG_STATE_DIR}}/{name}/source.db"
generate_demo = true
demo_big_rows = 2000

[lake]
namespace = "{name}"

[tables]
include = ["COUNTRIES", "CURRENCY_RATES"]
"#
    )
}

#[test]
fn dag_schedule_runs_two_workflows_when_due_through_a_simulated_night() {
    let env = Env::new();
    // Every two hours in UTC, and 02:30 Paris time: that night 02:30 does not exist in Paris
    // (summer time starts), so the nightly run starts at 03:00 CEST = 01:00 UTC.
    env.workflow(
        "twohourly",
        &scheduled("twohourly", r#"schedule = "0 0 */2 * * *""#),
    );
    env.workflow(
        "nightly",
        &scheduled(
            "nightly",
            "schedule = \"30 2 * * *\"\ntimezone = \"Europe/Paris\"",
        ),
    );
    env.workflow("manual", &scheduled("manual", ""));

    let next = env.dag(&["next", "--count", "3", "--after", "2026-03-28T21:30:00Z"]);
    assert_eq!(next.code, Some(0), "{next:?}");
    for expected in [
        "nightly: schedule \"0 30 2 * * *\" in Europe/Paris",
        "  2026-03-29 03:00:00 CEST     2026-03-29T01:00:00Z",
        "  2026-03-30 02:30:00 CEST     2026-03-30T00:30:00Z",
        "twohourly: schedule \"0 0 */2 * * *\" in UTC",
        "  2026-03-28 22:00:00 UTC      2026-03-28T22:00:00Z",
        "  2026-03-29 02:00:00 UTC      2026-03-29T02:00:00Z",
    ] {
        assert!(
            next.stdout.lines().any(|l| l.starts_with(expected)),
            "{expected:?} missing: {next:?}"
        );
    }
    assert!(!next.stdout.contains("manual"), "{next:?}");

    let r = env.dag(&[
        "schedule",
        "--simulate-from",
        "2026-03-28T21:30:00Z",
        "--simulate-until",
        "2026-03-29T06:00:00Z",
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let launches = |wf: &str| -> Vec<String> {
        r.stdout
            .lines()
            .filter(|l| l.contains(&format!(" {wf}: launch (")))
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        launches("twohourly"),
        [
            "2026-03-28T22:00:00Z",
            "2026-03-29T00:00:00Z",
            "2026-03-29T02:00:00Z",
            "2026-03-29T04:00:00Z",
            "2026-03-29T06:00:00Z"
        ],
        "{r:?}"
    );
    assert_eq!(launches("nightly"), ["2026-03-29T01:00:00Z"], "{r:?}");
    assert!(r.stdout.contains("manual: no schedule; ignored"), "{r:?}");
    assert_eq!(
        r.stdout.matches("run ended: exit code 0").count(),
        6,
        "{r:?}"
    );
    assert!(!r.stdout.contains(": skip"), "{r:?}");

    // The run history agrees: five and one succeeded runs, nothing for the unscheduled one.
    let h = env.dag(&["history", "--json"]);
    assert_eq!(h.code, Some(0), "{h:?}");
    let runs: Vec<serde_json::Value> = serde_json::from_str(&h.stdout).unwrap();
    let count = |wf: &str| {
        runs.iter()
            .filter(|x| x["run"]["workflow"] == wf && x["run"]["status"] == "succeeded")
            .count()
    };
    assert_eq!(count("twohourly"), 5, "{runs:#?}");
    assert_eq!(count("nightly"), 1, "{runs:#?}");
    assert_eq!(runs.len(), 6, "{runs:#?}");

    // What was handled is remembered: a second simulation later the same morning catches up
    // once for the fire times it missed (08:00 and 10:00 UTC) and nothing for the nightly one.
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.state().join("schedule/twohourly.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["handled_until"], "2026-03-29T06:00:00Z");
    let r2 = env.dag(&[
        "schedule",
        "--simulate-from",
        "2026-03-29T11:00:00Z",
        "--simulate-until",
        "2026-03-29T11:30:00Z",
    ]);
    assert_eq!(r2.code, Some(0), "{r2:?}");
    assert!(
        r2.stdout.contains(
            "2026-03-29T11:00:00Z twohourly: launch (catch-up: one run for 2 missed fire time(s)"
        ),
        "{r2:?}"
    );
    assert!(!r2.stdout.contains("nightly: launch"), "{r2:?}");
}

#[test]
fn dag_next_and_dag_schedule_report_bad_input_clearly() {
    let env = Env::new();
    env.workflow("manual", &scheduled("manual", ""));
    let r = env.dag(&["next", "manual"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("has no schedule"), "{r:?}");
    let r = env.dag(&[
        "schedule",
        "--simulate-from",
        "tonight",
        "--simulate-until",
        "2026-03-29T06:00:00Z",
    ]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("--simulate-from: \"tonight\""), "{r:?}");
    let r = env.dag(&["--workflows", "nowhere", "schedule"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(
        r.stderr
            .contains("workflow directory nowhere does not exist"),
        "{r:?}"
    );
}
