//! Scheduler tests with instrumented tasks: they record what ran at once and how much memory was
//! reserved at that moment.

use super::*;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// (task, others running when it started, pool used when it started, scale)
type Start = (usize, Vec<usize>, u64, f64);

#[derive(Default)]
struct Probe {
    running: Mutex<Vec<usize>>,
    /// (task, others running when it started, pool used when it started, scale)
    starts: Mutex<Vec<Start>>,
    failed: Mutex<Vec<(usize, u32, bool)>>,
    skipped: Mutex<Vec<(usize, usize)>>,
    fail_always: Vec<usize>,
    fail_once_retryable: Vec<usize>,
    calls: AtomicU32,
    /// Tasks that take this long instead of a few milliseconds.
    slow: Vec<(usize, Duration)>,
    /// Triggered (as SIGTERM) when the given task starts.
    stop_at_start: Option<(usize, Shutdown)>,
    /// Triggered (as SIGTERM) when a failure is recorded for a retry.
    stop_at_retry: Option<Shutdown>,
    interrupted: Mutex<Vec<(usize, String)>>,
}

struct R(Arc<Probe>);

impl Runner for R {
    fn run(&self, idx: usize, grant: Grant) -> BoxFuture<'static, Result<(), Error>> {
        let p = Arc::clone(&self.0);
        Box::pin(async move {
            p.calls.fetch_add(1, Ordering::SeqCst);
            {
                let mut r = p.running.lock().unwrap();
                let used = grant.reservation.pool().used();
                p.starts
                    .lock()
                    .unwrap()
                    .push((idx, r.clone(), used, grant.scale));
                r.push(idx);
            }
            if let Some((at, stop)) = &p.stop_at_start
                && *at == idx
            {
                stop.trigger("SIGTERM");
            }
            let pause = p
                .slow
                .iter()
                .find(|s| s.0 == idx)
                .map(|s| s.1)
                .unwrap_or(Duration::from_millis(5 + (idx as u64 % 4) * 3));
            tokio::time::sleep(pause).await;
            p.running.lock().unwrap().retain(|&x| x != idx);
            if p.fail_always.contains(&idx) {
                return Err(Error::data(format!("task {idx} bad data")));
            }
            if p.fail_once_retryable.contains(&idx) && grant.attempt == 1 {
                return Err(Error::unavailable("connection reset"));
            }
            drop(grant);
            Ok(())
        })
    }
    fn failed(&self, idx: usize, _err: &Error, attempt: u32, retry_in: Option<Duration>) {
        self.0
            .failed
            .lock()
            .unwrap()
            .push((idx, attempt, retry_in.is_some()));
        if let (Some(stop), Some(_)) = (&self.0.stop_at_retry, retry_in) {
            stop.trigger("SIGTERM");
        }
    }
    fn skipped(&self, idx: usize, cause: usize) {
        self.0.skipped.lock().unwrap().push((idx, cause));
    }
    fn interrupted(&self, idx: usize, why: &str) {
        self.0
            .interrupted
            .lock()
            .unwrap()
            .push((idx, why.to_string()));
    }
}

fn fast_limits() -> Limits {
    Limits {
        source_slots: 3,
        load_slots: 1,
        retries: 2,
        backoff_base: Duration::from_millis(2),
        backoff_max: Duration::from_millis(10),
        stop_grace: Duration::from_secs(30),
    }
}

/// `tables` chains of 4 tasks each: extract(Source) -> lake(Other) -> load(Load) -> verify(Other).
fn chains(tables: usize, mem: impl Fn(usize) -> u64) -> Vec<TaskSpec> {
    let mut v = Vec::new();
    for t in 0..tables {
        for s in 0..4 {
            let i = t * 4 + s;
            v.push(TaskSpec {
                name: format!("t{t}.s{s}"),
                deps: if s == 0 { vec![] } else { vec![i - 1] },
                mem: mem(i),
                class: match s {
                    0 => Class::Source,
                    2 => Class::Load,
                    _ => Class::Other,
                },
                slots: 1,
                done: false,
            });
        }
    }
    v
}

#[tokio::test]
async fn concurrent_reservations_never_exceed_the_budget() {
    let probe = Arc::new(Probe::default());
    let pool = MemoryPool::new(100);
    let tasks = chains(8, |i| 10 + (i as u64 * 7) % 40);
    let mems: Vec<u64> = tasks.iter().map(|t| t.mem).collect();
    let report = execute(
        tasks,
        Arc::new(R(Arc::clone(&probe))),
        Arc::clone(&pool),
        fast_limits(),
        &Shutdown::new(),
    )
    .await;
    assert!(report.all_ok());
    assert!(report.peak_reserved <= 100, "peak {}", report.peak_reserved);
    let starts = probe.starts.lock().unwrap();
    assert_eq!(starts.len(), 32);
    let mut saw_parallel = false;
    for (i, others, _, _) in starts.iter() {
        let sum: u64 = others.iter().map(|&o| mems[o]).sum::<u64>() + mems[*i];
        assert!(sum <= 100, "task {i} started with {others:?}: {sum} > 100");
        saw_parallel |= !others.is_empty();
        // Caps: at most 1 load, at most 3 extracts at once.
        let loads = others.iter().filter(|&&o| o % 4 == 2).count() + usize::from(i % 4 == 2);
        assert!(loads <= 1);
        let srcs = others.iter().filter(|&&o| o % 4 == 0).count() + usize::from(i % 4 == 0);
        assert!(srcs <= 3);
    }
    assert!(saw_parallel, "nothing ran concurrently");
    assert_eq!(pool.used(), 0);
}

#[tokio::test]
async fn an_oversized_task_runs_alone_with_a_smaller_scale() {
    let probe = Arc::new(Probe::default());
    let pool = MemoryPool::new(100);
    // Task 4 (table 1's extract) needs 250, more than the whole budget.
    let tasks = chains(4, |i| if i == 4 { 250 } else { 20 });
    let report = execute(
        tasks,
        Arc::new(R(Arc::clone(&probe))),
        pool,
        fast_limits(),
        &Shutdown::new(),
    )
    .await;
    assert!(report.all_ok());
    let starts = probe.starts.lock().unwrap();
    let (_, others, used, scale) = starts.iter().find(|s| s.0 == 4).unwrap();
    assert!(others.is_empty(), "oversized task ran beside {others:?}");
    assert_eq!(*used, 100);
    assert!((scale - 0.4).abs() < 1e-9, "scale {scale}");
    // Nothing started while it ran.
    let running_with_4 = starts.iter().filter(|s| s.1.contains(&4)).count();
    assert_eq!(running_with_4, 0);
}

#[tokio::test]
async fn a_failed_task_skips_its_downstream_while_other_tables_finish() {
    let probe = Arc::new(Probe {
        fail_always: vec![5],          // table 1's lake write
        fail_once_retryable: vec![10], // table 2's load: transient
        ..Default::default()
    });
    let pool = MemoryPool::new(1000);
    let mut tasks = chains(3, |_| 10);
    // A fourth table declared to run after table 1: skipped with it.
    tasks.extend(chains(1, |_| 10).into_iter().map(|mut t| {
        t.deps = t.deps.iter().map(|d| d + 12).collect();
        if t.deps.is_empty() {
            t.deps.push(7); // after table 1's verify
        }
        t
    }));
    let report = execute(
        tasks,
        Arc::new(R(Arc::clone(&probe))),
        pool,
        fast_limits(),
        &Shutdown::new(),
    )
    .await;
    assert!(!report.all_ok());
    use Outcome::*;
    assert_eq!(&report.outcomes[0..4], &[Succeeded; 4]);
    assert_eq!(
        &report.outcomes[4..8],
        &[Succeeded, Failed, Skipped, Skipped]
    );
    assert_eq!(&report.outcomes[8..12], &[Succeeded; 4]);
    assert_eq!(&report.outcomes[12..16], &[Skipped; 4]);
    let failed = probe.failed.lock().unwrap();
    // The data error is not retried; the transient one is, once.
    assert_eq!(failed.iter().filter(|f| f.0 == 5).count(), 1);
    assert!(failed.contains(&(5, 1, false)));
    assert!(failed.contains(&(10, 1, true)));
    let skipped = probe.skipped.lock().unwrap();
    assert!(skipped.contains(&(6, 5)));
    assert!(skipped.contains(&(12, 7)));
}

#[tokio::test]
async fn finished_tasks_are_not_run_again() {
    let probe = Arc::new(Probe::default());
    let mut tasks = chains(2, |_| 1);
    tasks[0].done = true;
    tasks[1].done = true;
    let report = execute(
        tasks,
        Arc::new(R(Arc::clone(&probe))),
        MemoryPool::new(10),
        fast_limits(),
        &Shutdown::new(),
    )
    .await;
    assert!(report.all_ok());
    assert_eq!(probe.calls.load(Ordering::SeqCst), 6);
    assert_eq!(report.outcomes[0], Outcome::Reused);
}

/// Runs `tables` chains under `limits` with the probe; returns the report and how long it took.
async fn run_stoppable(
    probe: &Arc<Probe>,
    tables: usize,
    limits: Limits,
    shutdown: &Shutdown,
) -> (Report, Duration) {
    let started = Instant::now();
    let report = execute(
        chains(tables, |_| 1),
        Arc::new(R(Arc::clone(probe))),
        MemoryPool::new(100),
        limits,
        shutdown,
    )
    .await;
    (report, started.elapsed())
}

fn started(probe: &Probe) -> Vec<usize> {
    let mut v: Vec<usize> = probe.starts.lock().unwrap().iter().map(|s| s.0).collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_stop_lets_running_tasks_finish_and_starts_nothing_more() {
    let stop = Shutdown::new();
    // The three extracts start together (3 source slots); the stop comes as the first runs.
    let probe = Arc::new(Probe {
        stop_at_start: Some((0, stop.clone())),
        slow: vec![(8, Duration::from_millis(150))],
        ..Default::default()
    });
    let (report, took) = run_stoppable(&probe, 3, fast_limits(), &stop).await;
    assert_eq!(started(&probe), vec![0, 4, 8]);
    use Outcome::*;
    for (i, o) in report.outcomes.iter().enumerate() {
        let want = if i % 4 == 0 { Succeeded } else { NotStarted };
        assert_eq!(*o, want, "task {i}");
    }
    assert_eq!(
        report.stopped,
        Some(Stopped {
            reason: "SIGTERM".into(),
            interrupted: 0,
            not_started: 9
        })
    );
    assert!(probe.interrupted.lock().unwrap().is_empty());
    assert!(!report.all_ok());
    // Finished tasks end the session: it does not sit out the 30 s grace period.
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[tokio::test]
async fn tasks_outlasting_the_grace_period_are_interrupted_and_reported() {
    let stop = Shutdown::new();
    // Task 0 finishes inside the grace period, 4 and 8 would take a minute.
    let probe = Arc::new(Probe {
        stop_at_start: Some((0, stop.clone())),
        slow: vec![
            (0, Duration::from_millis(20)),
            (4, Duration::from_secs(60)),
            (8, Duration::from_secs(60)),
        ],
        ..Default::default()
    });
    let limits = Limits {
        stop_grace: Duration::from_millis(400),
        ..fast_limits()
    };
    let (report, took) = run_stoppable(&probe, 3, limits, &stop).await;
    use Outcome::*;
    assert_eq!(report.outcomes[0], Succeeded);
    assert_eq!(report.outcomes[4], Interrupted);
    assert_eq!(report.outcomes[8], Interrupted);
    assert_eq!(
        report.outcomes[1], NotStarted,
        "no successor starts after the stop"
    );
    assert_eq!(
        report.stopped,
        Some(Stopped {
            reason: "SIGTERM".into(),
            interrupted: 2,
            not_started: 9
        })
    );
    let mut interrupted = probe.interrupted.lock().unwrap().clone();
    interrupted.sort();
    assert_eq!(interrupted.len(), 2, "{interrupted:?}");
    assert_eq!(interrupted[0].0, 4);
    assert_eq!(interrupted[1].0, 8);
    assert_eq!(
        interrupted[0].1,
        "interrupted by SIGTERM (did not finish within the 0.400s grace period)"
    );
    assert!(
        took >= Duration::from_millis(400),
        "grace not given: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(started(&probe), vec![0, 4, 8]);
}

#[tokio::test]
async fn a_zero_grace_period_interrupts_at_once() {
    let stop = Shutdown::new();
    let probe = Arc::new(Probe {
        stop_at_start: Some((4, stop.clone())),
        slow: vec![
            (0, Duration::from_secs(60)),
            (4, Duration::from_secs(60)),
            (8, Duration::from_secs(60)),
        ],
        ..Default::default()
    });
    let limits = Limits {
        stop_grace: Duration::ZERO,
        ..fast_limits()
    };
    let (report, took) = run_stoppable(&probe, 3, limits, &stop).await;
    let stopped = report.stopped.expect("stopped");
    assert_eq!((stopped.interrupted, stopped.not_started), (3, 9));
    assert!(
        probe.interrupted.lock().unwrap()[0]
            .1
            .contains("within the 0s grace period")
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[tokio::test]
async fn a_retry_waiting_for_its_backoff_is_not_started_after_a_stop() {
    let stop = Shutdown::new();
    let probe = Arc::new(Probe {
        fail_once_retryable: vec![0],
        stop_at_retry: Some(stop.clone()),
        ..Default::default()
    });
    let limits = Limits {
        backoff_base: Duration::from_secs(60),
        backoff_max: Duration::from_secs(60),
        ..fast_limits()
    };
    let (report, took) = run_stoppable(&probe, 1, limits, &stop).await;
    assert_eq!(probe.calls.load(Ordering::SeqCst), 1, "the retry started");
    assert_eq!(report.outcomes, vec![Outcome::NotStarted; 4]);
    assert_eq!(report.stopped.map(|s| s.not_started), Some(4));
    assert!(
        took < Duration::from_secs(10),
        "waited for the backoff: {took:?}"
    );
}

#[tokio::test]
async fn a_stop_before_the_executor_starts_runs_nothing() {
    let stop = Shutdown::new();
    stop.trigger("SIGINT");
    let probe = Arc::new(Probe::default());
    let (report, _) = run_stoppable(&probe, 2, fast_limits(), &stop).await;
    assert_eq!(probe.calls.load(Ordering::SeqCst), 0);
    assert_eq!(
        report.stopped,
        Some(Stopped {
            reason: "SIGINT".into(),
            interrupted: 0,
            not_started: 8
        })
    );
}

#[tokio::test]
async fn a_stop_during_the_last_task_that_then_finishes_is_a_normal_end() {
    let stop = Shutdown::new();
    let probe = Arc::new(Probe {
        stop_at_start: Some((3, stop.clone())),
        ..Default::default()
    });
    let (report, _) = run_stoppable(&probe, 1, fast_limits(), &stop).await;
    assert!(report.all_ok());
    assert_eq!(report.stopped, None);
}

#[test]
fn backoff_grows_and_is_jittered_within_bounds() {
    let l = Limits {
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        ..Limits::default()
    };
    for _ in 0..50 {
        let b1 = backoff(&l, 1);
        assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
        let b3 = backoff(&l, 3);
        assert!(b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400));
        let b9 = backoff(&l, 9);
        assert!(b9 <= Duration::from_secs(1) && b9 >= Duration::from_millis(500));
    }
}
