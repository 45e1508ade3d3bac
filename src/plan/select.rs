//! Which tables a run moves: the workflow's include/exclude and `--tables`, checked against the
//! source (or, for a run from the lake, the lake), and the declared order between them.

use std::collections::BTreeMap;

use crate::config::Workflow;
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::sources::Source;

/// Tables of the source that the workflow (and `--tables`) selects.
pub async fn select_tables(
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
pub async fn lake_tables(
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

/// The declared table order (`[table.X] after = [...]`) with names as the source spells them.
pub fn after_map(wf: &Workflow, all: &[String]) -> BTreeMap<String, Vec<String>> {
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
