//! Runs a DAG of tasks under a memory budget, connection caps and a retry policy.
//!
//! The scheduler knows nothing about tables or stages: it sees tasks with dependencies, a memory
//! estimate and a class (which cap they count against), and a [`Runner`] that executes one and
//! records its outcome durably. A successor is started only after its predecessor's future has
//! returned, and runners persist success before returning, so outputs are always durable before
//! anything that needs them starts. A failed task skips everything downstream of it while every
//! other branch runs on.
//!
//! A stop (SIGINT/SIGTERM through [`Shutdown`]) ends admission at once: nothing more starts, not
//! even a retry that is waiting for its backoff. Running tasks get the grace period to finish (a
//! task that does is a success like any other); those still running then are aborted and handed
//! to [`Runner::interrupted`], so the state names exactly the work the next run has to do.

pub mod memory;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::task::JoinSet;

pub use memory::{MemoryPool, Reservation};

use crate::error::{Error, ErrorKind};
use crate::shutdown::Shutdown;

/// Which concurrency cap a task counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Holds source connections.
    Source,
    /// Loads into the target.
    Load,
    /// Anything else (lake commits, verification).
    Other,
}

#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub name: String,
    pub deps: Vec<usize>,
    pub mem: u64,
    pub class: Class,
    /// Slots of its class the task occupies at once (connections of a parallel extract); at
    /// least 1, and never more than the class's cap.
    pub slots: usize,
    /// Already finished in an earlier session: counts as done without running.
    pub done: bool,
}

/// What a running task was granted.
pub struct Grant {
    pub reservation: Reservation,
    /// 1.0 normally; below 1 when the task's estimate exceeded the whole budget and it runs
    /// alone: the task must shrink its buffers by this factor.
    pub scale: f64,
    pub attempt: u32,
    /// Slots granted (see [`TaskSpec::slots`]).
    pub slots: usize,
}

pub trait Runner: Send + Sync + 'static {
    /// Runs task `idx`; must durably record success before returning `Ok`.
    fn run(&self, idx: usize, grant: Grant) -> BoxFuture<'static, Result<(), Error>>;
    /// Records a failure (`retry_in` is set when it will be tried again).
    fn failed(&self, idx: usize, err: &Error, attempt: u32, retry_in: Option<Duration>);
    /// Records that `idx` will not run because `cause` failed.
    fn skipped(&self, idx: usize, cause: usize);
    /// Records that `idx` was aborted by a stop before it finished (`why` says which stop and
    /// that the grace period ran out); the next run must do it again.
    fn interrupted(&self, idx: usize, why: &str);
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub source_slots: usize,
    pub load_slots: usize,
    /// Retries after the first attempt, for retryable errors only.
    pub retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How long running tasks may take to finish after a stop before they are aborted.
    pub stop_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            source_slots: 2,
            load_slots: 2,
            retries: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            stop_grace: Duration::from_secs(30),
        }
    }
}

/// Exponential backoff with full jitter: a random delay in [base*2^(n-1)/2, base*2^(n-1)].
pub fn backoff(limits: &Limits, attempt: u32) -> Duration {
    let exp = limits
        .backoff_base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(limits.backoff_max);
    let half = exp / 2;
    half + Duration::from_nanos(fastrand::u64(..=half.as_nanos() as u64))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    Skipped,
    /// Already done before this session.
    Reused,
    /// Aborted by a stop after the grace period; still to do.
    Interrupted,
    /// Never started because of a stop; still to do.
    NotStarted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Waiting,
    Ready,
    Delayed,
    Running,
    Done(Outcome),
}

/// How a stop ended a session early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// What asked for the stop (e.g. `SIGTERM`).
    pub reason: String,
    /// Tasks aborted when the grace period ran out.
    pub interrupted: usize,
    /// Tasks that never started: ready, waiting for predecessors, or waiting to be retried.
    pub not_started: usize,
}

pub struct Report {
    pub outcomes: Vec<Outcome>,
    /// Highest memory reserved at once.
    pub peak_reserved: u64,
    /// Set when a stop ended the session before every task reached an outcome.
    pub stopped: Option<Stopped>,
}

impl Report {
    pub fn all_ok(&self) -> bool {
        self.outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Succeeded | Outcome::Reused))
    }
}

/// How long aborted tasks get to unwind before the session ends without them: a task stuck in
/// blocking code cannot be cancelled until it returns, and a stop must stay prompt.
const ABORT_WAIT: Duration = Duration::from_secs(3);

/// The executor's bookkeeping, shared by the main loop and the drain after a stop.
struct Exec<'a> {
    tasks: &'a [TaskSpec],
    runner: &'a dyn Runner,
    limits: &'a Limits,
    st: Vec<St>,
    attempts: Vec<u32>,
    granted: Vec<usize>,
    delayed: VecDeque<(Instant, usize)>,
    src_busy: usize,
    load_busy: usize,
}

impl Exec<'_> {
    /// Frees the slots of task `i`, which returned `result`, and records its outcome.
    fn settle(&mut self, i: usize, result: Result<(), Error>) {
        match self.tasks[i].class {
            Class::Source => self.src_busy -= self.granted[i],
            Class::Load => self.load_busy -= self.granted[i],
            Class::Other => {}
        }
        match result {
            Ok(()) => self.st[i] = St::Done(Outcome::Succeeded),
            Err(e) => {
                if e.retryable && self.attempts[i] <= self.limits.retries {
                    let wait = backoff(self.limits, self.attempts[i]);
                    self.runner.failed(i, &e, self.attempts[i], Some(wait));
                    self.st[i] = St::Delayed;
                    let at = Instant::now() + wait;
                    let pos = self.delayed.partition_point(|&(t, _)| t <= at);
                    self.delayed.insert(pos, (at, i));
                } else {
                    self.runner.failed(i, &e, self.attempts[i], None);
                    self.st[i] = St::Done(Outcome::Failed);
                }
            }
        }
    }

    fn panicked(&self, i: usize, e: &tokio::task::JoinError) -> Error {
        Error::new(
            ErrorKind::Internal,
            format!("task {} panicked: {e}", self.tasks[i].name),
        )
    }
}

/// `30s`, or `0.250s` below a whole second (tests use short grace periods).
fn secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// Runs every task to an outcome, or until `shutdown` stops the session (see the module docs).
pub async fn execute(
    tasks: Vec<TaskSpec>,
    runner: Arc<dyn Runner>,
    pool: Arc<MemoryPool>,
    limits: Limits,
    shutdown: &Shutdown,
) -> Report {
    let n = tasks.len();
    let mut ex = Exec {
        tasks: &tasks,
        runner: runner.as_ref(),
        limits: &limits,
        st: tasks
            .iter()
            .map(|t| {
                if t.done {
                    St::Done(Outcome::Reused)
                } else {
                    St::Waiting
                }
            })
            .collect(),
        attempts: vec![0u32; n],
        granted: vec![0usize; n],
        delayed: VecDeque::new(),
        src_busy: 0,
        load_busy: 0,
    };
    let mut running: JoinSet<(usize, Result<(), Error>)> = JoinSet::new();
    let mut running_ids = std::collections::HashMap::new();
    // When the grace period ends, once a stop was seen.
    let mut grace_end: Option<Instant> = None;
    let mut aborted = false;

    loop {
        if grace_end.is_none() && shutdown.is_triggered() {
            grace_end = Some(Instant::now() + limits.stop_grace);
        }
        let stopping = grace_end.is_some();
        // Promote waiting tasks whose dependencies all succeeded; skip those behind a failure.
        for (i, t) in tasks.iter().enumerate() {
            if ex.st[i] != St::Waiting {
                continue;
            }
            if let Some(&bad) = t.deps.iter().find(|&&d| {
                matches!(
                    ex.st[d],
                    St::Done(Outcome::Failed) | St::Done(Outcome::Skipped)
                )
            }) {
                ex.st[i] = St::Done(Outcome::Skipped);
                runner.skipped(i, bad);
                continue;
            }
            if t.deps
                .iter()
                .all(|&d| matches!(ex.st[d], St::Done(Outcome::Succeeded | Outcome::Reused)))
            {
                ex.st[i] = St::Ready;
            }
        }
        // Skipping can make more tasks skippable: repeat until stable.
        if (0..n).any(|i| {
            ex.st[i] == St::Waiting
                && tasks[i].deps.iter().any(|&d| {
                    matches!(
                        ex.st[d],
                        St::Done(Outcome::Failed) | St::Done(Outcome::Skipped)
                    )
                })
        }) {
            continue;
        }

        if !stopping {
            let now = Instant::now();
            while let Some(&(at, i)) = ex.delayed.front() {
                if at > now {
                    break;
                }
                ex.delayed.pop_front();
                ex.st[i] = St::Ready;
            }
            // Start what fits, in plan order.
            for (i, t) in tasks.iter().enumerate() {
                if ex.st[i] != St::Ready {
                    continue;
                }
                let slots = match t.class {
                    Class::Source => t.slots.clamp(1, limits.source_slots.max(1)),
                    Class::Load => t.slots.clamp(1, limits.load_slots.max(1)),
                    Class::Other => t.slots.max(1),
                };
                let slot_free = match t.class {
                    Class::Source => ex.src_busy + slots <= limits.source_slots,
                    Class::Load => ex.load_busy + slots <= limits.load_slots,
                    Class::Other => true,
                };
                if !slot_free {
                    continue;
                }
                let (reservation, scale) = if t.mem > pool.budget() {
                    // Too big for the budget: run alone, with buffers scaled down to fit.
                    match pool.try_reserve_all() {
                        Some(r) => (r, pool.budget() as f64 / t.mem as f64),
                        None => continue,
                    }
                } else {
                    match pool.try_reserve(t.mem) {
                        Some(r) => (r, 1.0),
                        None => continue,
                    }
                };
                ex.attempts[i] += 1;
                match t.class {
                    Class::Source => ex.src_busy += slots,
                    Class::Load => ex.load_busy += slots,
                    Class::Other => {}
                }
                ex.granted[i] = slots;
                ex.st[i] = St::Running;
                let fut = runner.run(
                    i,
                    Grant {
                        reservation,
                        scale,
                        attempt: ex.attempts[i],
                        slots,
                    },
                );
                let h = running.spawn(async move { (i, fut.await) });
                running_ids.insert(h.id(), i);
            }
        }

        if running.is_empty() {
            if stopping {
                break;
            }
            if let Some(&(at, _)) = ex.delayed.front() {
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = shutdown.wait() => {}
                }
                continue;
            }
            if ex.st.contains(&St::Ready) {
                // Nothing runs yet something is ready: only possible if it can never fit, which
                // try_reserve_all rules out; guard against a spin anyway.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            break;
        }

        let joined = match grace_end {
            Some(end) => tokio::select! {
                j = running.join_next_with_id() => j,
                _ = tokio::time::sleep_until(end.into()) => {
                    aborted = true;
                    break;
                }
            },
            None => {
                let retry_at = ex.delayed.front().map(|&(at, _)| at);
                tokio::select! {
                    j = running.join_next_with_id() => j,
                    _ = tokio::time::sleep_until(retry_at.unwrap_or_else(Instant::now).into()),
                        if retry_at.is_some() => continue,
                    _ = shutdown.wait() => continue,
                }
            }
        };
        let Some(joined) = joined else { continue };
        match joined {
            Ok((_, (i, r))) => ex.settle(i, r),
            Err(e) => {
                let i = running_ids[&e.id()];
                let err = ex.panicked(i, &e);
                ex.settle(i, Err(err));
            }
        }
    }

    let reason = shutdown
        .reason()
        .unwrap_or_else(|| "a stop request".to_string());
    if aborted {
        // The grace period is over: cancel what still runs. A task that completes while being
        // aborted keeps its real outcome (its success is already recorded); the others are
        // reported interrupted.
        running.abort_all();
        let until = tokio::time::Instant::from_std(Instant::now() + ABORT_WAIT);
        while let Ok(Some(joined)) =
            tokio::time::timeout_at(until, running.join_next_with_id()).await
        {
            match joined {
                Ok((_, (i, r))) => ex.settle(i, r),
                Err(e) if e.is_cancelled() => {}
                Err(e) => {
                    let i = running_ids[&e.id()];
                    let err = ex.panicked(i, &e);
                    ex.settle(i, Err(err));
                }
            }
        }
        let why = format!(
            "interrupted by {reason} (did not finish within the {} grace period)",
            secs(limits.stop_grace)
        );
        for i in 0..n {
            if ex.st[i] == St::Running {
                ex.st[i] = St::Done(Outcome::Interrupted);
                runner.interrupted(i, &why);
            }
        }
    }

    let outcomes: Vec<Outcome> = ex
        .st
        .iter()
        .map(|s| match s {
            St::Done(o) => *o,
            _ if grace_end.is_some() => Outcome::NotStarted,
            _ => Outcome::Skipped,
        })
        .collect();
    let count = |o: Outcome| outcomes.iter().filter(|&&x| x == o).count();
    let (interrupted, not_started) = (count(Outcome::Interrupted), count(Outcome::NotStarted));
    // A stop that came when nothing was left to start changes nothing: the session finished.
    let stopped = (grace_end.is_some() && interrupted + not_started > 0).then_some(Stopped {
        reason,
        interrupted,
        not_started,
    });
    Report {
        outcomes,
        peak_reserved: pool.peak(),
        stopped,
    }
}

#[cfg(test)]
mod tests;
