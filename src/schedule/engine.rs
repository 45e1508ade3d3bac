//! The scheduling loop: which workflow is due, whether it starts, and what is remembered.
//!
//! Everything here is driven by a [`Clock`] and starts runs through a [`Launcher`], so the same
//! loop runs in production (system clock, real runs) and in tests (simulated clock, fake runs).
//! Runs are futures polled by the loop itself rather than spawned tasks: a run's end is noticed
//! in the same place fire times are, which keeps the order of events deterministic on a
//! simulated clock.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use futures::future::{FutureExt, LocalBoxFuture};
use futures::stream::{FuturesUnordered, StreamExt};

use super::state::{self, ScheduleState};
use super::{Clock, LATE_AFTER, Timing, utc};
use crate::config::{CatchUp, OnFailure, Overlap, Workflow};
use crate::error::Result;
use crate::shutdown::Shutdown;
use crate::store::{RunStatus, Store};

/// Starts runs. The real one runs the workflow in this process; tests use fakes that last a
/// given simulated time or fail.
pub trait Launcher {
    /// Starts one run of `workflow` and resolves to its exit code (as `dag run`'s).
    /// `resume_failed`: the workflow's last run failed and its `on_failure` is `"resume"`.
    /// `shutdown` asks the run to stop gracefully.
    fn launch(
        &self,
        workflow: &str,
        resume_failed: bool,
        shutdown: &Shutdown,
    ) -> LocalBoxFuture<'_, Result<u8>>;
}

/// Where new versions of the workflows come from while the loop runs.
pub trait WorkflowSource {
    /// Resolves with the whole new set of workflows when it may have changed (a file was added,
    /// changed or removed, or SIGHUP); never resolves when nothing changes. Must be cancel-safe:
    /// the loop drops it whenever something else happens first.
    fn changed(&mut self) -> impl Future<Output = Vec<Workflow>>;
}

/// A source that never changes (tests, and `dag schedule` on a simulated clock).
pub struct Fixed;

impl WorkflowSource for Fixed {
    async fn changed(&mut self) -> Vec<Workflow> {
        std::future::pending().await
    }
}

struct Entry {
    wf: Workflow,
    timing: Timing,
    next: Option<DateTime<Utc>>,
    saved: ScheduleState,
    /// When the run in flight started.
    running: Option<DateTime<Utc>>,
    /// A run waits for the one in flight to end (`overlap = "queue"`).
    queued: bool,
    /// The file went away while a run was in flight: dropped when it ends.
    removed: bool,
}

enum Act {
    Launch(String),
    Say(String),
    Nothing,
}

type Running<'l> = FuturesUnordered<LocalBoxFuture<'l, (String, Result<u8>)>>;

/// The workflows being scheduled and their bookkeeping.
pub struct Scheduler {
    state_dir: PathBuf,
    entries: BTreeMap<String, Entry>,
    /// Workflows without a schedule already reported (reported once, not at every reload).
    unscheduled: BTreeSet<String>,
    log: Box<dyn FnMut(&str)>,
}

impl Scheduler {
    /// `log` receives one plain line per event, already prefixed with the time.
    pub fn new(state_dir: PathBuf, log: Box<dyn FnMut(&str)>) -> Scheduler {
        Scheduler {
            state_dir,
            entries: BTreeMap::new(),
            unscheduled: BTreeSet::new(),
            log,
        }
    }

    fn say(&mut self, now: DateTime<Utc>, msg: &str) {
        (self.log)(&format!("{} {msg}", utc(now)));
    }

    /// Takes a new set of workflows: new ones are added (with what was saved about them),
    /// changed ones updated, missing ones dropped (after their run in flight, if any). A changed
    /// schedule or zone applies from `now` on: it owes nothing for earlier fire times.
    pub fn set_workflows(&mut self, wfs: Vec<Workflow>, now: DateTime<Utc>) {
        let mut seen = BTreeSet::new();
        for wf in wfs {
            let name = wf.name.clone();
            let timing = match Timing::of(&wf) {
                Ok(Some(t)) => t,
                Ok(None) => {
                    if self.entries.remove(&name).is_some() {
                        self.say(
                            now,
                            &format!("{name}: its schedule was removed; not scheduled"),
                        );
                    } else if self.unscheduled.insert(name.clone()) {
                        self.say(now, &format!("{name}: no schedule; ignored"));
                    }
                    continue;
                }
                Err(e) => {
                    self.say(now, &format!("{name}: not scheduled: {e}"));
                    continue;
                }
            };
            self.unscheduled.remove(&name);
            seen.insert(name.clone());
            if let Some(e) = self.entries.get_mut(&name) {
                e.removed = false;
                e.wf = wf;
                if e.timing != timing {
                    e.timing = timing;
                    e.saved.handled_until = e.saved.handled_until.max(now);
                    e.next = e.timing.next_after(e.saved.handled_until);
                    let saved = e.saved.clone();
                    self.save(&name, &saved, now);
                    self.say(now, &format!("{name}: schedule changed"));
                }
                continue;
            }
            let saved = match state::load(&self.state_dir, &name) {
                Ok(Some(s)) => s,
                Ok(None) => {
                    let s = ScheduleState {
                        handled_until: now,
                        last_launch: None,
                        last_exit: None,
                    };
                    self.save(&name, &s, now);
                    s
                }
                Err(e) => {
                    self.say(now, &format!("{name}: {e}; starting from now"));
                    ScheduleState {
                        handled_until: now,
                        last_launch: None,
                        last_exit: None,
                    }
                }
            };
            let next = timing.next_after(saved.handled_until);
            self.entries.insert(
                name,
                Entry {
                    wf,
                    timing,
                    next,
                    saved,
                    running: None,
                    queued: false,
                    removed: false,
                },
            );
        }
        let gone: Vec<String> = self
            .entries
            .keys()
            .filter(|n| !seen.contains(*n))
            .cloned()
            .collect();
        for name in gone {
            let running = self.entries[&name].running.is_some();
            if running {
                let e = self.entries.get_mut(&name).expect("listed above");
                e.removed = true;
                e.queued = false;
                self.say(
                    now,
                    &format!("{name}: workflow removed; its run in flight continues"),
                );
            } else {
                self.entries.remove(&name);
                self.say(
                    now,
                    &format!("{name}: workflow removed; no longer scheduled"),
                );
            }
        }
        let names: Vec<String> = self.entries.keys().cloned().collect();
        for name in names {
            self.say_next(&name, now);
        }
    }

    /// Names of the workflows being scheduled.
    pub fn workflows(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(_, e)| !e.removed)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The next fire time of a scheduled workflow.
    pub fn next_of(&self, name: &str) -> Option<DateTime<Utc>> {
        self.entries.get(name).and_then(|e| e.next)
    }

    fn say_next(&mut self, name: &str, now: DateTime<Utc>) {
        let Some(e) = self.entries.get(name) else {
            return;
        };
        if e.removed {
            return;
        }
        let msg = match e.next {
            Some(t) => format!(
                "{name}: next run {} ({}, schedule {:?})",
                e.timing.local(t),
                utc(t),
                e.timing.expr
            ),
            None => format!("{name}: schedule {:?} has no fire time left", e.timing.expr),
        };
        self.say(now, &msg);
    }

    fn save(&mut self, name: &str, s: &ScheduleState, now: DateTime<Utc>) {
        if let Err(e) = state::save(&self.state_dir, name, s) {
            // The schedule goes on; only what a restart would catch up may be off.
            self.say(now, &format!("{name}: {e}"));
        }
    }

    /// Runs the loop until `until` (all fire times up to it handled and the runs they started
    /// ended) or until `shutdown` is triggered (nothing new starts; the runs in flight, which
    /// were given the same token, are waited for).
    pub async fn run<C: Clock, L: Launcher, W: WorkflowSource>(
        &mut self,
        clock: &C,
        launcher: &L,
        source: &mut W,
        shutdown: &Shutdown,
        until: Option<DateTime<Utc>>,
    ) {
        let mut running: Running<'_> = FuturesUnordered::new();
        loop {
            // Runs that ended by now are accounted for before a fire time looks at them.
            while let Some(Some((name, res))) = running.next().now_or_never() {
                self.ended(&name, res, clock.now(), launcher, shutdown, &mut running);
            }
            if shutdown.is_triggered() {
                break;
            }
            let now = clock.now();
            let due: Vec<String> = self
                .entries
                .iter()
                .filter(|(_, e)| !e.removed && e.next.is_some_and(|t| t <= now))
                .map(|(n, _)| n.clone())
                .collect();
            for name in due {
                self.fire(&name, now, launcher, shutdown, &mut running);
            }
            let next = self
                .entries
                .values()
                .filter(|e| !e.removed)
                .filter_map(|e| e.next)
                .min();
            let finished = match until {
                Some(u) => next.is_none_or(|n| n > u),
                None => false,
            };
            if finished && running.is_empty() {
                break;
            }
            // Past the last fire time to handle, time still runs on to `until` for the runs
            // in flight (a simulated clock only moves when asked to).
            let wake = match until {
                Some(u) if finished => (now < u).then_some(u),
                _ => next,
            };
            tokio::select! {
                biased;
                _ = shutdown.wait() => {}
                Some((name, res)) = running.next(), if !running.is_empty() => {
                    self.ended(&name, res, clock.now(), launcher, shutdown, &mut running);
                }
                wfs = source.changed() => self.set_workflows(wfs, clock.now()),
                _ = clock.sleep_until(wake.unwrap_or(now)), if wake.is_some() => {}
            }
        }
        if !running.is_empty() {
            let why = shutdown.reason().unwrap_or_else(|| "stop".into());
            self.say(
                clock.now(),
                &format!(
                    "{why}: starting nothing new; waiting for {} run(s) in flight",
                    running.len()
                ),
            );
            while let Some((name, res)) = running.next().await {
                self.ended(&name, res, clock.now(), launcher, shutdown, &mut running);
            }
        }
    }

    /// A workflow's fire time came (or several did, while nobody looked).
    fn fire<'l, L: Launcher>(
        &mut self,
        name: &str,
        now: DateTime<Utc>,
        launcher: &'l L,
        shutdown: &Shutdown,
        running: &mut Running<'l>,
    ) {
        let e = &self.entries[name];
        let since = e.saved.handled_until;
        let on_time = e
            .timing
            .next_after(since.max(now - LATE_AFTER))
            .filter(|t| *t <= now);
        // Fire times that are too old to be on time; counted up to a bound, since a
        // per-second schedule after a week away has 600,000 of them.
        const COUNT_UP_TO: usize = 10_000;
        let mut missed = 0usize;
        let mut latest_missed = None;
        let mut at = since;
        while missed < COUNT_UP_TO {
            match e.timing.next_after(at) {
                Some(t) if t <= now - LATE_AFTER => {
                    missed += 1;
                    latest_missed = Some(t);
                    at = t;
                }
                _ => break,
            }
        }
        let missed_text = if missed >= COUNT_UP_TO {
            format!("{COUNT_UP_TO} or more missed fire times")
        } else {
            format!("{missed} missed fire time(s)")
        };
        let catch_up = e.wf.catch_up;
        let local = |t| e.timing.local(t);
        let act = match (on_time, latest_missed) {
            (Some(t), None) => Act::Launch(format!("fire time {}", local(t))),
            (Some(t), Some(_)) => Act::Launch(format!(
                "fire time {}; {missed_text} since {} {}",
                local(t),
                local(since),
                match catch_up {
                    CatchUp::Once => "are covered by this run",
                    CatchUp::Skip => "skipped (catch_up = \"skip\")",
                }
            )),
            (None, Some(t)) => match catch_up {
                CatchUp::Once => Act::Launch(format!(
                    "catch-up: one run for {missed_text} since {} (latest {})",
                    local(since),
                    local(t)
                )),
                CatchUp::Skip => Act::Say(format!(
                    "{name}: skip: {missed_text} since {} (latest {}): catch_up = \"skip\"",
                    local(since),
                    local(t)
                )),
            },
            (None, None) => Act::Nothing,
        };
        match act {
            Act::Launch(why) => self.start_or_defer(name, &why, now, launcher, shutdown, running),
            Act::Say(msg) => self.say(now, &msg),
            Act::Nothing => {}
        }
        let e = self.entries.get_mut(name).expect("due entry exists");
        e.saved.handled_until = now;
        e.next = e.timing.next_after(now);
        let saved = e.saved.clone();
        self.save(name, &saved, now);
        self.say_next(name, now);
    }

    /// Starts a run now, or applies `overlap` when one is in flight.
    fn start_or_defer<'l, L: Launcher>(
        &mut self,
        name: &str,
        why: &str,
        now: DateTime<Utc>,
        launcher: &'l L,
        shutdown: &Shutdown,
        running: &mut Running<'l>,
    ) {
        let e = self.entries.get_mut(name).expect("entry exists");
        let Some(started) = e.running else {
            self.start(name, why, now, launcher, shutdown, running);
            return;
        };
        let msg = match e.wf.overlap {
            Overlap::Skip => format!(
                "{name}: skip {why}: overlap: the run started at {} is still running",
                utc(started)
            ),
            Overlap::Queue if e.queued => format!(
                "{name}: {why}: a run already waits for the one started at {} (overlap = \
                 \"queue\" keeps one); merged into it",
                utc(started)
            ),
            Overlap::Queue => {
                e.queued = true;
                format!(
                    "{name}: queued {why}: starts when the run started at {} ends",
                    utc(started)
                )
            }
        };
        self.say(now, &msg);
    }

    fn start<'l, L: Launcher>(
        &mut self,
        name: &str,
        why: &str,
        now: DateTime<Utc>,
        launcher: &'l L,
        shutdown: &Shutdown,
        running: &mut Running<'l>,
    ) {
        let e = self.entries.get_mut(name).expect("entry exists");
        // The run history is the authority on whether the last run failed (it also knows runs
        // started by hand); the scheduler's own record covers a workflow that never wrote one.
        let last_failed = match Store::read_mirror(&self.state_dir, name) {
            Some(m) => m.run.status == RunStatus::Failed,
            None => e.saved.last_exit.is_some_and(|c| c != 0),
        };
        let resume = last_failed && e.wf.on_failure == OnFailure::Resume;
        e.running = Some(now);
        e.queued = false;
        e.saved.last_launch = Some(now);
        let saved = e.saved.clone();
        self.save(name, &saved, now);
        self.say(
            now,
            &format!(
                "{name}: launch ({why}){}",
                if resume {
                    "; the last run failed: resuming its unfinished tasks first"
                } else {
                    ""
                }
            ),
        );
        let fut = launcher.launch(name, resume, shutdown);
        let owned = name.to_string();
        running.push(async move { (owned, fut.await) }.boxed_local());
    }

    fn ended<'l, L: Launcher>(
        &mut self,
        name: &str,
        res: Result<u8>,
        now: DateTime<Utc>,
        launcher: &'l L,
        shutdown: &Shutdown,
        running: &mut Running<'l>,
    ) {
        let code = match &res {
            Ok(c) => *c,
            Err(e) => crate::exit::of_error(e),
        };
        let msg = match &res {
            Ok(c) => format!("{name}: run ended: exit code {c}"),
            Err(e) => format!("{name}: run ended: exit code {code}: {e}"),
        };
        self.say(now, &msg);
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        e.running = None;
        e.saved.last_exit = Some(code);
        if e.removed {
            self.entries.remove(name);
            return;
        }
        let saved = e.saved.clone();
        let queued = e.queued;
        self.save(name, &saved, now);
        if queued && !shutdown.is_triggered() {
            self.start(
                name,
                "queued while the previous run was in flight",
                now,
                launcher,
                shutdown,
                running,
            );
        }
        self.say_next(name, now);
    }
}
