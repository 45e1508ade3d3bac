//! The commands: wires workflow files, the state store, components and the scheduler together.
//!
//! Everything that decides *which* run and *which* tasks lives here: a new run or the resumption
//! of an unfinished one, which tables, what each task may reserve. The stages themselves live in
//! [`crate::task`]; what they may assume (records exist, outputs of predecessors are durable) is
//! established here before the scheduler starts.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::{Cli, Command, FromStage, PlanFormat};
use crate::config::{self, Workflow};
use crate::dag;
use crate::error::{Error, ErrorKind, Result};
use crate::lake::{Lake, LakeSettings, Warehouse};
use crate::model::Stage;
use crate::model::TableInfo;
use crate::progress::Progress;
use crate::sched::{self, Class, MemoryPool, TaskSpec};
use crate::shutdown::Shutdown;
use crate::sources::Source;
use crate::store::lock::WorkflowLock;
use crate::store::{RunRecord, RunStatus, Store, TaskRecord, TaskStatus, now};
use crate::targets::Target;
use crate::task::{Ctx, TablePlan, TaskRunner, Tuning};

use crate::exit::{FAILED as EXIT_FAILED, OK as EXIT_OK, of_stop as stop_code};

/// A stop asked for before the executor started: nothing of this session ran, and the state is
/// what it was (a run already recorded stays resumable).
fn stopped_before_start(shutdown: &Shutdown, workflow: &str) -> u8 {
    let reason = shutdown.reason().unwrap_or_else(|| "a stop request".into());
    eprintln!("stopped by {reason} before any task started; `dag run {workflow}` starts again");
    stop_code(&reason)
}

pub async fn main(cli: Cli) -> ExitCode {
    let shutdown = Shutdown::new();
    if let Err(e) = shutdown.listen_for_signals() {
        eprintln!("warning: cannot listen for SIGINT/SIGTERM ({e}); a signal stops at once");
    }
    let res = match &cli.command {
        Command::Run {
            workflow,
            tables,
            lake_only,
            from,
            memory,
            new,
        } => {
            let start = match (lake_only, from) {
                (true, _) => Start::LakeOnly,
                (false, Some(FromStage::Load)) => Start::FromLake,
                (false, None) => Start::Full,
            };
            cmd_run(
                &cli,
                workflow,
                tables,
                start,
                memory.as_deref(),
                *new,
                &shutdown,
            )
            .await
        }
        Command::Retry {
            target,
            workflow,
            memory,
        } => {
            cmd_retry(
                &cli,
                target,
                workflow.as_deref(),
                memory.as_deref(),
                &shutdown,
            )
            .await
        }
        Command::Status {
            workflow,
            run,
            json,
        } => cmd_status(&cli, workflow.as_deref(), run.as_deref(), *json),
        Command::History { workflow, json } => cmd_history(&cli, workflow.as_deref(), *json),
        Command::Plan {
            workflow,
            format,
            tables,
            lake_only,
            memory,
        } => {
            cmd_plan(
                &cli,
                workflow,
                *format,
                tables,
                *lake_only,
                memory.as_deref(),
            )
            .await
        }
        Command::Validate { workflow } => load_workflow(&cli, workflow).map(|wf| {
            println!("{}: OK", wf.path.display());
            EXIT_OK
        }),
        Command::Schedule {
            simulate_from,
            simulate_until,
        } => {
            crate::schedule::command::cmd_schedule(
                &cli,
                simulate_from.as_deref(),
                simulate_until.as_deref(),
            )
            .await
        }
        Command::Next {
            workflow,
            count,
            after,
        } => {
            crate::schedule::command::cmd_next(&cli, workflow.as_deref(), *count, after.as_deref())
        }
    };
    match res {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(crate::exit::of_error(&e))
        }
    }
}

/// One run started by `dag schedule`: a new run of the workflow, or (`resume_failed`, the
/// workflow's `on_failure = "resume"`) first the unfinished tasks of its last run when that
/// failed. Returns the exit code `dag run` would have. `shutdown` stops it gracefully.
pub async fn run_scheduled(
    cli: &Cli,
    workflow: &str,
    resume_failed: bool,
    shutdown: &crate::shutdown::Shutdown,
) -> Result<u8> {
    if resume_failed {
        let wf = load_workflow(cli, workflow)?;
        let reopened = {
            let _lock = WorkflowLock::acquire(&cli.state, &wf.name)?;
            let store = Store::open(&cli.state, &wf.name)?;
            reopen_failed(&store, &wf)?
        };
        if let Some(id) = reopened {
            println!(
                "{}: the last run {id} failed; resuming its unfinished tasks (on_failure = \"resume\")",
                wf.name
            );
        }
    }
    cmd_run(cli, workflow, &[], Start::Full, None, false, shutdown).await
}

/// Makes the workflow's last run, if it failed and the workflow file is unchanged since, a run
/// to resume: its failed and skipped tasks go back to pending and the run to running, so the
/// next `dag run` picks them up where they stopped, keeping what succeeded. Returns its id.
fn reopen_failed(store: &Store, wf: &Workflow) -> Result<Option<String>> {
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

/// Reads and validates a workflow; `${DAG_STATE_DIR}` expands to the state directory.
pub fn load_workflow(cli: &Cli, name: &str) -> Result<Workflow> {
    let path = config::resolve(name, &cli.workflows).map_err(Error::config)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::config(format!("cannot read {}: {e}", path.display())))?;
    let state = cli.state.to_string_lossy().into_owned();
    let env = move |k: &str| {
        if k == "DAG_STATE_DIR" {
            Some(state.clone())
        } else {
            std::env::var(k).ok()
        }
    };
    config::parse(&text, &path, &env).map_err(|errs| Error::config(errs.to_string()))
}

fn budget(cli_memory: Option<&str>, wf: &Workflow) -> Result<u64> {
    match cli_memory {
        // The same floor as `limits.memory` in a workflow file.
        Some(s) => match config::parse_size(s) {
            Ok(b) if b >= config::MIN_MEMORY => Ok(b),
            Ok(_) => Err(Error::config(format!(
                "--memory: {s} is below the minimum of 16MiB"
            ))),
            Err(e) => Err(Error::config(format!("--memory: {e}"))),
        },
        None => Ok(wf
            .limits
            .memory
            .unwrap_or_else(crate::sysmem::default_budget)),
    }
}

/// Connections an extract may read its chunks with: the table's `connections`, else the
/// workflow's `limits.source_connections`, never more than the chunks it will have.
fn extract_connections(wf: &Workflow, info: &TableInfo, chunk_rows: u64) -> usize {
    let cap = wf.limits.source_connections.max(1);
    let wanted = wf
        .override_for(&info.name)
        .and_then(|o| o.connections)
        .unwrap_or(cap)
        .min(cap);
    wanted
        .min(info.estimated_chunks(chunk_rows) as usize)
        .max(1)
}

/// An extract's reservation covers every connection it reads with; under a tight budget it
/// reads with fewer connections rather than shrink its buffers.
fn extract_estimate(
    tuning: &Tuning,
    info: &TableInfo,
    connections: usize,
    budget: u64,
) -> (u64, usize) {
    let one = tuning.estimate(Stage::Extract, info);
    let mut n = connections.max(1);
    while n > 1 && one * n as u64 > budget {
        n -= 1;
    }
    (one * n as u64, n)
}

fn tuning(wf: &Workflow) -> Tuning {
    Tuning {
        batch_rows: wf.limits.batch_rows,
        row_group_bytes: crate::lake::ROW_GROUP_BYTES,
        lake_write_bytes: if wf.lake.s3.is_some() { 10 << 20 } else { 0 },
        default_chunk_rows: 250_000,
        load_bytes: wf
            .target
            .as_ref()
            .map_or(0, crate::targets::load_buffer_bytes),
        open_partitions: wf.lake.open_partitions,
    }
}

struct Components {
    source: Source,
    lake: Arc<Lake>,
    target: Option<Target>,
}

/// How a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Every task: source -> lake -> target.
    Full,
    /// Source -> lake only (`--lake-only`).
    LakeOnly,
    /// Lake -> target only (`--from load`): the source is never contacted.
    FromLake,
}

async fn open_components(cli: &Cli, wf: &Workflow, start: Start) -> Result<Components> {
    let source = Source::build(&wf.source)?;
    let target = match (&wf.target, start) {
        (Some(t), Start::Full | Start::FromLake) => Some(Target::build(t)?),
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
            .unwrap_or_else(|| format!("sqlite:{}", cli.state.join("catalog.db").display())),
        catalog_name: wf.lake.catalog_name.clone(),
        warehouse: match &wf.lake.s3 {
            Some(s3) => Warehouse::S3(s3.clone()),
            None => Warehouse::Local(
                wf.lake
                    .warehouse
                    .clone()
                    .unwrap_or_else(|| cli.state.join("warehouse")),
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

/// Tables of the source that the workflow (and `--tables`) selects.
async fn select_tables(
    source: &Source,
    wf: &Workflow,
    only: &[String],
) -> Result<(Vec<String>, Vec<String>)> {
    let all = source.tables().await?;
    let mut missing = Vec::new();
    for t in only {
        if !all.iter().any(|a| a.eq_ignore_ascii_case(t)) {
            missing.push(t.clone());
        }
    }
    if !missing.is_empty() {
        return Err(Error::config(format!(
            "--tables: no such table(s) in the source: {} (it has: {})",
            missing.join(", "),
            all.join(", ")
        )));
    }
    let mut selected = all
        .iter()
        .filter(|t| wf.tables.selects(t))
        .filter(|t| only.is_empty() || only.iter().any(|o| o.eq_ignore_ascii_case(t)))
        .cloned()
        .collect::<Vec<_>>();
    // A table named literally in `include` that the source does not have is kept: its extract
    // fails with the reason, and every other table still moves.
    for name in &wf.tables.include {
        let literal = !name.contains(['*', '?', '[', '{']);
        if literal
            && !all.iter().any(|a| a.eq_ignore_ascii_case(name))
            && !wf
                .tables
                .exclude
                .iter()
                .any(|e| e.eq_ignore_ascii_case(name))
            && (only.is_empty() || only.iter().any(|o| o.eq_ignore_ascii_case(name)))
        {
            tracing::warn!(
                "tables.include names {name}, which the source does not list; its extract will fail"
            );
            selected.push(name.clone());
        }
    }
    if selected.is_empty() {
        return Err(Error::config(format!(
            "{}: tables.include/exclude select no table of the source (it has: {})",
            wf.path.display(),
            all.join(", ")
        )));
    }
    Ok((selected, all))
}

/// Tables of the lake that the workflow (and `--tables`) selects, for a run from the lake.
async fn lake_tables(
    lake: &Lake,
    wf: &Workflow,
    only: &[String],
) -> Result<(Vec<String>, Vec<String>)> {
    let all = lake.tables().await?;
    let missing: Vec<&String> = only
        .iter()
        .filter(|t| !all.iter().any(|a| a.eq_ignore_ascii_case(t)))
        .collect();
    if !missing.is_empty() {
        return Err(Error::config(format!(
            "--tables: no such table(s) in lake namespace {}: {} (it has: {})",
            lake.namespace(),
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            all.join(", ")
        )));
    }
    let selected: Vec<String> = all
        .iter()
        .filter(|t| wf.tables.selects(t))
        .filter(|t| only.is_empty() || only.iter().any(|o| o.eq_ignore_ascii_case(t)))
        .cloned()
        .collect();
    if selected.is_empty() {
        return Err(Error::config(format!(
            "--from load: lake namespace {} holds no table that {} selects (it has: {}); \
             run the workflow without --from first",
            lake.namespace(),
            wf.path.display(),
            if all.is_empty() {
                "none".to_string()
            } else {
                all.join(", ")
            }
        )));
    }
    Ok((selected, all))
}

fn after_map(wf: &Workflow, all: &[String]) -> BTreeMap<String, Vec<String>> {
    let canon = |t: &str| {
        all.iter()
            .find(|a| a.eq_ignore_ascii_case(t))
            .cloned()
            .unwrap_or_else(|| t.to_string())
    };
    wf.overrides
        .iter()
        .filter(|(_, o)| !o.after.is_empty())
        .map(|(t, o)| (canon(t), o.after.iter().map(|a| canon(a)).collect()))
        .collect()
}

async fn table_plans(
    wf: &Workflow,
    source: &Source,
    store: &Store,
    run: &str,
    tables: &[String],
    tuning: &Tuning,
) -> Result<HashMap<String, TablePlan>> {
    let mut out = HashMap::new();
    for t in tables {
        let ov = wf.override_for(t);
        let recorded = store
            .task(run, t, Stage::Extract)?
            .and_then(|r| r.outputs.schema);
        // A table the source cannot describe still gets a plan: its extract describes it again
        // and fails with the reason, while the other tables go on. The partition decision here
        // only sizes the estimate; the extract decides again (the same pure function) and
        // records it with the schema, failing that table alone on a bad `partition`.
        let info = match recorded {
            Some(i) => i,
            None => match source.describe(t, ov).await {
                Ok(mut i) => {
                    i.partition =
                        crate::lake::partition::decide(&i, &wf.lake, ov).unwrap_or_default();
                    i
                }
                Err(e) if e.kind != ErrorKind::Config => {
                    tracing::debug!(table = %t, "cannot describe yet: {e}");
                    TableInfo::new(t, Vec::new(), None, 0)
                }
                Err(e) => return Err(e),
            },
        };
        let chunk_rows = ov
            .and_then(|o| o.chunk_rows)
            .unwrap_or(tuning.default_chunk_rows);
        out.insert(
            t.clone(),
            TablePlan {
                connections: extract_connections(wf, &info, chunk_rows),
                info,
                chunk_rows,
                ov: ov.cloned(),
            },
        );
    }
    Ok(out)
}

async fn cmd_run(
    cli: &Cli,
    name: &str,
    only: &[String],
    start: Start,
    memory: Option<&str>,
    force_new: bool,
    shutdown: &Shutdown,
) -> Result<u8> {
    let wf = load_workflow(cli, name)?;
    let lake_only = start == Start::LakeOnly;
    let from_lake = start == Start::FromLake;
    if from_lake && wf.target.is_none() {
        return Err(Error::config(format!(
            "--from load: {} has no [target] to load",
            wf.path.display()
        )));
    }
    let budget = budget(memory, &wf)?;
    let with_load = wf.target.is_some() && !lake_only;
    let _lock = WorkflowLock::acquire(&cli.state, &wf.name)?;
    let store = Arc::new(Store::open(&cli.state, &wf.name)?);
    // Connecting may hang on an unreachable server; nothing is recorded yet, so a stop may
    // simply drop it.
    let comps = tokio::select! {
        c = open_components(cli, &wf, start) => c?,
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
    let (run, plan, tuning) = match resumed {
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
            let plan = dag::build(&run.tables, &all, &after_map(&wf, &all), with_load)?;
            (run, plan, tuning(&wf))
        }
        None => {
            let (selected, all) = if from_lake {
                lake_tables(&comps.lake, &wf, only).await?
            } else {
                select_tables(&comps.source, &wf, only).await?
            };
            if with_load && let Some(t) = &comps.target {
                t.check_tables(&selected)?;
            }
            let plan = dag::build(&selected, &all, &after_map(&wf, &all), with_load)?;
            let run = RunRecord {
                id: Store::new_run_id(),
                workflow: wf.name.clone(),
                started_at: now(),
                ended_at: None,
                status: RunStatus::Running,
                config_hash: wf.raw_hash.clone(),
                lake_only: !with_load,
                memory_budget: budget,
                tables: plan.tables.clone(),
                sessions: 1,
                peak_rss: None,
                peak_reserved: None,
                from_lake,
            };
            // A run from the lake takes its extract and write_iceberg from each table's
            // published snapshot, read before anything is recorded so a table that cannot be
            // loaded that way stops the run before it starts.
            let mut taken = HashMap::new();
            if from_lake {
                for t in &plan.tables {
                    let lx = comps.lake.published_extract(t).await?;
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
            store.put_run(&run)?;
            for t in &plan.tasks {
                let mut rec = TaskRecord::new(&run.id, &t.table, t.stage);
                if let Some(lx) = taken.get(&t.table)
                    && matches!(t.stage, Stage::Extract | Stage::WriteIceberg)
                {
                    rec.status = TaskStatus::Succeeded;
                    rec.started_at = Some(now());
                    rec.ended_at = rec.started_at.clone();
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
            progress.line(&format!(
                "run {} of {}: {} table(s), memory budget {}",
                run.id,
                wf.name,
                plan.tables.len(),
                bytesize::ByteSize(budget)
            ));
            (run, plan, tuning(&wf))
        }
    };
    execute(
        &wf, store, comps, run, plan, tuning, budget, progress, None, shutdown,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    wf: &Workflow,
    store: Arc<Store>,
    comps: Components,
    mut run: RunRecord,
    plan: dag::Plan,
    tuning: Tuning,
    budget: u64,
    progress: Progress,
    only_table: Option<&str>,
    shutdown: &Shutdown,
) -> Result<u8> {
    let tasks: Vec<&dag::PlannedTask> = plan
        .tasks
        .iter()
        .filter(|t| only_table.is_none_or(|o| o == t.table))
        .collect();
    let tables: Vec<String> = plan
        .tables
        .iter()
        .filter(|t| only_table.is_none_or(|o| o == t.as_str()))
        .cloned()
        .collect();
    let plans = table_plans(wf, &comps.source, &store, &run.id, &tables, &tuning).await?;
    let index_of: HashMap<(String, Stage), usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| ((t.table.clone(), t.stage), i))
        .collect();
    let mut specs = Vec::new();
    for t in &tasks {
        let rec = store.task(&run.id, &t.table, t.stage)?;
        let done = rec.is_some_and(|r| r.status == TaskStatus::Succeeded);
        let tp = &plans[&t.table];
        let (mem, slots) = match t.stage {
            Stage::Extract => extract_estimate(&tuning, &tp.info, tp.connections, budget),
            st => (tuning.estimate(st, &tp.info), 1),
        };
        specs.push(TaskSpec {
            name: format!("{}.{}", t.table, t.stage),
            deps: t
                .deps
                .iter()
                .filter_map(|&d| {
                    let dt = &plan.tasks[d];
                    index_of.get(&(dt.table.clone(), dt.stage)).copied()
                })
                .collect(),
            mem,
            slots,
            class: match t.stage {
                Stage::Extract => Class::Source,
                Stage::Load => Class::Load,
                _ => Class::Other,
            },
            done,
        });
    }
    let nodes = tasks.iter().map(|t| (t.table.clone(), t.stage)).collect();
    let ctx = Arc::new(Ctx {
        store: Arc::clone(&store),
        run_id: run.id.clone(),
        source: comps.source,
        lake: comps.lake,
        target: comps.target,
        tables: plans,
        tuning,
        progress: progress.clone(),
        verify: wf.verify,
        workflow: wf.name.clone(),
        from_lake: run.from_lake,
        schema_changes: wf.schema_changes,
        lake_cfg: wf.lake.clone(),
    });
    let runner = Arc::new(TaskRunner { ctx, nodes });
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
    if let Some(stop) = &report.stopped {
        run.peak_rss = crate::sysmem::peak_rss();
        run.peak_reserved = Some(report.peak_reserved);
        store.put_run(&run)?;
        print_run(&run, &store.tasks(&run.id)?, false);
        let resume = match only_table {
            Some(t) => format!("dag retry {t} --workflow {}", wf.name),
            None => format!("dag run {}", wf.name),
        };
        eprintln!(
            "stopped by {}: {} task(s) interrupted, {} not started; `{resume}` resumes",
            stop.reason, stop.interrupted, stop.not_started
        );
        return Ok(stop_code(&stop.reason));
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
    run.peak_rss = crate::sysmem::peak_rss();
    run.peak_reserved = Some(report.peak_reserved);
    store.put_run(&run)?;
    match prune_history(&store, wf.history_retention_secs) {
        Ok(0) => {}
        Ok(n) => tracing::info!("removed {n} run(s) older than history_retention from the state"),
        Err(e) => tracing::warn!("could not prune old runs from the state: {e}"),
    }
    print_run(&run, &all, false);
    Ok(if ok { EXIT_OK } else { EXIT_FAILED })
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
            .as_deref()
            .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
            .is_some_and(|e| (now - e.to_utc()).num_seconds() > retention_secs as i64);
        if old {
            store.delete_run(&r.id)?;
            n += 1;
        }
    }
    Ok(n)
}

async fn cmd_retry(
    cli: &Cli,
    spec: &str,
    workflow: Option<&str>,
    memory: Option<&str>,
    shutdown: &Shutdown,
) -> Result<u8> {
    let (table, stage) = match spec.split_once('.') {
        Some((t, s)) => (
            t.to_string(),
            Some(Stage::parse(s).ok_or_else(|| {
                Error::config(format!(
                    "`{s}` is not a task (use extract, write_iceberg, load or verify)"
                ))
            })?),
        ),
        None => (spec.to_string(), None),
    };
    let wf_name = match workflow {
        Some(w) => w.to_string(),
        None => find_workflow_of(&cli.state, &table)?,
    };
    let wf = load_workflow(cli, &wf_name)?;
    let budget = budget(memory, &wf)?;
    let _lock = WorkflowLock::acquire(&cli.state, &wf.name)?;
    let store = Arc::new(Store::open(&cli.state, &wf.name)?);
    let runs = store.runs()?;
    let Some(mut run) = runs
        .into_iter()
        .rev()
        .find(|r| r.tables.iter().any(|t| t.eq_ignore_ascii_case(&table)))
    else {
        return Err(Error::config(format!(
            "no run of workflow `{}` has a table `{table}`",
            wf.name
        )));
    };
    let table = run
        .tables
        .iter()
        .find(|t| t.eq_ignore_ascii_case(&table))
        .cloned()
        .unwrap_or(table);
    if run.config_hash != wf.raw_hash {
        eprintln!(
            "warning: {} changed since run {} started; the retry uses the current file",
            wf.path.display(),
            run.id
        );
    }
    store.recover(&run.id)?;
    let recs: Vec<TaskRecord> = store
        .tasks(&run.id)?
        .into_iter()
        .filter(|t| t.table == table)
        .collect();
    let stages_in_run = dag::stages(!run.lake_only);
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
                println!("{table}: every task of run {} already succeeded", run.id);
                return Ok(EXIT_OK);
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
    let progress = Progress::auto();
    progress.line(&format!(
        "retrying {table} of run {} from {from} on",
        run.id
    ));
    let start = match (run.lake_only, run.from_lake) {
        (true, _) => Start::LakeOnly,
        (false, true) => Start::FromLake,
        (false, false) => Start::Full,
    };
    let comps = open_components(cli, &wf, start).await?;
    let all = if run.from_lake {
        run.tables.clone()
    } else {
        comps
            .source
            .tables()
            .await
            .unwrap_or_else(|_| run.tables.clone())
    };
    let plan = dag::build(&run.tables, &all, &after_map(&wf, &all), !run.lake_only)?;
    let t = tuning(&wf);
    execute(
        &wf,
        store,
        comps,
        run,
        plan,
        t,
        budget,
        progress,
        Some(&table),
        shutdown,
    )
    .await
}

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

fn find_workflow_of(state: &Path, table: &str) -> Result<String> {
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
fn next_scheduled(cli: &Cli, wf: &str) -> Option<String> {
    let wf = load_workflow(cli, wf).ok()?;
    let timing = crate::schedule::Timing::of(&wf).ok()??;
    let next = timing.next_after(chrono::Utc::now())?;
    Some(format!(
        "{} ({})",
        timing.local(next),
        crate::schedule::utc(next)
    ))
}

fn print_watermarks(wms: &[crate::store::Watermark]) {
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

fn mib(b: u64) -> String {
    bytesize::ByteSize(b).display().iec().to_string()
}

fn print_run(run: &RunRecord, tasks: &[TaskRecord], active: bool) {
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
            .map(|p| format!("  peak RSS {}", mib(p)))
            .unwrap_or_default(),
    );
    println!(
        "{:<18} {:<14} {:<10} {:>10} {:>8} {:>5} {:>10}  DETAIL",
        "TABLE", "TASK", "STATUS", "ROWS", "TIME", "TRIES", "MEMORY"
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
                            "snapshot {s}{}",
                            if t.outputs.commit_found {
                                " (found after a crash)"
                            } else {
                                ""
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
            "{:<18} {:<14} {:<10} {:>10} {:>8} {:>5} {:>10}  {}",
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
            detail
        );
    }
}

/// What verify compared: each side's rows (and fingerprint in full mode).
fn verify_detail(o: &crate::store::Outputs) -> String {
    let full = o.verify_mode.as_deref() != Some("count");
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

fn cmd_status(cli: &Cli, workflow: Option<&str>, run: Option<&str>, json: bool) -> Result<u8> {
    let names = match workflow {
        Some(w) => vec![w.to_string()],
        None => workflows_with_state(&cli.state),
    };
    let mut out = Vec::new();
    for w in &names {
        match read_state(&cli.state, w, run)? {
            Some(view) => out.push(view),
            None if workflow.is_some() => {
                return Err(Error::config(match run {
                    Some(id) => format!("workflow `{w}` has no run `{id}`"),
                    None => format!(
                        "workflow `{w}` has not run yet (state: {})",
                        cli.state.display()
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
                    "next_scheduled": next_scheduled(cli, &v.run.workflow),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).map_err(Error::from)?);
    } else if out.is_empty() {
        println!("no runs yet (state: {})", cli.state.display());
    } else {
        for (i, v) in out.iter().enumerate() {
            if i > 0 {
                println!();
            }
            print_run(&v.run, &v.tasks, v.active);
            print_watermarks(&v.watermarks);
            if let Some(next) = next_scheduled(cli, &v.run.workflow) {
                println!("next scheduled run: {next}");
            }
        }
    }
    let failed = out.iter().any(|v| v.run.status == RunStatus::Failed);
    Ok(if failed { EXIT_FAILED } else { EXIT_OK })
}

fn cmd_history(cli: &Cli, workflow: Option<&str>, json: bool) -> Result<u8> {
    let names = match workflow {
        Some(w) => vec![w.to_string()],
        None => workflows_with_state(&cli.state),
    };
    let mut all = Vec::new();
    for w in names {
        if WorkflowLock::held_by_other(&cli.state, &w).is_some() {
            if let Some(m) = Store::read_mirror(&cli.state, &w) {
                all.push((m.run, m.tasks));
            }
            continue;
        }
        let store = Store::open(&cli.state, &w)?;
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
        return Ok(EXIT_OK);
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
            r.ended_at.clone().unwrap_or_default(),
            r.tables.len(),
            t.iter().filter(|t| t.status == TaskStatus::Failed).count(),
            r.sessions
        );
    }
    Ok(EXIT_OK)
}

async fn cmd_plan(
    cli: &Cli,
    name: &str,
    format: PlanFormat,
    only: &[String],
    lake_only: bool,
    memory: Option<&str>,
) -> Result<u8> {
    let wf = load_workflow(cli, name)?;
    let budget = budget(memory, &wf)?;
    let source = Source::build(&wf.source)?;
    source.prepare().await?;
    let (selected, all) = select_tables(&source, &wf, only).await?;
    let with_load = wf.target.is_some() && !lake_only;
    let after = after_map(&wf, &all);
    let plan = dag::build(&selected, &all, &after, with_load)?;
    if format == PlanFormat::Dot {
        print!("{}", plan.dot());
        return Ok(EXIT_OK);
    }
    let t = tuning(&wf);
    println!(
        "workflow {} ({}): {} table(s), memory budget {}",
        wf.name,
        source.describe_location(),
        plan.tables.len(),
        mib(budget)
    );
    println!(
        "{:<18} {:>10} {:>5} {:>7}  {:<14} {:>10}  AFTER",
        "TABLE", "EST ROWS", "COLS", "CHUNKS", "TASK", "MEMORY"
    );
    for table in &plan.tables {
        let ov = wf.override_for(table);
        let mut info = match source.describe(table, ov).await {
            Ok(info) => info,
            Err(e) if e.kind != ErrorKind::Config => {
                println!("{table:<18} cannot be described: {e}");
                continue;
            }
            Err(e) => return Err(e),
        };
        let partition = match crate::lake::partition::decide(&info, &wf.lake, ov) {
            Ok(p) => {
                info.partition = p;
                match &info.partition {
                    Some(c) => format!("partitioned by day({c})"),
                    None => "unpartitioned".to_string(),
                }
            }
            Err(e) => format!("partition: {e}"),
        };
        let chunk_rows = ov
            .and_then(|o| o.chunk_rows)
            .unwrap_or(t.default_chunk_rows);
        let chunks = info.estimated_chunks(chunk_rows);
        let (extract_mem, conns) = extract_estimate(
            &t,
            &info,
            extract_connections(&wf, &info, chunk_rows),
            budget,
        );
        for (i, st) in dag::stages(with_load).into_iter().enumerate() {
            let mem = match st {
                Stage::Extract => extract_mem,
                st => t.estimate(st, &info),
            };
            let note = if mem > budget {
                " (over budget: runs alone, smaller batches)"
            } else {
                ""
            };
            if i == 0 {
                println!(
                    "{:<18} {:>10} {:>5} {:>7}  {:<14} {:>10}  {}{note}",
                    table,
                    info.rows,
                    info.columns.len(),
                    chunks,
                    st.name(),
                    mib(mem),
                    after.get(table).map(|a| a.join(",")).unwrap_or_default()
                );
                println!(
                    "{:<18} split: {}; {} connection(s); {partition}",
                    "",
                    info.chunking(),
                    conns
                );
            } else {
                println!(
                    "{:<18} {:>10} {:>5} {:>7}  {:<14} {:>10}{note}",
                    "",
                    "",
                    "",
                    "",
                    st.name(),
                    mib(mem)
                );
            }
        }
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, status: RunStatus, ended: Option<String>) -> RunRecord {
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
            peak_reserved: None,
            from_lake: false,
        }
    }

    #[test]
    fn history_retention_drops_old_finished_runs_and_keeps_the_latest() {
        let store = Store::temporary("w").unwrap();
        let long_ago = (chrono::Utc::now() - chrono::Duration::days(100)).to_rfc3339();
        store
            .put_run(&run("1_old", RunStatus::Succeeded, Some(long_ago.clone())))
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
        assert_eq!(reopen_failed(&store, &wf).unwrap(), None);
        assert_eq!(store.run("1").unwrap().unwrap().status, RunStatus::Failed);

        wf.raw_hash = "h".into();
        assert_eq!(reopen_failed(&store, &wf).unwrap().as_deref(), Some("1"));
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
