//! One session of a run: what `dag run`, `dag retry` and a scheduled run do between reading the
//! workflow and reporting.
//!
//! A session takes the workflow's lock, decides which run it works on (a new one, or the
//! resumption of an unfinished one), records every task before anything moves, plans the run
//! once ([`RunPlan`]), hands the tasks to the executor and records how the run ended. Everything
//! the stages may assume (records exist, outputs of predecessors are durable) is established
//! here. It returns an [`Outcome`] and prints no report: the command layer decides what to show
//! and which exit code it means.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{CatalogKind, Workflow};
use crate::error::{Error, Result};
use crate::lake::{Lake, LakeSettings, Warehouse};
use crate::model::Stage;
use crate::plan::{self, RunPlan, TaskGraph, select};
use crate::progress::Progress;
use crate::sched::{self, Class, MemoryPool, TaskSpec};
use crate::shutdown::Shutdown;
use crate::sources::Source;
use crate::store::lock::WorkflowLock;
use crate::store::{RunRecord, RunStatus, Store, TaskRecord, TaskStatus, now};
use crate::targets::Target;
use crate::task::Ctx;

mod runner;
use runner::TaskRunner;

/// What a session works on, resolved by the command layer.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The state directory (`--state`).
    pub state: PathBuf,
    pub wf: Workflow,
    /// The memory budget in bytes (`--memory`, else `limits.memory`, else a share of the
    /// machine's memory).
    pub budget: u64,
}

/// How a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Every task: source -> lake -> target.
    Full,
    /// Source -> lake only (`--lake-only`).
    LakeOnly,
    /// Lake -> target only (`--from load`): the source is never contacted.
    FromLake,
}

/// How a session ended.
#[derive(Debug)]
pub enum Outcome {
    /// Every task the session planned reached an end; `ok` when every task of the run
    /// succeeded.
    Finished {
        run: RunRecord,
        tasks: Vec<TaskRecord>,
        ok: bool,
    },
    /// A stop (`signal`) ended the session: the run stays resumable with `resume`.
    Stopped {
        run: RunRecord,
        tasks: Vec<TaskRecord>,
        signal: String,
        interrupted: usize,
        not_started: usize,
        resume: String,
    },
    /// A stop came before any task started: the state is what it was.
    StoppedBeforeStart { signal: String, workflow: String },
    /// `dag retry` of a table whose tasks of its latest run all succeeded.
    NothingToRetry { table: String, run: String },
}

/// The session's view of a stop that came before the executor started.
fn stopped_before_start(shutdown: &Shutdown, workflow: &str) -> Outcome {
    Outcome::StoppedBeforeStart {
        signal: shutdown.reason().unwrap_or_else(|| "a stop request".into()),
        workflow: workflow.to_string(),
    }
}

struct Components {
    source: Source,
    lake: Arc<Lake>,
    target: Option<Target>,
}

async fn open_components(state: &Path, wf: &Workflow, start: Start) -> Result<Components> {
    let source = Source::build(&wf.source)?;
    let target = match (&wf.target, start) {
        (Some(t), Start::Full | Start::FromLake) => Some(crate::targets::build(t)?),
        _ => None,
    };
    if start != Start::FromLake {
        source.prepare().await?;
    }
    let settings = LakeSettings {
        uri: wf
            .lake
            .uri
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", state.join("catalog.db").display())),
        catalog_name: wf.lake.catalog_name.clone(),
        rest: match &wf.lake.catalog {
            CatalogKind::Rest(r) => Some(r.clone()),
            CatalogKind::Sql => None,
        },
        warehouse: match &wf.lake.s3 {
            Some(s3) => Warehouse::S3(s3.clone()),
            None => Warehouse::Local(
                wf.lake
                    .warehouse
                    .clone()
                    .unwrap_or_else(|| state.join("warehouse")),
            ),
        },
        namespace: wf.lake.namespace.clone(),
        retention_secs: wf.lake.retention_secs,
    };
    let lake = Arc::new(Lake::open(&settings).await?);
    Ok(Components {
        source,
        lake,
        target,
    })
}

/// A run of the workflow: the resumption of its unfinished run when nothing about it changed
/// (and `force_new` is not set), else a new run of `start` over the selected tables (`only`:
/// `--tables`).
pub async fn run(
    setup: &Setup,
    only: &[String],
    start: Start,
    force_new: bool,
    shutdown: &Shutdown,
) -> Result<Outcome> {
    let wf = &setup.wf;
    let budget = setup.budget;
    let lake_only = start == Start::LakeOnly;
    let from_lake = start == Start::FromLake;
    if from_lake && wf.target.is_none() {
        return Err(Error::config(format!(
            "--from load: {} has no [target] to load",
            wf.path.display()
        )));
    }
    let with_load = wf.target.is_some() && !lake_only;
    let _lock = WorkflowLock::acquire(&setup.state, &wf.name)?;
    let store = Arc::new(Store::open(&setup.state, &wf.name)?);
    // Connecting may hang on an unreachable server; nothing is recorded yet, so a stop may
    // simply drop it.
    let comps = tokio::select! {
        c = open_components(&setup.state, wf, start) => c?,
        _ = shutdown.wait() => return Ok(stopped_before_start(shutdown, &wf.name)),
    };
    let progress = Progress::auto();

    // Resume the last run if it never finished and nothing about it changed.
    let mut resumed = None;
    if let Some(mut last) = store.latest_run()?
        && last.status == RunStatus::Running
    {
        let same = last.config_hash == wf.raw_hash
            && last.lake_only != with_load
            && last.from_lake == from_lake
            && only.is_empty();
        if same && !force_new {
            resumed = Some(last);
        } else {
            // Abandoned: its finished work stays recorded, its staging data is dropped when a
            // later run publishes the same tables.
            last.status = RunStatus::Failed;
            last.ended_at = Some(now());
            store.put_run(&last)?;
            progress.line(&format!(
                "run {} was unfinished; {}: starting a new run",
                last.id,
                if force_new {
                    "--new was given"
                } else {
                    "the workflow, its options or its tables changed"
                }
            ));
        }
    }
    if shutdown.is_triggered() {
        return Ok(stopped_before_start(shutdown, &wf.name));
    }
    let (run, graph) = match resumed {
        Some(mut run) => {
            let recovered = store.recover(&run.id)?;
            run.sessions += 1;
            run.memory_budget = budget;
            store.put_run(&run)?;
            let left = store
                .tasks(&run.id)?
                .iter()
                .filter(|t| t.status != TaskStatus::Succeeded)
                .count();
            progress.line(&format!(
                "resuming run {} of {}: {left} task(s) left{}",
                run.id,
                wf.name,
                if recovered > 0 {
                    format!(", {recovered} of them cut off when the process running them died")
                } else {
                    String::new()
                }
            ));
            let all = if run.from_lake {
                run.tables.clone()
            } else {
                comps.source.tables().await?
            };
            let graph =
                plan::graph::build(&run.tables, &all, &select::after_map(wf, &all), with_load)?;
            (run, graph)
        }
        None => {
            let (selected, all) = if from_lake {
                select::lake_tables(&comps.lake, wf, only).await?
            } else {
                select::select_tables(&comps.source, wf, only).await?
            };
            if with_load && let Some(t) = &comps.target {
                t.check_tables(&selected)?;
            }
            let graph =
                plan::graph::build(&selected, &all, &select::after_map(wf, &all), with_load)?;
            let run = RunRecord {
                id: Store::new_run_id(),
                workflow: wf.name.clone(),
                started_at: now(),
                ended_at: None,
                status: RunStatus::Running,
                config_hash: wf.raw_hash.clone(),
                lake_only: !with_load,
                memory_budget: budget,
                tables: graph.tables.clone(),
                sessions: 1,
                peak_rss: None,
                peak_rss_code: None,
                peak_reserved: None,
                from_lake,
            };
            record_new_run(&store, &comps.lake, wf, &run, &graph).await?;
            progress.line(&format!(
                "run {} of {}: {} table(s), memory budget {}",
                run.id,
                wf.name,
                graph.tables.len(),
                bytesize::ByteSize(budget)
            ));
            (run, graph)
        }
    };
    execute(setup, store, comps, run, graph, progress, None, shutdown).await
}

/// Records a new run and every one of its tasks before anything moves. A run from the lake
/// takes its extract and write_iceberg from each table's published snapshot, read before
/// anything is recorded so a table that cannot be loaded that way stops the run before it
/// starts.
async fn record_new_run(
    store: &Store,
    lake: &Lake,
    wf: &Workflow,
    run: &RunRecord,
    graph: &TaskGraph,
) -> Result<()> {
    let mut taken = HashMap::new();
    if run.from_lake {
        for t in &graph.tables {
            let lx = lake.published_extract(t).await?;
            if lx.info.incremental.as_ref().is_some_and(|i| i.append) {
                return Err(Error::config(format!(
                    "--from load: lake table {t} grows by incremental appends, so it holds \
                     every version of an updated row; load it with a normal run \
                     (dag run {} --tables {t}), which upserts",
                    wf.name
                )));
            }
            taken.insert(t.clone(), lx);
        }
    }
    store.put_run(run)?;
    for t in &graph.tasks {
        let mut rec = TaskRecord::new(&run.id, &t.table, t.stage);
        if let Some(lx) = taken.get(&t.table)
            && matches!(t.stage, Stage::Extract | Stage::WriteIceberg)
        {
            rec.status = TaskStatus::Succeeded;
            rec.started_at = Some(now());
            rec.ended_at = rec.started_at;
            rec.outputs.digest = Some(lx.digest);
            rec.outputs.note = Some(format!(
                "taken from the lake: snapshot {} written by run {}",
                lx.snapshot_id, lx.run
            ));
            if t.stage == Stage::Extract {
                rec.outputs.schema = Some(lx.info.clone());
            } else {
                rec.outputs.snapshot_id = Some(lx.snapshot_id);
            }
        }
        store.put_task(&rec)?;
    }
    Ok(())
}

/// `dag retry`: the latest run holding `table` runs that table again from `stage` (else from
/// its first unfinished task) on, keeping what succeeded before it.
pub async fn retry(
    setup: &Setup,
    table: &str,
    stage: Option<Stage>,
    shutdown: &Shutdown,
) -> Result<Outcome> {
    let wf = &setup.wf;
    let _lock = WorkflowLock::acquire(&setup.state, &wf.name)?;
    let store = Arc::new(Store::open(&setup.state, &wf.name)?);
    let runs = store.runs()?;
    let Some(mut run) = runs
        .into_iter()
        .rev()
        .find(|r| r.tables.iter().any(|t| t.eq_ignore_ascii_case(table)))
    else {
        return Err(Error::config(format!(
            "no run of workflow `{}` has a table `{table}`",
            wf.name
        )));
    };
    let table = run
        .tables
        .iter()
        .find(|t| t.eq_ignore_ascii_case(table))
        .cloned()
        .unwrap_or_else(|| table.to_string());
    let progress = Progress::auto();
    if run.config_hash != wf.raw_hash {
        progress.warn(&format!(
            "{} changed since run {} started; the retry uses the current file",
            wf.path.display(),
            run.id
        ));
    }
    store.recover(&run.id)?;
    let recs: Vec<TaskRecord> = store
        .tasks(&run.id)?
        .into_iter()
        .filter(|t| t.table == table)
        .collect();
    let stages_in_run = plan::stages(!run.lake_only);
    let from = match stage {
        Some(s) => {
            if !stages_in_run.contains(&s) {
                return Err(Error::config(format!(
                    "run {} has no {s} task for {table} (it was lake-only)",
                    run.id
                )));
            }
            if run.from_lake && s < Stage::Load {
                return Err(Error::config(format!(
                    "run {} loaded {table} from the lake (--from load): it has no {s} of its own; \
                     retry {table}.load or {table}.verify, or start a run from the source: \
                     dag run {} --tables {table}",
                    run.id, wf.name
                )));
            }
            if s == Stage::Extract
                && recs
                    .iter()
                    .any(|r| r.stage == Stage::Extract && r.status == TaskStatus::Succeeded)
            {
                return Err(Error::config(format!(
                    "{table}.extract already succeeded in run {}: its rows are recorded and may already be \
                     published; to extract again start a new run: dag run {} --tables {table}",
                    run.id, wf.name
                )));
            }
            s
        }
        None => match recs.iter().find(|r| r.status != TaskStatus::Succeeded) {
            Some(r) => r.stage,
            None => {
                return Ok(Outcome::NothingToRetry { table, run: run.id });
            }
        },
    };
    for mut r in recs {
        if r.stage >= from && r.status != TaskStatus::Pending {
            r.status = TaskStatus::Pending;
            store.put_task(&r)?;
        }
    }
    run.status = RunStatus::Running;
    run.sessions += 1;
    run.ended_at = None;
    store.put_run(&run)?;
    progress.line(&format!(
        "retrying {table} of run {} from {from} on",
        run.id
    ));
    let start = match (run.lake_only, run.from_lake) {
        (true, _) => Start::LakeOnly,
        (false, true) => Start::FromLake,
        (false, false) => Start::Full,
    };
    let comps = open_components(&setup.state, wf, start).await?;
    let all = if run.from_lake {
        run.tables.clone()
    } else {
        comps
            .source
            .tables()
            .await
            .unwrap_or_else(|_| run.tables.clone())
    };
    let graph = plan::graph::build(
        &run.tables,
        &all,
        &select::after_map(wf, &all),
        !run.lake_only,
    )?;
    execute(
        setup,
        store,
        comps,
        run,
        graph,
        progress,
        Some(&table),
        shutdown,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    setup: &Setup,
    store: Arc<Store>,
    comps: Components,
    mut run: RunRecord,
    graph: TaskGraph,
    progress: Progress,
    only_table: Option<&str>,
    shutdown: &Shutdown,
) -> Result<Outcome> {
    let wf = &setup.wf;
    let budget = setup.budget;
    let plan = RunPlan::build(wf, &comps.source, graph, only_table, budget, |t| {
        Ok(store
            .task(&run.id, t, Stage::Extract)?
            .and_then(|r| r.outputs.schema))
    })
    .await?;
    let mut specs = Vec::new();
    for t in &plan.tasks {
        let rec = store.task(&run.id, &t.table, t.stage)?;
        specs.push(TaskSpec {
            name: format!("{}.{}", t.table, t.stage),
            deps: t.deps.clone(),
            mem: t.mem,
            slots: t.slots,
            class: match t.stage {
                Stage::Extract => Class::Source,
                Stage::Load => Class::Load,
                _ => Class::Other,
            },
            done: rec.is_some_and(|r| r.status == TaskStatus::Succeeded),
        });
    }
    let nodes = plan
        .tasks
        .iter()
        .map(|t| (t.table.clone(), t.stage))
        .collect();
    let ctx = Arc::new(Ctx {
        store: Arc::clone(&store),
        run_id: run.id.clone(),
        source: comps.source,
        lake: comps.lake,
        target: comps.target,
        tables: plan.tables,
        tuning: plan.tuning,
        progress,
        verify: wf.verify,
        workflow: wf.name.clone(),
        from_lake: run.from_lake,
        schema_changes: wf.schema_changes,
        lake_cfg: wf.lake.clone(),
    });
    let runner = Arc::new(TaskRunner {
        ctx,
        nodes,
        budget,
        // Sampled often enough to see a row group's buffers come and go.
        rss: Arc::new(crate::sysmem::RssWatch::start(
            std::time::Duration::from_millis(20),
        )),
    });
    let pool = MemoryPool::new(budget);
    let limits = sched::Limits {
        source_slots: wf.limits.source_connections,
        load_slots: wf.limits.concurrent_loads,
        retries: wf.limits.retries,
        stop_grace: std::time::Duration::from_secs(wf.limits.stop_grace_secs),
        ..sched::Limits::default()
    };
    let report = sched::execute(specs, runner, pool, limits, shutdown).await;

    // Stopped: the run stays `running` so that the next `dag run` resumes it; every task that
    // did not finish is recorded pending.
    if let Some(stop) = report.stopped {
        let tasks = store.tasks(&run.id)?;
        note_peaks(&mut run, &tasks, report.peak_reserved);
        store.put_run(&run)?;
        let resume = match only_table {
            Some(t) => format!("dag retry {t} --workflow {}", wf.name),
            None => format!("dag run {}", wf.name),
        };
        return Ok(Outcome::Stopped {
            tasks: store.tasks(&run.id)?,
            run,
            signal: stop.reason,
            interrupted: stop.interrupted,
            not_started: stop.not_started,
            resume,
        });
    }

    // The run's status covers every table, not only those this session ran.
    let all = store.tasks(&run.id)?;
    let ok = all.iter().all(|t| t.status == TaskStatus::Succeeded);
    run.status = if ok {
        RunStatus::Succeeded
    } else {
        RunStatus::Failed
    };
    run.ended_at = Some(now());
    note_peaks(&mut run, &all, report.peak_reserved);
    store.put_run(&run)?;
    match prune_history(&store, wf.history_retention_secs) {
        Ok(0) => {}
        Ok(n) => tracing::info!("removed {n} run(s) older than history_retention from the state"),
        Err(e) => tracing::warn!("could not prune old runs from the state: {e}"),
    }
    Ok(Outcome::Finished {
        run,
        tasks: all,
        ok,
    })
}

/// Deletes finished runs that ended more than `retention_secs` ago, keeping the latest run
/// whatever its age (`dag status` and `dag retry` need it). Returns how many went.
fn prune_history(store: &Store, retention_secs: u64) -> Result<usize> {
    let runs = store.runs()?;
    let Some(latest) = runs.last().map(|r| r.id.clone()) else {
        return Ok(0);
    };
    let now = chrono::Utc::now();
    let mut n = 0;
    for r in &runs {
        if r.id == latest || r.status == RunStatus::Running {
            continue;
        }
        let old = r
            .ended_at
            .is_some_and(|e| (now - e.time()).num_seconds() > retention_secs as i64);
        if old {
            store.delete_run(&r.id)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Makes the workflow's last run, if it failed and the workflow file is unchanged since, a run
/// to resume: its failed and skipped tasks go back to pending and the run to running, so the
/// next `dag run` picks them up where they stopped, keeping what succeeded. Returns its id.
pub fn reopen_failed(state: &Path, wf: &Workflow) -> Result<Option<String>> {
    let _lock = WorkflowLock::acquire(state, &wf.name)?;
    let store = Store::open(state, &wf.name)?;
    reopen_failed_in(&store, wf)
}

fn reopen_failed_in(store: &Store, wf: &Workflow) -> Result<Option<String>> {
    let Some(mut run) = store.latest_run()? else {
        return Ok(None);
    };
    if run.status != RunStatus::Failed || run.config_hash != wf.raw_hash {
        return Ok(None);
    }
    for mut t in store.tasks(&run.id)? {
        if matches!(t.status, TaskStatus::Failed | TaskStatus::Skipped) {
            t.status = TaskStatus::Pending;
            store.put_task(&t)?;
        }
    }
    run.status = RunStatus::Running;
    run.ended_at = None;
    store.put_run(&run)?;
    Ok(Some(run.id))
}

/// Records this process's peaks in the run: its RSS (the kernel's high-water mark, or the
/// highest RSS a task's sampler saw if that is higher: the kernel folds per-thread RSS counters
/// into the mark lazily, so a sample taken between folds can exceed it), how much of it was
/// code, and the scheduler's highest reservation.
fn note_peaks(run: &mut RunRecord, tasks: &[TaskRecord], peak_reserved: u64) {
    let sampled = tasks.iter().filter_map(|t| t.peak_rss).max();
    run.peak_rss = match (crate::sysmem::peak_rss(), sampled) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    run.peak_rss_code = crate::sysmem::peak_file_rss();
    run.peak_reserved = Some(peak_reserved);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn run(id: &str, status: RunStatus, ended: Option<crate::store::Timestamp>) -> RunRecord {
        RunRecord {
            id: id.into(),
            workflow: "w".into(),
            started_at: now(),
            ended_at: ended,
            status,
            config_hash: "h".into(),
            lake_only: false,
            memory_budget: 1 << 30,
            tables: vec!["T".into()],
            sessions: 1,
            peak_rss: None,
            peak_rss_code: None,
            peak_reserved: None,
            from_lake: false,
        }
    }

    #[test]
    fn history_retention_drops_old_finished_runs_and_keeps_the_latest() {
        let store = Store::temporary("w").unwrap();
        let long_ago =
            crate::store::Timestamp::at(chrono::Utc::now() - chrono::Duration::days(100));
        store
            .put_run(&run("1_old", RunStatus::Succeeded, Some(long_ago)))
            .unwrap();
        store
            .put_task(&TaskRecord::new("1_old", "T", Stage::Extract))
            .unwrap();
        store
            .put_run(&run("2_recent", RunStatus::Failed, Some(now())))
            .unwrap();
        store
            .put_run(&run("3_unfinished", RunStatus::Running, None))
            .unwrap();
        store
            .put_run(&run("4_latest_old", RunStatus::Succeeded, Some(long_ago)))
            .unwrap();
        let removed = prune_history(&store, 90 * 86_400).unwrap();
        assert_eq!(removed, 1);
        let left: Vec<String> = store.runs().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(left, ["2_recent", "3_unfinished", "4_latest_old"]);
        assert!(store.tasks("1_old").unwrap().is_empty());
    }

    #[test]
    fn a_failed_run_is_reopened_for_resumption_only_if_the_workflow_is_unchanged() {
        let store = Store::temporary("w").unwrap();
        store
            .put_run(&run("1", RunStatus::Failed, Some(now())))
            .unwrap();
        let mut ok = TaskRecord::new("1", "T", Stage::Extract);
        ok.status = TaskStatus::Succeeded;
        store.put_task(&ok).unwrap();
        let mut bad = TaskRecord::new("1", "T", Stage::WriteIceberg);
        bad.status = TaskStatus::Failed;
        store.put_task(&bad).unwrap();
        let mut skipped = TaskRecord::new("1", "T", Stage::Verify);
        skipped.status = TaskStatus::Skipped;
        store.put_task(&skipped).unwrap();

        let text = "[source]\nkind = \"sqlite\"\npath = \"x.db\"\n[lake]\nnamespace = \"n\"\n";
        let mut wf = config::parse(text, Path::new("w.toml"), &|_| None).unwrap();
        wf.raw_hash = "other".into();
        assert_eq!(reopen_failed_in(&store, &wf).unwrap(), None);
        assert_eq!(store.run("1").unwrap().unwrap().status, RunStatus::Failed);

        wf.raw_hash = "h".into();
        assert_eq!(reopen_failed_in(&store, &wf).unwrap().as_deref(), Some("1"));
        assert_eq!(store.run("1").unwrap().unwrap().status, RunStatus::Running);
        let st: Vec<TaskStatus> = store
            .tasks("1")
            .unwrap()
            .into_iter()
            .map(|t| t.status)
            .collect();
        assert_eq!(
            st,
            [
                TaskStatus::Succeeded,
                TaskStatus::Pending,
                TaskStatus::Pending
            ]
        );
    }
}
