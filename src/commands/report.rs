//! What the commands print of a run: its tasks with rows, times, tries, reservations and
//! details, the incremental tables' watermarks, and what a session's outcome means for the
//! user and the exit code.

use crate::exit;
use crate::model::Stage;
use crate::session::Outcome;
use crate::store::{RunRecord, RunStatus, TaskRecord, TaskStatus};

/// Prints what a session's outcome tells the user and returns its exit code.
pub fn outcome(o: &Outcome) -> u8 {
    match o {
        Outcome::Finished { run, tasks, ok } => {
            print_run(run, tasks, false);
            if *ok { exit::OK } else { exit::FAILED }
        }
        Outcome::Stopped {
            run,
            tasks,
            signal,
            interrupted,
            not_started,
            resume,
        } => {
            print_run(run, tasks, false);
            eprintln!(
                "stopped by {signal}: {interrupted} task(s) interrupted, {not_started} not started; `{resume}` resumes"
            );
            exit::of_stop(signal)
        }
        Outcome::StoppedBeforeStart { signal, workflow } => {
            eprintln!(
                "stopped by {signal} before any task started; `dag run {workflow}` starts again"
            );
            exit::of_stop(signal)
        }
        Outcome::NothingToRetry { table, run } => {
            println!("{table}: every task of run {run} already succeeded");
            exit::OK
        }
    }
}

pub fn print_watermarks(wms: &[crate::store::Watermark]) {
    if wms.is_empty() {
        return;
    }
    println!(
        "{:<18} {:<16} {:<28} {:<22} {:<25}",
        "INCREMENTAL", "CURSOR", "WATERMARK", "BY RUN", "LAST FULL REFRESH"
    );
    for w in wms {
        println!(
            "{:<18} {:<16} {:<28} {:<22} {:<25}",
            w.table,
            w.cursor,
            w.value
                .map_or_else(|| "none".to_string(), |v| v.to_string()),
            w.run_id,
            w.full_refresh_at
        );
    }
}

pub fn mib(b: u64) -> String {
    bytesize::ByteSize(b).display().iec().to_string()
}

pub fn print_run(run: &RunRecord, tasks: &[TaskRecord], active: bool) {
    let status = if run.status == RunStatus::Running && !active {
        format!("interrupted (resume with `dag run {}`)", run.workflow)
    } else {
        run.status.to_string()
    };
    println!(
        "workflow {}  run {}  {}  started {}{}  sessions {}  budget {}{}",
        run.workflow,
        run.id,
        status,
        run.started_at,
        run.ended_at
            .as_ref()
            .map(|e| format!("  ended {e}"))
            .unwrap_or_default(),
        run.sessions,
        mib(run.memory_budget),
        run.peak_rss
            .map(|p| match run.peak_rss_code {
                Some(c) => format!("  peak RSS {} ({} code)", mib(p), mib(c)),
                None => format!("  peak RSS {}", mib(p)),
            })
            .unwrap_or_default(),
    );
    println!(
        "{:<18} {:<14} {:<10} {:>10} {:>8} {:>5} {:>10} {:>10}  DETAIL",
        "TABLE", "TASK", "STATUS", "ROWS", "TIME", "TRIES", "MEMORY", "RSS"
    );
    for t in tasks {
        let rows = t
            .outputs
            .digest
            .map(|d| d.rows.to_string())
            .unwrap_or_default();
        let time = t
            .duration_secs()
            .map(|s| format!("{s:.1}s"))
            .unwrap_or_default();
        let detail = match (&t.last_error, t.status) {
            (Some(e), TaskStatus::Failed) if t.stage == Stage::Verify => {
                format!("{} | {e}", verify_detail(&t.outputs))
            }
            (Some(e), TaskStatus::Failed | TaskStatus::Skipped | TaskStatus::Pending) => e.clone(),
            _ => match t.stage {
                Stage::Verify => verify_detail(&t.outputs),
                Stage::WriteIceberg => t
                    .outputs
                    .snapshot_id
                    .map(|s| {
                        format!(
                            "snapshot {s}{}{}",
                            if t.outputs.commit_found {
                                " (found after a crash)"
                            } else {
                                ""
                            },
                            match t.outputs.snapshots {
                                Some(n) => format!(", {n} in history"),
                                None => String::new(),
                            }
                        )
                    })
                    .unwrap_or_default(),
                Stage::Extract => match (t.outputs.chunk_plan.len(), t.outputs.chunks_reused) {
                    (0, _) => String::new(),
                    (n, Some(r)) if r > 0 => format!("{n} chunks, {r} reused"),
                    (n, _) => format!("{n} chunks"),
                },
                Stage::Load => match (t.outputs.chunks_loaded, t.outputs.chunks_already_loaded) {
                    (Some(l), Some(a)) if !t.outputs.requests.is_empty() => {
                        format!("{l} request(s) loaded, {a} already there")
                    }
                    (Some(l), Some(a)) => format!("{l} data file(s) loaded, {a} already there"),
                    _ => String::new(),
                },
            },
        };
        let detail = match &t.outputs.note {
            Some(n) => format!("{detail} ({n})"),
            None => detail,
        };
        let detail = if t.outputs.lossy.is_empty() {
            detail
        } else {
            let cols: Vec<String> = t
                .outputs
                .lossy
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            format!("{detail}; rounded to µs: {}", cols.join(", "))
        };
        println!(
            "{:<18} {:<14} {:<10} {:>10} {:>8} {:>5} {:>10} {:>10}  {}",
            t.table,
            t.stage.name(),
            t.status.to_string(),
            rows,
            time,
            t.attempts,
            if t.mem_estimate > 0 {
                mib(t.mem_estimate)
            } else {
                String::new()
            },
            t.peak_rss.map(mib).unwrap_or_default(),
            detail
        );
    }
}

/// What verify compared: each side's rows (and fingerprint in full mode).
fn verify_detail(o: &crate::store::Outputs) -> String {
    let full = o.verify_mode != Some(crate::config::VerifyMode::Count);
    let side = |name: &str, d: Option<crate::model::fingerprint::Digest128>| {
        d.map(|d| {
            if full {
                format!("{name} {} rows {}", d.rows, d.hex())
            } else {
                format!("{name} {} rows", d.rows)
            }
        })
    };
    let mut parts: Vec<String> = [
        side("source", o.digest),
        side("lake", o.lake),
        side("target", o.target),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(m) = &o.verify_mode {
        parts.insert(0, format!("[{m}]"));
    }
    if !o.differing_keys.is_empty() {
        parts.push(format!("differing keys: {}", o.differing_keys.join("; ")));
    }
    parts.join(" ")
}
