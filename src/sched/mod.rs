//! Runs a DAG of tasks under a memory budget, connection caps and a retry policy.
//!
//! The scheduler knows nothing about tables or stages: it sees tasks with dependencies, a memory
//! estimate and a class (which cap they count against), and a [`Runner`] that executes one and
//! records its outcome durably. A successor is started only after its predecessor's future has
//! returned, and runners persist success before returning, so outputs are always durable before
//! anything that needs them starts. A failed task skips everything downstream of it while every
//! other branch runs on.

pub mod memory;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::task::JoinSet;

pub use memory::{MemoryPool, Reservation};

use crate::error::{Error, ErrorKind};

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
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub source_slots: usize,
    pub load_slots: usize,
    /// Retries after the first attempt, for retryable errors only.
    pub retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            source_slots: 2,
            load_slots: 2,
            retries: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Waiting,
    Ready,
    Delayed,
    Running,
    Done(Outcome),
}

pub struct Report {
    pub outcomes: Vec<Outcome>,
    /// Highest memory reserved at once.
    pub peak_reserved: u64,
}

impl Report {
    pub fn all_ok(&self) -> bool {
        self.outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Succeeded | Outcome::Reused))
    }
}

/// Runs every task to an outcome.
pub async fn execute(
    tasks: Vec<TaskSpec>,
    runner: Arc<dyn Runner>,
    pool: Arc<MemoryPool>,
    limits: Limits,
) -> Report {
    let n = tasks.len();
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, t) in tasks.iter().enumerate() {
        for &d in &t.deps {
            succ[d].push(i);
        }
    }
    let mut st: Vec<St> = tasks
        .iter()
        .map(|t| {
            if t.done {
                St::Done(Outcome::Reused)
            } else {
                St::Waiting
            }
        })
        .collect();
    let mut attempts = vec![0u32; n];
    let mut granted = vec![0usize; n];
    let mut delayed: VecDeque<(Instant, usize)> = VecDeque::new();
    let mut running: JoinSet<(usize, Result<(), Error>)> = JoinSet::new();
    let mut running_ids = std::collections::HashMap::new();
    let (mut src_busy, mut load_busy) = (0usize, 0usize);

    loop {
        // Promote waiting tasks whose dependencies all succeeded; skip those behind a failure.
        for i in 0..n {
            if st[i] != St::Waiting {
                continue;
            }
            if let Some(&bad) = tasks[i].deps.iter().find(|&&d| {
                matches!(
                    st[d],
                    St::Done(Outcome::Failed) | St::Done(Outcome::Skipped)
                )
            }) {
                st[i] = St::Done(Outcome::Skipped);
                runner.skipped(i, bad);
                continue;
            }
            if tasks[i]
                .deps
                .iter()
                .all(|&d| matches!(st[d], St::Done(Outcome::Succeeded | Outcome::Reused)))
            {
                st[i] = St::Ready;
            }
        }
        // Skipping can make more tasks skippable: repeat until stable.
        if (0..n).any(|i| {
            st[i] == St::Waiting
                && tasks[i].deps.iter().any(|&d| {
                    matches!(
                        st[d],
                        St::Done(Outcome::Failed) | St::Done(Outcome::Skipped)
                    )
                })
        }) {
            continue;
        }
        let now = Instant::now();
        while let Some(&(at, i)) = delayed.front() {
            if at > now {
                break;
            }
            delayed.pop_front();
            st[i] = St::Ready;
        }

        // Start what fits, in plan order.
        for i in 0..n {
            if st[i] != St::Ready {
                continue;
            }
            let t = &tasks[i];
            let slots = match t.class {
                Class::Source => t.slots.clamp(1, limits.source_slots.max(1)),
                Class::Load => t.slots.clamp(1, limits.load_slots.max(1)),
                Class::Other => t.slots.max(1),
            };
            let slot_free = match t.class {
                Class::Source => src_busy + slots <= limits.source_slots,
                Class::Load => load_busy + slots <= limits.load_slots,
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
            attempts[i] += 1;
            match t.class {
                Class::Source => src_busy += slots,
                Class::Load => load_busy += slots,
                Class::Other => {}
            }
            granted[i] = slots;
            st[i] = St::Running;
            let fut = runner.run(
                i,
                Grant {
                    reservation,
                    scale,
                    attempt: attempts[i],
                    slots,
                },
            );
            let h = running.spawn(async move { (i, fut.await) });
            running_ids.insert(h.id(), i);
        }

        if running.is_empty() {
            if let Some(&(at, _)) = delayed.front() {
                tokio::time::sleep_until(at.into()).await;
                continue;
            }
            if st.contains(&St::Ready) {
                // Nothing runs yet something is ready: only possible if it can never fit, which
                // try_reserve_all rules out; guard against a spin anyway.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            break;
        }

        let joined = match delayed.front() {
            Some(&(at, _)) => tokio::select! {
                j = running.join_next_with_id() => j,
                _ = tokio::time::sleep_until(at.into()) => continue,
            },
            None => running.join_next_with_id().await,
        };
        let Some(joined) = joined else { continue };
        let (i, result) = match joined {
            Ok((_, (i, r))) => (i, r),
            Err(e) => {
                let i = running_ids[&e.id()];
                (
                    i,
                    Err(Error::new(
                        ErrorKind::Internal,
                        format!("task {} panicked: {e}", tasks[i].name),
                    )),
                )
            }
        };
        match tasks[i].class {
            Class::Source => src_busy -= granted[i],
            Class::Load => load_busy -= granted[i],
            Class::Other => {}
        }
        match result {
            Ok(()) => st[i] = St::Done(Outcome::Succeeded),
            Err(e) => {
                if e.retryable && attempts[i] <= limits.retries {
                    let wait = backoff(&limits, attempts[i]);
                    runner.failed(i, &e, attempts[i], Some(wait));
                    st[i] = St::Delayed;
                    let at = Instant::now() + wait;
                    let pos = delayed.partition_point(|&(t, _)| t <= at);
                    delayed.insert(pos, (at, i));
                } else {
                    runner.failed(i, &e, attempts[i], None);
                    st[i] = St::Done(Outcome::Failed);
                }
            }
        }
    }

    Report {
        outcomes: st
            .into_iter()
            .map(|s| match s {
                St::Done(o) => o,
                _ => Outcome::Skipped,
            })
            .collect(),
        peak_reserved: pool.peak(),
    }
}

#[cfg(test)]
mod tests;
