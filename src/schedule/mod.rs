//! `dag schedule` and `dag next`: start each workflow when its cron schedule says so.
//!
//! A workflow file may carry `schedule = "..."` (the `cron` crate's syntax, seconds first; a
//! 5-field crontab line is accepted) and `timezone = "Europe/Paris"` (UTC when absent). This
//! module turns that into fire times and decides, at each of them, whether a run starts.
//!
//! Why it is split the way it is: every decision (when is the next fire time, is it late, does
//! the previous run still run, did the last one fail) is pure logic over a [`Clock`] and a
//! [`Launcher`], so tests drive a whole night on a simulated clock in milliseconds with fake runs
//! that last or fail on demand; only the command layer (`commands::schedule`) touches the real
//! clock, signals, the workflow directory and the real runs.
//!
//! ## Fire times in a time zone, across daylight-saving changes
//! The schedule is read in local wall-clock time of the workflow's zone. Two local times need a
//! rule, and the rule is the one traditional cron daemons follow:
//! - **A local time that does not exist** (spring forward, e.g. 02:30 on 2026-03-29 in
//!   Europe/Paris): the run fires at the instant the gap ends (03:00 local, the first instant
//!   after it), so a daily job is never silently dropped for a day. Several such times in one gap
//!   fire once.
//! - **A local time that occurs twice** (fall back, e.g. 02:30 on 2026-10-25 in Europe/Paris):
//!   it fires once, at its first occurrence (summer time). An hourly schedule therefore does not
//!   fire again during the repeated hour.
//!
//! ## Policies (per workflow)
//! - `overlap`: a fire time comes while the previous run of the workflow still runs. `"skip"`
//!   (default) skips it with a logged reason; `"queue"` starts one run when the previous one
//!   ends (at most one waits: further fire times while one waits are merged into it).
//! - `catch_up`: fire times passed while `dag schedule` was not running (or the machine slept).
//!   A fire time counts as missed when it is more than [`LATE_AFTER`] old when the scheduler
//!   sees it. `"once"` (default) starts one run for all of them together; `"skip"` skips them and
//!   waits for the next fire time. What was handled survives restarts in
//!   `<state>/schedule/<workflow>.json` (see [`state`]).
//! - `on_failure`: when the workflow's last run failed, `"resume"` asks the run to first resume
//!   the failed run's unfinished tasks; `"restart"` (default) starts over.

mod clock;
pub mod engine;
pub mod state;

#[cfg(test)]
mod tests;

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::config::Workflow;
use crate::error::{Error, Result};

pub use clock::{Clock, ClockHold, SimClock, SystemClock};
pub use engine::{Launcher, Scheduler};

/// A fire time older than this when the scheduler sees it was missed (downtime, suspend), and
/// `catch_up` decides about it; a younger one is simply on time.
pub const LATE_AFTER: Duration = Duration::seconds(60);

/// A workflow's schedule, parsed: its cron expression and the zone it is read in.
#[derive(Debug, Clone)]
pub struct Timing {
    schedule: cron::Schedule,
    pub tz: Tz,
    /// The expression as the workflow file gave it (normalized to seconds first).
    pub expr: String,
}

impl PartialEq for Timing {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr && self.tz == other.tz
    }
}

impl Timing {
    /// The workflow's timing, `None` when it has no `schedule`.
    pub fn of(wf: &Workflow) -> Result<Option<Timing>> {
        let Some(expr) = &wf.schedule else {
            return Ok(None);
        };
        let schedule = cron::Schedule::from_str(expr).map_err(|e| {
            Error::config(format!(
                "{}: schedule: {expr:?} is not a cron expression ({e})",
                wf.path.display()
            ))
        })?;
        let tz = match &wf.timezone {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                Error::config(format!(
                    "{}: timezone: {name:?} is not an IANA time zone",
                    wf.path.display()
                ))
            })?,
        };
        Ok(Some(Timing {
            schedule,
            tz,
            expr: expr.clone(),
        }))
    }

    /// The first fire time strictly after `after`, by the rules in the module docs; `None` when
    /// the expression has no more (e.g. a year field in the past).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // The cron crate is asked in naive local time (as if the zone were UTC, where every time
        // exists once); each candidate is then placed in the real zone. That placement is
        // monotonic, so the first candidate landing after `after` is the answer, and local times
        // before `after`'s own local time can never land after it.
        let local = after.with_timezone(&self.tz).naive_local();
        let start = Utc.from_utc_datetime(&local);
        self.schedule
            .after(&start)
            .map(|c| self.place(c.naive_utc()))
            .find(|t| *t > after)
    }

    /// The next `count` fire times after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(count);
        let mut at = after;
        while out.len() < count {
            match self.next_after(at) {
                Some(t) => {
                    out.push(t);
                    at = t;
                }
                None => break,
            }
        }
        out
    }

    /// The instant a local wall-clock time denotes in this zone.
    fn place(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            LocalResult::None => self.gap_end(local),
        }
    }

    /// The first instant after the gap that swallows `local`: the first whole minute that
    /// exists again, then back second by second to where the gap really ends (zones have moved
    /// their clocks by whole minutes since 1970, so the first loop is short).
    fn gap_end(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let minute = local - Duration::seconds(i64::from(chrono::Timelike::second(&local)));
        let mut m = minute;
        // Gaps are at most a day long (Samoa skipped 2011-12-30); two days bounds the search.
        for _ in 0..(2 * 24 * 60) {
            m += Duration::minutes(1);
            if let Some(t) = self.tz.from_local_datetime(&m).earliest() {
                let mut t = t.with_timezone(&Utc);
                while (t - Duration::seconds(1))
                    .with_timezone(&self.tz)
                    .naive_local()
                    > local
                {
                    t -= Duration::seconds(1);
                }
                return t;
            }
        }
        // Unreachable with real zone data; fall back to reading the time at the zone's offset
        // a day earlier rather than failing a whole schedule.
        let offset = self
            .tz
            .offset_from_utc_datetime(&(local - Duration::days(1)));
        Utc.from_utc_datetime(&(local - chrono::Offset::fix(&offset)))
    }

    /// `t` in this zone, as `2026-03-29 03:00:00 CEST`.
    pub fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }
}

/// The workflow's next fire time after `after` (`None` when it has no schedule, or its
/// expression has no more fire times). `dag status` shows it.
pub fn next_fire(wf: &Workflow, after: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
    Ok(Timing::of(wf)?.and_then(|t| t.next_after(after)))
}

/// `t` in UTC, to the second: `2026-03-29T01:00:00Z`.
pub fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
