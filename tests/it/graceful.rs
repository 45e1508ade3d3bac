//! Graceful stop: SIGTERM during `dag run` ends the process promptly with a clear message and
//! exit code 143, leaves the run resumable with every unfinished task pending, and the next
//! `dag run` resumes it (not restarts it) to exactly the source's rows.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::crash::assert_exact;
use crate::support::*;

/// The small workflow with `limits.stop_grace` set.
fn workflow_with_grace(src: &std::path::Path, grace: &str) -> String {
    let text = small_workflow(src);
    let with = text.replacen(
        "retries = 1\n",
        &format!("retries = 1\nstop_grace = \"{grace}\"\n"),
        1,
    );
    assert_ne!(
        with, text,
        "small_workflow has no `retries = 1` line to extend"
    );
    with
}

struct Stopped {
    ran: Ran,
    /// From the signal to the process's exit.
    took: Duration,
}

/// Runs `dag run w` with `fault` (a stall), sends SIGTERM once the stall is reached, and waits
/// for the process to end (at most `limit`).
fn sigterm_at_stall(env: &Env, fault: &str, limit: Duration) -> Stopped {
    let mut child: Child = env.spawn(&["run", "w"], Some(fault));
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    let t0 = Instant::now();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120).saturating_sub(t0.elapsed()))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("the run never reached the stall ({fault})")
            });
        if line.contains("DAG_FAULT: stalling at") {
            break;
        }
    }
    // SAFETY: kill(2) with a valid signal to the child we spawned.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0, "cannot signal the run");
    let signalled = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if signalled.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the run did not stop within {limit:?} of SIGTERM:\n{}",
                reader.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = signalled.elapsed();
    let mut stdout = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    Stopped {
        ran: Ran {
            code: status.code(),
            signal: status.signal(),
            stdout,
            stderr: reader.join().unwrap(),
        },
        took,
    }
}

/// The state after the stop: the run unfinished and shown as interrupted, no task left running.
fn assert_resumable(env: &Env, stopped: &Ran) {
    assert_eq!(
        stopped.code,
        Some(143),
        "exit code of a SIGTERM stop: {stopped:?}"
    );
    assert!(
        stopped.stderr.contains("stopped by SIGTERM: ")
            && stopped.stderr.contains("`dag run w` resumes"),
        "{stopped:?}"
    );
    let (run, tasks) = env.status("w");
    assert_eq!(run["status"], "running", "a stopped run stays resumable");
    assert!(
        tasks.iter().all(|t| t["status"] != "running"),
        "a task was left running: {tasks:?}"
    );
    assert!(
        tasks.iter().any(|t| t["status"] == "pending"),
        "nothing left to do after a stop: {tasks:?}"
    );
    let text = env.dag(&["status", "w"]);
    assert!(
        text.stdout
            .contains("interrupted (resume with `dag run w`)"),
        "{text:?}"
    );
}

/// `dag run w` again: it resumes the same run in a second session and finishes it.
fn resume(env: &Env) {
    let (before, _) = env.status("w");
    let r = env.dag(&["run", "w"]);
    assert_eq!(r.code, Some(0), "the resumed run must finish: {r:?}");
    assert!(r.stderr.contains("resuming run"), "{r:?}");
    let (run, tasks) = env.status("w");
    assert_eq!(run["id"], before["id"], "a new run was started instead");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["sessions"], 2);
    assert!(
        tasks.iter().all(|t| t["status"] == "succeeded"),
        "{tasks:?}"
    );
}

#[test]
fn sigterm_lets_the_running_extract_finish_then_the_next_run_resumes_exactly() {
    let src = small_demo_source();
    let env = Env::new();
    env.workflow("w", &workflow_with_grace(&src, "30s"));
    // AGENTSVES's extract pauses 2 s after its chunk 1: well inside the grace period.
    let s = sigterm_at_stall(
        &env,
        "stall:after_chunk:AGENTSVES:1@2",
        Duration::from_secs(25),
    );
    assert_resumable(&env, &s.ran);
    assert!(
        s.ran
            .stderr
            .contains("stopped by SIGTERM: 0 task(s) interrupted"),
        "{:?}",
        s.ran
    );
    let ex = env.task("w", "AGENTSVES", "extract");
    assert_eq!(
        ex["status"], "succeeded",
        "it finished within the grace period"
    );
    assert_eq!(ex["attempts"], 1);
    assert_eq!(ex["outputs"]["digest"]["rows"], 9066);
    let wi = env.task("w", "AGENTSVES", "write_iceberg");
    assert_eq!(
        wi["status"], "pending",
        "a successor started after the stop"
    );
    assert_eq!(wi["attempts"], 0);

    resume(&env);
    assert_eq!(
        env.task("w", "AGENTSVES", "extract")["attempts"],
        1,
        "the finished extract ran again"
    );
    assert_exact(&env, &src);
    eprintln!("stopped {:?} after SIGTERM", s.took);
}

#[test]
fn sigterm_interrupts_an_extract_outlasting_a_short_grace_and_the_next_run_reuses_its_chunks() {
    let src = small_demo_source();
    let env = Env::new();
    env.workflow("w", &workflow_with_grace(&src, "1s"));
    // AGENTSVES's extract stalls a minute after its chunk 1: far beyond the grace period.
    let s = sigterm_at_stall(
        &env,
        "stall:after_chunk:AGENTSVES:1",
        Duration::from_secs(15),
    );
    assert_resumable(&env, &s.ran);
    assert!(
        s.took >= Duration::from_secs(1),
        "no grace period given: {:?}",
        s.took
    );
    let ex = env.task("w", "AGENTSVES", "extract");
    assert_eq!(ex["status"], "pending");
    assert_eq!(ex["attempts"], 1);
    assert_eq!(
        ex["last_error"],
        "interrupted by SIGTERM (did not finish within the 1s grace period)"
    );
    assert!(
        s.ran
            .stderr
            .contains("AGENTSVES.extract: interrupted by SIGTERM"),
        "{:?}",
        s.ran
    );

    resume(&env);
    let ex = env.task("w", "AGENTSVES", "extract");
    assert_eq!(ex["attempts"], 2);
    assert_eq!(
        ex["outputs"]["chunks_reused"], 2,
        "chunks 0 and 1 were recorded before the stop"
    );
    assert_exact(&env, &src);
}
