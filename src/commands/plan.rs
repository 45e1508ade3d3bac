//! `dag plan`: the tables, tasks, estimated rows, columns, chunks and reservations a run of the
//! workflow would have, from the same [`RunPlan`] a run builds; `--format dot` draws the task
//! graph.

use crate::cli::PlanFormat;
use crate::error::Result;
use crate::exit;
use crate::model::Stage;
use crate::plan::{self, RunPlan, select};
use crate::sources::Source;

use super::Context;
use super::report::mib;

pub async fn plan(
    ctx: &Context,
    name: &str,
    format: PlanFormat,
    only: &[String],
    lake_only: bool,
    memory: Option<&str>,
) -> Result<u8> {
    let setup = ctx.setup(name, memory)?;
    let (wf, budget) = (&setup.wf, setup.budget);
    let source = Source::build(&wf.source)?;
    source.prepare().await?;
    let (selected, all) = select::select_tables(&source, wf, only).await?;
    let with_load = wf.target.is_some() && !lake_only;
    let after = select::after_map(wf, &all);
    let graph = plan::graph::build(&selected, &all, &after, with_load)?;
    if format == PlanFormat::Dot {
        print!("{}", graph.dot());
        return Ok(exit::OK);
    }
    println!(
        "workflow {} ({}): {} table(s), memory budget {}",
        wf.name,
        source.describe_location(),
        graph.tables.len(),
        mib(budget)
    );
    println!(
        "{:<18} {:>10} {:>5} {:>7}  {:<14} {:>10}  AFTER",
        "TABLE", "EST ROWS", "COLS", "CHUNKS", "TASK", "MEMORY"
    );
    let plan = RunPlan::build(wf, &source, graph, None, budget, |_| Ok(None)).await?;
    for table in &plan.graph.tables {
        let note = &plan.notes[table];
        if let Some(e) = &note.undescribed {
            println!("{table:<18} cannot be described: {e}");
            continue;
        }
        let tp = &plan.tables[table];
        let info = &tp.info;
        let partition = match (&note.partition, &info.partition) {
            (Some(e), _) => format!("partition: {e}"),
            (None, Some(c)) if crate::lake::partition::chosen_by_rule(tp.ov.as_ref()) => format!(
                "partitioned by day({c}) if it holds >= {} rows a day",
                wf.lake.partition_min_rows_per_day
            ),
            (None, Some(c)) => format!("partitioned by day({c})"),
            (None, None) => "unpartitioned".to_string(),
        };
        let tasks = plan.tasks.iter().filter(|t| &t.table == table);
        for (i, t) in tasks.enumerate() {
            let note = if t.mem > budget {
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
                    info.estimated_chunks(tp.chunk_rows),
                    t.stage.name(),
                    mib(t.mem),
                    after.get(table).map(|a| a.join(",")).unwrap_or_default()
                );
                let conns = plan
                    .tasks
                    .iter()
                    .find(|x| &x.table == table && x.stage == Stage::Extract)
                    .map_or(1, |x| x.slots);
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
                    t.stage.name(),
                    mib(t.mem)
                );
            }
        }
    }
    Ok(exit::OK)
}
