//! Fault injection for tests: fail a named task, or kill the process at a named point.
//!
//! Crash safety is only believable if tests crash the process where it hurts most. `DAG_FAULT`
//! holds a comma-separated list of:
//! - `fail:<table>.<task>`: the task fails with a non-retryable error on every attempt;
//! - `flaky:<table>.<task>`: the task fails with a retryable error on its first attempt;
//! - `kill:<point>`: the process SIGKILLs itself when it reaches `<point>`, one of
//!   `after_chunk:<table>:<n>` (chunk n of the extract recorded), `before_catalog_commit:<table>`
//!   (the lake snapshot's manifests and metadata written, the catalog not yet pointed at them),
//!   `after_commit:<table>` (the catalog points at the new snapshot), `after_publish:<table>`
//!   (the commit returned, the task's state not yet written),
//!   `mid_load:<table>:<n>` (part of data file n inserted into the target, not committed),
//!   `before_load_request:<table>:<n>` (Stream Load request n recorded as pending, not sent),
//!   `after_load_request:<table>:<n>` (Stream Load request n done, its outcome not recorded),
//!   `before_publish:<table>` (every row in the target's staging table, not swapped in),
//!   `after_swap:<table>` (StarRocks staging table swapped in, old rows not dropped),
//!   `after_upsert:<table>` (every row of an incremental run in the live target table, the
//!   load not yet recorded),
//!   `before_verify:<table>` (loaded, not verified);
//! - `stall:<point>`: the task stops for a minute at `<point>` (to observe a run in progress);
//!   `stall:<point>@<secs>` stops it for that many seconds instead.
//!
//! A kill is a real SIGKILL, not an error path: no destructor, flush or rollback code runs.

use crate::error::{Error, ErrorKind, Result};

fn spec() -> Vec<String> {
    std::env::var("DAG_FAULT")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Kills the process if `kill:<name>` is configured (stalls it for `stall:<name>`).
pub fn point(name: &str) {
    if let Some(secs) = stall(name) {
        eprintln!("DAG_FAULT: stalling at {name}");
        let pause = || std::thread::sleep(std::time::Duration::from_secs(secs));
        // On a runtime worker, hand the worker's other tasks (the executor, the signal listener)
        // to another thread first, so that only the stalled task stops.
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(pause)
            }
            _ => pause(),
        }
    }
    if spec().iter().any(|s| s.strip_prefix("kill:") == Some(name)) {
        eprintln!("DAG_FAULT: killing the process at {name}");
        // SAFETY: kill(2) on our own pid with a valid signal number has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        // SIGKILL cannot be caught; if we are still here the signal failed, which must not
        // silently continue a test that expects a crash.
        std::process::abort();
    }
}

/// Seconds to stall at `name`, if `stall:<name>` or `stall:<name>@<secs>` is configured.
fn stall(name: &str) -> Option<u64> {
    spec().iter().find_map(|s| {
        let rest = s.strip_prefix("stall:")?;
        match rest.rsplit_once('@') {
            Some((point, secs)) if point == name => secs.parse().ok(),
            None if rest == name => Some(60),
            _ => None,
        }
    })
}

/// Returns the injected error for `table.task` on this attempt, if any.
pub fn fail(table: &str, task: &str, attempt: u32) -> Result<()> {
    let id = format!("{table}.{task}");
    for s in spec() {
        if s.strip_prefix("fail:") == Some(&id) {
            return Err(Error::new(
                ErrorKind::Injected,
                format!("injected failure of {id} (DAG_FAULT)"),
            ));
        }
        if s.strip_prefix("flaky:") == Some(&id) && attempt == 1 {
            return Err(Error::new(
                ErrorKind::Injected,
                format!("injected transient failure of {id} (DAG_FAULT)"),
            )
            .retryable(true));
        }
    }
    Ok(())
}
