//! Scheduler tests on a simulated clock: fire times across both 2026 daylight-saving changes in
//! Europe/Paris, the overlap, catch-up and on-failure policies, reloads, and two workflows over
//! a night. Nothing sleeps: the clock jumps, fake runs last a simulated time or fail.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use chrono::{DateTime, Duration, Utc};
use futures::future::{FutureExt, LocalBoxFuture};

use super::engine::{Fixed, WorkflowSource};
use super::state::{self, ScheduleState};
use super::*;
use crate::shutdown::Shutdown;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// A workflow `name` with the given top-level schedule keys.
fn wf(name: &str, keys: &str) -> Workflow {
    let text = format!(
        "{keys}\n[source]\nkind = \"sqlite\"\npath = \"db.sqlite\"\n\n[lake]\nnamespace = \"ns\"\n"
    );
    let path = PathBuf::from(format!("workflows/{name}.toml"));
    crate::config::parse(&text, &path, &|_| None).unwrap_or_else(|e| panic!("workflow {name}: {e}"))
}

fn timing(keys: &str) -> Timing {
    Timing::of(&wf("w", keys)).unwrap().expect("has a schedule")
}

fn fires(keys: &str, after: &str, n: usize) -> Vec<String> {
    timing(keys)
        .upcoming(t(after), n)
        .into_iter()
        .map(utc)
        .collect()
}

// --- fire times -----------------------------------------------------------------------------

#[test]
fn daily_0230_in_paris_fires_at_the_end_of_the_spring_gap() {
    // 2026-03-29: clocks go from 02:00 CET to 03:00 CEST; 02:30 does not exist that day.
    let keys = "schedule = \"0 30 2 * * *\"\ntimezone = \"Europe/Paris\"";
    assert_eq!(
        fires(keys, "2026-03-27T00:00:00Z", 4),
        [
            "2026-03-27T01:30:00Z", // 02:30 CET
            "2026-03-28T01:30:00Z", // 02:30 CET
            "2026-03-29T01:00:00Z", // 03:00 CEST, the end of the gap
            "2026-03-30T00:30:00Z", // 02:30 CEST
        ]
    );
    let tm = timing(keys);
    assert_eq!(
        tm.local(t("2026-03-29T01:00:00Z")),
        "2026-03-29 03:00:00 CEST"
    );
}

#[test]
fn hourly_in_paris_skips_nothing_and_doubles_nothing_in_the_spring_gap() {
    // Local 02:00 does not exist; its fire moves to the gap's end, where 03:00 also fires: once.
    let keys = "schedule = \"0 0 * * * *\"\ntimezone = \"Europe/Paris\"";
    assert_eq!(
        fires(keys, "2026-03-28T23:30:00Z", 4),
        [
            "2026-03-29T00:00:00Z", // 01:00 CET
            "2026-03-29T01:00:00Z", // 03:00 CEST (02:00 does not exist)
            "2026-03-29T02:00:00Z", // 04:00 CEST
            "2026-03-29T03:00:00Z",
        ]
    );
}

#[test]
fn daily_0230_in_paris_fires_once_when_the_autumn_change_repeats_it() {
    // 2026-10-25: clocks go from 03:00 CEST back to 02:00 CET; 02:30 happens twice.
    let keys = "schedule = \"0 30 2 * * *\"\ntimezone = \"Europe/Paris\"";
    assert_eq!(
        fires(keys, "2026-10-24T00:00:00Z", 3),
        [
            "2026-10-24T00:30:00Z", // 02:30 CEST
            "2026-10-25T00:30:00Z", // 02:30 CEST, the first of the two
            "2026-10-26T01:30:00Z", // 02:30 CET
        ]
    );
    // Asked from within the repeated hour (02:15 CET, after the first 02:30 went by), the
    // second 02:30 is not a fire time.
    assert_eq!(
        utc(timing(keys).next_after(t("2026-10-25T01:15:00Z")).unwrap()),
        "2026-10-26T01:30:00Z"
    );
}

#[test]
fn hourly_in_paris_does_not_fire_again_in_the_repeated_hour() {
    let keys = "schedule = \"0 0 * * * *\"\ntimezone = \"Europe/Paris\"";
    assert_eq!(
        fires(keys, "2026-10-24T22:30:00Z", 4),
        [
            "2026-10-24T23:00:00Z", // 01:00 CEST
            "2026-10-25T00:00:00Z", // 02:00 CEST (02:00 CET, at 01:00Z, is the same local time)
            "2026-10-25T02:00:00Z", // 03:00 CET
            "2026-10-25T03:00:00Z",
        ]
    );
}

#[test]
fn crontab_lines_weekdays_and_utc_by_default() {
    // Friday 2026-03-27 evening: the next weekday 01:30 is Monday's.
    let w = wf("w", "schedule = \"30 1 * * Mon-Fri\"");
    assert_eq!(
        next_fire(&w, t("2026-03-27T20:00:00Z")).unwrap().map(utc),
        Some("2026-03-30T01:30:00Z".to_string())
    );
    assert_eq!(
        next_fire(&wf("w", ""), t("2026-03-27T20:00:00Z")).unwrap(),
        None
    );
    // Strictly after: a fire time is not its own successor.
    let daily = wf("w", "schedule = \"0 0 2 * * *\"");
    assert_eq!(
        next_fire(&daily, t("2026-03-27T02:00:00Z"))
            .unwrap()
            .map(utc),
        Some("2026-03-28T02:00:00Z".to_string())
    );
}

// --- the loop -------------------------------------------------------------------------------

/// What one fake run does: last this long (simulated), then exit with this code.
#[derive(Clone, Copy)]
struct Behaviour {
    lasts: Duration,
    exit: u8,
}

const INSTANT_OK: Behaviour = Behaviour {
    lasts: Duration::zero(),
    exit: 0,
};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Launch {
    workflow: String,
    at: String,
    resume_failed: bool,
}

struct Fake {
    clock: SimClock,
    plans: RefCell<BTreeMap<String, VecDeque<Behaviour>>>,
    launches: RefCell<Vec<Launch>>,
}

impl Fake {
    fn new(clock: &SimClock) -> Fake {
        Fake {
            clock: clock.clone(),
            plans: RefCell::default(),
            launches: RefCell::default(),
        }
    }

    /// The next runs of `workflow` behave like this, in order; later ones are instant successes.
    fn plan(self, workflow: &str, runs: &[Behaviour]) -> Fake {
        self.plans
            .borrow_mut()
            .insert(workflow.to_string(), runs.iter().copied().collect());
        self
    }

    fn times_of(&self, workflow: &str) -> Vec<String> {
        self.launches
            .borrow()
            .iter()
            .filter(|l| l.workflow == workflow)
            .map(|l| l.at.clone())
            .collect()
    }
}

impl Launcher for Fake {
    fn launch(
        &self,
        workflow: &str,
        resume_failed: bool,
        _shutdown: &Shutdown,
    ) -> LocalBoxFuture<'_, crate::error::Result<u8>> {
        let now = self.clock.now();
        self.launches.borrow_mut().push(Launch {
            workflow: workflow.to_string(),
            at: utc(now),
            resume_failed,
        });
        let b = self
            .plans
            .borrow_mut()
            .get_mut(workflow)
            .and_then(VecDeque::pop_front)
            .unwrap_or(INSTANT_OK);
        let clock = self.clock.clone();
        async move {
            clock.until(now + b.lasts).await;
            Ok(b.exit)
        }
        .boxed_local()
    }
}

type Lines = Rc<RefCell<Vec<String>>>;

fn scheduler(state: &Path) -> (Scheduler, Lines) {
    let lines: Lines = Rc::default();
    let sink = lines.clone();
    let s = Scheduler::new(
        state.to_path_buf(),
        Box::new(move |l: &str| sink.borrow_mut().push(l.to_string())),
    );
    (s, lines)
}

/// Runs a scheduler over `wfs` from `from` to `until` on a simulated clock; a hang fails.
async fn simulate<W: WorkflowSource>(
    state: &Path,
    wfs: Vec<Workflow>,
    fake: &Fake,
    source: &mut W,
    until: &str,
) -> Vec<String> {
    let (mut s, lines) = scheduler(state);
    s.set_workflows(wfs, fake.clock.now());
    let shutdown = Shutdown::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        s.run(&fake.clock, fake, source, &shutdown, Some(t(until))),
    )
    .await
    .expect("the simulation ended");
    lines.take()
}

fn matching<'a>(lines: &'a [String], parts: &[&str]) -> Vec<&'a String> {
    lines
        .iter()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .collect()
}

fn mins(m: i64) -> Duration {
    Duration::minutes(m)
}

#[tokio::test]
async fn overlap_skip_skips_fire_times_while_the_previous_run_runs() {
    let dir = tempfile::tempdir().unwrap();
    let clock = SimClock::new(t("2026-01-10T00:30:00Z"));
    let long = Behaviour {
        lasts: mins(90),
        exit: 0,
    };
    let fake = Fake::new(&clock).plan("h", &[long, long]);
    let lines = simulate(
        dir.path(),
        vec![wf("h", "schedule = \"0 0 * * * *\"")],
        &fake,
        &mut Fixed,
        "2026-01-10T04:45:00Z",
    )
    .await;
    // 01:00 runs to 02:30, so 02:00 is skipped; 03:00 runs to 04:30, so 04:00 is skipped.
    assert_eq!(
        fake.times_of("h"),
        ["2026-01-10T01:00:00Z", "2026-01-10T03:00:00Z"]
    );
    let skips = matching(&lines, &["h: skip", "overlap"]);
    assert_eq!(skips.len(), 2, "{lines:#?}");
    assert!(skips[0].starts_with("2026-01-10T02:00:00Z"), "{skips:?}");
    assert!(skips[1].starts_with("2026-01-10T04:00:00Z"), "{skips:?}");
    // The runs' ends are seen at their own times, with their exit codes.
    let ends = matching(&lines, &["h: run ended: exit code 0"]);
    assert!(ends[0].starts_with("2026-01-10T02:30:00Z"), "{ends:?}");
    assert!(ends[1].starts_with("2026-01-10T04:30:00Z"), "{ends:?}");
}

#[tokio::test]
async fn overlap_queue_starts_one_waiting_run_when_the_previous_ends() {
    let dir = tempfile::tempdir().unwrap();
    let clock = SimClock::new(t("2026-01-10T00:30:00Z"));
    let fake = Fake::new(&clock).plan(
        "q",
        &[Behaviour {
            lasts: mins(150),
            exit: 0,
        }],
    );
    let lines = simulate(
        dir.path(),
        vec![wf("q", "schedule = \"0 0 * * * *\"\noverlap = \"queue\"")],
        &fake,
        &mut Fixed,
        "2026-01-10T04:30:00Z",
    )
    .await;
    // 01:00 runs to 03:30; 02:00 waits, 03:00 merges into it; it starts at 03:30; 04:00 on time.
    assert_eq!(
        fake.times_of("q"),
        [
            "2026-01-10T01:00:00Z",
            "2026-01-10T03:30:00Z",
            "2026-01-10T04:00:00Z"
        ]
    );
    assert_eq!(matching(&lines, &["q: queued"]).len(), 1, "{lines:#?}");
    assert_eq!(matching(&lines, &["q: ", "merged"]).len(), 1, "{lines:#?}");
    assert!(matching(&lines, &["skip"]).is_empty(), "{lines:#?}");
}

/// A first scheduler process that sees `keys` run from 00:30 to 01:30 (one run at 01:00), then a
/// second one that starts at 06:20 after the downtime and runs to 07:30.
async fn downtime(keys: &str) -> (Fake, Vec<String>, ScheduleState) {
    let dir = tempfile::tempdir().unwrap();
    let clock = SimClock::new(t("2026-01-10T00:30:00Z"));
    let fake = Fake::new(&clock);
    simulate(
        dir.path(),
        vec![wf("c", keys)],
        &fake,
        &mut Fixed,
        "2026-01-10T01:30:00Z",
    )
    .await;
    let saved = state::load(dir.path(), "c").unwrap().expect("state saved");
    assert_eq!(utc(saved.handled_until), "2026-01-10T01:00:00Z");
    assert_eq!(saved.last_exit, Some(0));
    // The process is gone from 01:30 to 06:20.
    let clock2 = SimClock::new(t("2026-01-10T06:20:00Z"));
    let fake2 = Fake::new(&clock2);
    let lines = simulate(
        dir.path(),
        vec![wf("c", keys)],
        &fake2,
        &mut Fixed,
        "2026-01-10T07:30:00Z",
    )
    .await;
    let mut all = fake.launches.take();
    all.extend(fake2.launches.take());
    fake2.launches.replace(all);
    let saved = state::load(dir.path(), "c").unwrap().expect("state saved");
    (fake2, lines, saved)
}

#[tokio::test]
async fn one_catch_up_run_after_downtime_for_all_missed_fire_times() {
    let (fake, lines, saved) = downtime("schedule = \"0 0 * * * *\"").await;
    // 02:00 to 06:00 were missed (five fire times): one run at start-up, then 07:00 on time.
    assert_eq!(
        fake.times_of("c"),
        [
            "2026-01-10T01:00:00Z",
            "2026-01-10T06:20:00Z",
            "2026-01-10T07:00:00Z"
        ]
    );
    let catch_up = matching(&lines, &["c: launch (catch-up", "5 missed fire time(s)"]);
    assert_eq!(catch_up.len(), 1, "{lines:#?}");
    assert_eq!(utc(saved.handled_until), "2026-01-10T07:00:00Z");
}

#[tokio::test]
async fn catch_up_skip_ignores_missed_fire_times() {
    let (fake, lines, _) = downtime("schedule = \"0 0 * * * *\"\ncatch_up = \"skip\"").await;
    assert_eq!(
        fake.times_of("c"),
        ["2026-01-10T01:00:00Z", "2026-01-10T07:00:00Z"]
    );
    let skipped = matching(
        &lines,
        &["c: skip: 5 missed fire time(s)", "catch_up = \"skip\""],
    );
    assert_eq!(skipped.len(), 1, "{lines:#?}");
    assert!(
        skipped[0].starts_with("2026-01-10T06:20:00Z"),
        "{skipped:?}"
    );
}

#[tokio::test]
async fn a_workflow_seen_for_the_first_time_owes_no_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let clock = SimClock::new(t("2026-01-10T06:20:00Z"));
    let fake = Fake::new(&clock);
    simulate(
        dir.path(),
        vec![wf("n", "schedule = \"0 0 * * * *\"")],
        &fake,
        &mut Fixed,
        "2026-01-10T07:30:00Z",
    )
    .await;
    assert_eq!(fake.times_of("n"), ["2026-01-10T07:00:00Z"]);
}

async fn failing_then_ok(on_failure: &str) -> Vec<Launch> {
    let dir = tempfile::tempdir().unwrap();
    let clock = SimClock::new(t("2026-01-10T00:30:00Z"));
    let fail = Behaviour {
        lasts: mins(10),
        exit: 1,
    };
    let fake = Fake::new(&clock).plan("f", &[fail, INSTANT_OK, INSTANT_OK]);
    let keys = format!("schedule = \"0 0 * * * *\"\non_failure = \"{on_failure}\"");
    let lines = simulate(
        dir.path(),
        vec![wf("f", &keys)],
        &fake,
        &mut Fixed,
        "2026-01-10T03:30:00Z",
    )
    .await;
    assert_eq!(
        matching(&lines, &["f: run ended: exit code 1"]).len(),
        1,
        "{lines:#?}"
    );
    fake.launches.take()
}

#[tokio::test]
async fn on_failure_resume_asks_the_run_after_a_failure_to_resume() {
    let resumed: Vec<bool> = failing_then_ok("resume")
        .await
        .iter()
        .map(|l| l.resume_failed)
        .collect();
    // 01:00 fails; 02:00 resumes it; 03:00 follows a success.
    assert_eq!(resumed, [false, true, false]);
    let restarted: Vec<bool> = failing_then_ok("restart")
        .await
        .iter()
        .map(|l| l.resume_failed)
        .collect();
    assert_eq!(restarted, [false, false, false]);
}

#[tokio::test]
async fn two_workflows_over_a_night_each_run_exactly_when_due() {
    let dir = tempfile::tempdir().unwrap();
    let clock = SimClock::new(t("2026-03-28T20:00:00Z"));
    // The hourly one's runs last 20 minutes; the nightly one's 3 hours: neither disturbs the other.
    let fake = Fake::new(&clock)
        .plan(
            "hourly",
            &[Behaviour {
                lasts: mins(20),
                exit: 0,
            }; 10],
        )
        .plan(
            "nightly",
            &[Behaviour {
                lasts: mins(180),
                exit: 0,
            }],
        );
    let lines = simulate(
        dir.path(),
        vec![
            wf("hourly", "schedule = \"0 15 * * * *\""),
            wf(
                "nightly",
                "schedule = \"30 2 * * *\"\ntimezone = \"Europe/Paris\"",
            ),
        ],
        &fake,
        &mut Fixed,
        "2026-03-29T06:00:00Z",
    )
    .await;
    let hourly: Vec<String> = (20..24)
        .map(|h| format!("2026-03-28T{h:02}:15:00Z"))
        .chain((0..6).map(|h| format!("2026-03-29T{h:02}:15:00Z")))
        .collect();
    assert_eq!(fake.times_of("hourly"), hourly);
    // 02:30 does not exist in Paris that night: the run starts at 03:00 CEST.
    assert_eq!(fake.times_of("nightly"), ["2026-03-29T01:00:00Z"]);
    assert!(matching(&lines, &["skip"]).is_empty(), "{lines:#?}");
    assert_eq!(matching(&lines, &["run ended: exit code 0"]).len(), 11);
    // Each launch is followed by the workflow's next fire time.
    assert!(
        lines.iter().any(|l| l
            == "2026-03-29T01:00:00Z nightly: next run 2026-03-30 02:30:00 CEST \
                           (2026-03-30T00:30:00Z, schedule \"0 30 2 * * *\")"),
        "{lines:#?}"
    );
}

/// A workflow directory that changes once, at a simulated time.
struct ChangesAt {
    clock: SimClock,
    at: DateTime<Utc>,
    next: Option<Vec<Workflow>>,
}

impl WorkflowSource for ChangesAt {
    async fn changed(&mut self) -> Vec<Workflow> {
        if self.next.is_none() {
            std::future::pending::<()>().await;
        }
        self.clock.until(self.at).await;
        self.next.take().expect("checked above")
    }
}

#[tokio::test]
async fn a_changed_schedule_applies_from_the_reload_on_and_a_removed_workflow_stops() {
    let dir = tempfile::tempdir().unwrap();
    let clock = SimClock::new(t("2026-01-10T00:30:00Z"));
    let fake = Fake::new(&clock);
    let mut source = ChangesAt {
        clock: clock.clone(),
        at: t("2026-01-10T02:30:00Z"),
        next: Some(vec![wf("a", "schedule = \"0 45 * * * *\"")]),
    };
    let lines = simulate(
        dir.path(),
        vec![
            wf("a", "schedule = \"0 0 * * * *\""),
            wf("b", "schedule = \"0 0 * * * *\""),
        ],
        &fake,
        &mut source,
        "2026-01-10T04:00:00Z",
    )
    .await;
    assert_eq!(
        fake.times_of("a"),
        [
            "2026-01-10T01:00:00Z",
            "2026-01-10T02:00:00Z",
            "2026-01-10T02:45:00Z",
            "2026-01-10T03:45:00Z"
        ]
    );
    assert_eq!(
        fake.times_of("b"),
        ["2026-01-10T01:00:00Z", "2026-01-10T02:00:00Z"]
    );
    assert_eq!(
        matching(&lines, &["2026-01-10T02:30:00Z a: schedule changed"]).len(),
        1,
        "{lines:#?}"
    );
    assert_eq!(
        matching(&lines, &["2026-01-10T02:30:00Z b: workflow removed"]).len(),
        1,
        "{lines:#?}"
    );
}

#[tokio::test]
async fn workflows_without_a_schedule_are_noted_once_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, lines) = scheduler(dir.path());
    let now = t("2026-01-10T00:00:00Z");
    s.set_workflows(
        vec![wf("plain", ""), wf("s", "schedule = \"0 0 2 * * *\"")],
        now,
    );
    s.set_workflows(
        vec![wf("plain", ""), wf("s", "schedule = \"0 0 2 * * *\"")],
        now,
    );
    assert_eq!(s.workflows(), ["s"]);
    assert_eq!(
        s.next_of("s").map(utc).as_deref(),
        Some("2026-01-10T02:00:00Z")
    );
    assert_eq!(
        matching(&lines.borrow(), &["plain: no schedule; ignored"]).len(),
        1
    );
}

#[tokio::test]
async fn a_stop_before_the_first_fire_time_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = SimClock::new(t("2026-01-10T00:30:00Z"));
    let fake = Fake::new(&clock);
    let (mut s, _) = scheduler(dir.path());
    s.set_workflows(vec![wf("h", "schedule = \"0 0 * * * *\"")], clock.now());
    let shutdown = Shutdown::new();
    shutdown.trigger("SIGTERM");
    s.run(&clock, &fake, &mut Fixed, &shutdown, None).await;
    assert!(fake.launches.borrow().is_empty());
    assert_eq!(utc(clock.now()), "2026-01-10T00:30:00Z");
}

#[test]
fn the_state_file_round_trips_and_a_damaged_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(state::load(dir.path(), "w").unwrap(), None);
    let s = ScheduleState {
        handled_until: t("2026-03-29T01:00:00Z"),
        last_launch: Some(t("2026-03-29T01:00:00Z")),
        last_exit: Some(1),
    };
    state::save(dir.path(), "w", &s).unwrap();
    assert_eq!(state::load(dir.path(), "w").unwrap(), Some(s));
    let p = state::path(dir.path(), "w");
    assert!(!p.with_extension("json.tmp").exists());
    std::fs::write(&p, "{\"handled_until\": \"yesterday\"}").unwrap();
    let err = state::load(dir.path(), "w").unwrap_err().to_string();
    assert!(err.contains(&p.display().to_string()), "{err}");
    assert!(err.contains("yesterday"), "{err}");
}

#[tokio::test]
async fn a_held_simulated_clock_does_not_move() {
    let clock = SimClock::new(t("2026-01-10T00:00:00Z"));
    let hold = clock.hold();
    let sleep = clock.sleep_until(t("2026-01-10T01:00:00Z"));
    futures::pin_mut!(sleep);
    assert!(futures::poll!(sleep.as_mut()).is_pending());
    assert_eq!(utc(clock.now()), "2026-01-10T00:00:00Z");
    drop(hold);
    sleep.await;
    assert_eq!(utc(clock.now()), "2026-01-10T01:00:00Z");
}
