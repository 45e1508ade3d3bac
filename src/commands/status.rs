//! `dag status` (a run's tables and tasks, watermarks, the next scheduled run) and
//! `dag history` (past runs), read from the state without disturbing a run in progress: while a
//! process holds a workflow, its state is read from the mirror the run keeps.

use std::path::Path;

use crate::error::{Error, Result};
use crate::exit;
use crate::store::lock::WorkflowLock;
use crate::store::{RunRecord, RunStatus, Store, TaskRecord, TaskStatus};

use super::Context;
use super::report::{print_run, print_watermarks};

/// Workflow names that have state.
fn workflows_with_state(state: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(state.join("db"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub fn find_workflow_of(state: &Path, table: &str) -> Result<String> {
    let mut best: Option<(String, String)> = None;
    for w in workflows_with_state(state) {
        let Some(StateView { run, .. }) = read_state(state, &w, None)? else {
            continue;
        };
        if run.tables.iter().any(|t| t.eq_ignore_ascii_case(table))
            && best.as_ref().is_none_or(|(id, _)| run.id > *id)
        {
            best = Some((run.id, w));
        }
    }
    best.map(|(_, w)| w).ok_or_else(|| {
        Error::config(format!(
            "no workflow's latest run has a table `{table}` (state: {}); name it with --workflow",
            state.display()
        ))
    })
}

/// What `dag status` shows of a workflow: a run, its tasks and the incremental tables'
/// watermarks, and whether a live process holds the workflow.
struct StateView {
    run: RunRecord,
    tasks: Vec<TaskRecord>,
    watermarks: Vec<crate::store::Watermark>,
    active: bool,
}

/// A run of `wf` (the latest, or `run_id`) with its tasks and watermarks, from the database or,
/// while a run holds it, from its mirror.
fn read_state(state: &Path, wf: &str, run_id: Option<&str>) -> Result<Option<StateView>> {
    if WorkflowLock::held_by_other(state, wf).is_some() {
        return Ok(Store::read_mirror(state, wf)
            .filter(|m| run_id.is_none_or(|r| r == m.run.id))
            .map(|m| StateView {
                run: m.run,
                tasks: m.tasks,
                watermarks: m.watermarks,
                active: true,
            }));
    }
    let store = Store::open(state, wf)?;
    let run = match run_id {
        Some(id) => store.run(id)?,
        None => store.latest_run()?,
    };
    Ok(match run {
        Some(run) => Some(StateView {
            tasks: store.tasks(&run.id)?,
            watermarks: store.watermarks()?,
            run,
            active: false,
        }),
        None => None,
    })
}

/// When `dag schedule` would next start the workflow, in its zone and in UTC (`None`: it has no
/// schedule, or its file cannot be read now).
fn next_scheduled(ctx: &Context, wf: &str) -> Option<String> {
    let wf = ctx.load_workflow(wf).ok()?;
    let timing = crate::schedule::Timing::of(&wf).ok()??;
    let next = timing.next_after(chrono::Utc::now())?;
    Some(format!(
        "{} ({})",
        timing.local(next),
        crate::schedule::utc(next)
    ))
}

pub fn status(ctx: &Context, workflow: Option<&str>, run: Option<&str>, json: bool) -> Result<u8> {
    let names = match workflow {
        Some(w) => vec![w.to_string()],
        None => workflows_with_state(&ctx.state),
    };
    let mut out = Vec::new();
    for w in &names {
        match read_state(&ctx.state, w, run)? {
            Some(view) => out.push(view),
            None if workflow.is_some() => {
                return Err(Error::config(match run {
                    Some(id) => format!("workflow `{w}` has no run `{id}`"),
                    None => format!(
                        "workflow `{w}` has not run yet (state: {})",
                        ctx.state.display()
                    ),
                }));
            }
            None => {}
        }
    }
    if json {
        let v: Vec<serde_json::Value> = out
            .iter()
            .map(|v| {
                serde_json::json!({
                    "run": v.run, "tasks": v.tasks, "active": v.active,
                    "watermarks": v.watermarks,
                    "next_scheduled": next_scheduled(ctx, &v.run.workflow),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).map_err(Error::from)?);
    } else if out.is_empty() {
        println!("no runs yet (state: {})", ctx.state.display());
    } else {
        for (i, v) in out.iter().enumerate() {
            if i > 0 {
                println!();
            }
            print_run(&v.run, &v.tasks, v.active);
            print_watermarks(&v.watermarks);
            if let Some(next) = next_scheduled(ctx, &v.run.workflow) {
                println!("next scheduled run: {next}");
            }
        }
    }
    let failed = out.iter().any(|v| v.run.status == RunStatus::Failed);
    Ok(if failed { exit::FAILED } else { exit::OK })
}

pub fn history(ctx: &Context, workflow: Option<&str>, json: bool) -> Result<u8> {
    let names = match workflow {
        Some(w) => vec![w.to_string()],
        None => workflows_with_state(&ctx.state),
    };
    let mut all = Vec::new();
    for w in names {
        if WorkflowLock::held_by_other(&ctx.state, &w).is_some() {
            if let Some(m) = Store::read_mirror(&ctx.state, &w) {
                all.push((m.run, m.tasks));
            }
            continue;
        }
        let store = Store::open(&ctx.state, &w)?;
        for r in store.runs()? {
            let tasks = store.tasks(&r.id)?;
            all.push((r, tasks));
        }
    }
    all.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    if json {
        let v: Vec<serde_json::Value> = all
            .iter()
            .map(|(r, t)| {
                serde_json::json!({
                    "run": r,
                    "failed_tasks": t.iter().filter(|t| t.status == TaskStatus::Failed).count(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).map_err(Error::from)?);
        return Ok(exit::OK);
    }
    println!(
        "{:<22} {:<12} {:<10} {:<25} {:<25} {:>6} {:>7} {:>8}",
        "RUN", "WORKFLOW", "STATUS", "STARTED", "ENDED", "TABLES", "FAILED", "SESSIONS"
    );
    for (r, t) in &all {
        println!(
            "{:<22} {:<12} {:<10} {:<25} {:<25} {:>6} {:>7} {:>8}",
            r.id,
            r.workflow,
            r.status.to_string(),
            r.started_at,
            r.ended_at.map(|e| e.to_string()).unwrap_or_default(),
            r.tables.len(),
            t.iter().filter(|t| t.status == TaskStatus::Failed).count(),
            r.sessions
        );
    }
    Ok(exit::OK)
}
