//! Planning a run, once: which tables, the task DAG, what each table needs (its description,
//! chunk size, connections) and what each task may reserve.
//!
//! `dag run`, `dag retry` and `dag plan` all build the same [`RunPlan`], so the figures `dag plan`
//! prints are the reservations a run asks the executor for.

pub mod estimate;
pub mod graph;
pub mod select;

use std::collections::HashMap;

use crate::config::Workflow;
use crate::error::{ErrorKind, Result};
use crate::model::{Stage, TableInfo};
use crate::sources::Source;
use crate::task::{TablePlan, Tuning};

pub use graph::{PlannedTask, TaskGraph, stages};

/// One task of a session with what the executor needs to admit it.
#[derive(Debug, Clone)]
pub struct TaskPlan {
    pub table: String,
    pub stage: Stage,
    /// Indexes into [`RunPlan::tasks`] of the tasks it waits for.
    pub deps: Vec<usize>,
    /// Bytes reserved from the budget while it runs.
    pub mem: u64,
    /// Source connections (an extract) it reads with.
    pub slots: usize,
}

/// What a table's planning could not settle, for `dag plan` to show (a run goes on: the
/// table's extract describes it again and fails with the reason).
#[derive(Debug, Clone, Default)]
pub struct TableNote {
    /// Why the source could not describe the table.
    pub undescribed: Option<String>,
    /// Why the table's `partition` setting cannot be followed.
    pub partition: Option<String>,
}

/// A session's plan: the run's task graph, and for the tables this session works on their
/// plans and their tasks' reservations.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// Every table and task of the run.
    pub graph: TaskGraph,
    /// The tables this session works on (one for `dag retry`), by name.
    pub tables: HashMap<String, TablePlan>,
    /// Their tasks in execution order.
    pub tasks: Vec<TaskPlan>,
    pub notes: HashMap<String, TableNote>,
    pub tuning: Tuning,
    pub budget: u64,
}

impl RunPlan {
    /// Plans the tables of `graph` (only `only_table` when given). A table's description is
    /// `recorded(table)` when an earlier session of the run recorded its extract's schema, else
    /// asked of the source.
    pub async fn build(
        wf: &Workflow,
        source: &Source,
        graph: TaskGraph,
        only_table: Option<&str>,
        budget: u64,
        recorded: impl Fn(&str) -> Result<Option<TableInfo>>,
    ) -> Result<RunPlan> {
        let tuning = estimate::tuning(wf);
        let mut tables = HashMap::new();
        let mut notes = HashMap::new();
        for t in graph
            .tables
            .iter()
            .filter(|t| only_table.is_none_or(|o| o == t.as_str()))
        {
            let ov = wf.override_for(t);
            let mut note = TableNote::default();
            // A table the source cannot describe still gets a plan: its extract describes it
            // again and fails with the reason, while the other tables go on. The partition
            // decision here only sizes the estimate; the extract decides again (the same pure
            // function) and records it with the schema, failing that table alone on a bad
            // `partition`.
            let info = match recorded(t)? {
                Some(i) => i,
                None => match source.describe(t, ov).await {
                    Ok(mut i) => {
                        match crate::lake::partition::decide(&i, &wf.lake, ov) {
                            Ok(p) => i.partition = p,
                            Err(e) => note.partition = Some(e.to_string()),
                        }
                        i
                    }
                    Err(e) if e.kind != ErrorKind::Config => {
                        tracing::debug!(table = %t, "cannot describe yet: {e}");
                        note.undescribed = Some(e.to_string());
                        TableInfo::new(t, Vec::new(), None, 0)
                    }
                    Err(e) => return Err(e),
                },
            };
            let chunk_rows = ov
                .and_then(|o| o.chunk_rows)
                .unwrap_or(tuning.default_chunk_rows);
            tables.insert(
                t.clone(),
                TablePlan {
                    connections: estimate::extract_connections(wf, &info, chunk_rows),
                    info,
                    chunk_rows,
                    ov: ov.cloned(),
                },
            );
            notes.insert(t.clone(), note);
        }
        let chosen: Vec<&PlannedTask> = graph
            .tasks
            .iter()
            .filter(|t| only_table.is_none_or(|o| o == t.table))
            .collect();
        let index_of: HashMap<(&str, Stage), usize> = chosen
            .iter()
            .enumerate()
            .map(|(i, t)| ((t.table.as_str(), t.stage), i))
            .collect();
        let tasks = chosen
            .iter()
            .map(|t| {
                let tp = &tables[&t.table];
                let (mem, slots) = match t.stage {
                    Stage::Extract => {
                        estimate::extract_estimate(&tuning, &tp.info, tp.connections, budget)
                    }
                    st => (estimate::task_bytes(&tuning, st, &tp.info), 1),
                };
                TaskPlan {
                    table: t.table.clone(),
                    stage: t.stage,
                    deps: t
                        .deps
                        .iter()
                        .filter_map(|&d| {
                            let dt = &graph.tasks[d];
                            index_of.get(&(dt.table.as_str(), dt.stage)).copied()
                        })
                        .collect(),
                    mem,
                    slots,
                }
            })
            .collect();
        Ok(RunPlan {
            graph,
            tables,
            tasks,
            notes,
            tuning,
            budget,
        })
    }
}
