//! Planning: tables become task chains, declared orders link them, and an order that cannot be
//! followed is refused with its cycles (found by `config::order`, as validation finds them).
//!
//! Each table becomes `extract -> write_iceberg -> load -> verify` (no load in lake-only mode or
//! without a target). `after = [...]` in a table's overrides makes its first task wait for the
//! other table's last. A cycle is reported with every table on it, in order.

use std::collections::{BTreeMap, HashMap};

use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::config::order;
use crate::error::{Error, Result};
use crate::model::Stage;

#[derive(Debug, Clone)]
pub struct TaskGraph {
    /// Tables in a dependency-respecting order.
    pub tables: Vec<String>,
    /// Tasks in execution order, with their dependencies as indexes into this list.
    pub tasks: Vec<PlannedTask>,
}

#[derive(Debug, Clone)]
pub struct PlannedTask {
    pub table: String,
    pub stage: Stage,
    pub deps: Vec<usize>,
}

pub fn stages(with_load: bool) -> Vec<Stage> {
    Stage::ALL
        .into_iter()
        .filter(|s| with_load || *s != Stage::Load)
        .collect()
}

/// Builds the plan for `selected` tables. `after[t]` lists tables `t` must wait for; names there
/// that are not selected are ignored (they are not part of this run), names that the source does
/// not have at all are errors.
pub fn build(
    selected: &[String],
    known: &[String],
    after: &BTreeMap<String, Vec<String>>,
    with_load: bool,
) -> Result<TaskGraph> {
    let mut g: DiGraph<String, ()> = DiGraph::new();
    let idx: HashMap<&str, NodeIndex> = selected
        .iter()
        .map(|t| (t.as_str(), g.add_node(t.clone())))
        .collect();
    let mut problems = Vec::new();
    for (t, deps) in after {
        for d in deps {
            if !known.iter().any(|k| k == d) {
                problems.push(format!(
                    "table.{t}.after: table `{d}` does not exist in the source"
                ));
                continue;
            }
            if let (Some(&a), Some(&b)) = (idx.get(d.as_str()), idx.get(t.as_str())) {
                g.add_edge(a, b, ());
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::config(problems.join("\n")));
    }
    let order = match toposort(&g, None) {
        Ok(o) => o,
        Err(_) => {
            // The cycles among the selected tables, named as validation names them.
            let selected_after: BTreeMap<String, Vec<String>> = after
                .iter()
                .filter(|(t, _)| idx.contains_key(t.as_str()))
                .map(|(t, deps)| {
                    let deps = deps.iter().filter(|d| idx.contains_key(d.as_str()));
                    (t.clone(), deps.cloned().collect())
                })
                .collect();
            let rank = |t: &str| selected.iter().position(|s| s == t);
            let cycles: Vec<String> = order::cycles(&selected_after, rank)
                .iter()
                .map(|c| order::describe(c))
                .collect();
            return Err(Error::config(format!(
                "the declared table order has a cycle: {}",
                cycles.join("; ")
            )));
        }
    };
    let tables: Vec<String> = order.iter().map(|n| g[*n].clone()).collect();
    let st = stages(with_load);
    let mut tasks = Vec::new();
    let mut last_of: HashMap<&str, usize> = HashMap::new();
    for t in &tables {
        for (i, s) in st.iter().enumerate() {
            let mut deps = Vec::new();
            if i == 0 {
                for d in g.neighbors_directed(idx[t.as_str()], petgraph::Direction::Incoming) {
                    deps.push(last_of[g[d].as_str()]);
                }
                deps.sort();
            } else {
                deps.push(tasks.len() - 1);
            }
            tasks.push(PlannedTask {
                table: t.clone(),
                stage: *s,
                deps,
            });
        }
        last_of.insert(t.as_str(), tasks.len() - 1);
    }
    Ok(TaskGraph { tables, tasks })
}

impl TaskGraph {
    /// Graphviz rendering of the task graph.
    pub fn dot(&self) -> String {
        let mut s = String::from("digraph dag {\n  rankdir=LR;\n  node [shape=box];\n");
        for (i, t) in self.tasks.iter().enumerate() {
            s.push_str(&format!("  n{i} [label=\"{}\\n{}\"];\n", t.table, t.stage));
        }
        for (i, t) in self.tasks.iter().enumerate() {
            for d in &t.deps {
                s.push_str(&format!("  n{d} -> n{i};\n"));
            }
        }
        s.push_str("}\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn chains_and_declared_order() {
        let sel = names(&["B", "A", "C"]);
        let after = BTreeMap::from([("B".to_string(), names(&["A"]))]);
        let p = build(&sel, &sel, &after, true).unwrap();
        assert_eq!(p.tasks.len(), 12);
        let pos = |t: &str| p.tables.iter().position(|x| x == t).unwrap();
        assert!(pos("A") < pos("B"));
        let b_extract = p
            .tasks
            .iter()
            .find(|t| t.table == "B" && t.stage == Stage::Extract)
            .unwrap();
        assert_eq!(b_extract.deps.len(), 1);
        let dep = &p.tasks[b_extract.deps[0]];
        assert_eq!((dep.table.as_str(), dep.stage), ("A", Stage::Verify));
        assert!(p.dot().contains("->"));
        let lake_only = build(&sel, &sel, &after, false).unwrap();
        assert!(lake_only.tasks.iter().all(|t| t.stage != Stage::Load));
        assert_eq!(lake_only.tasks.len(), 9);
    }

    #[test]
    fn a_cycle_is_named_and_unknown_tables_are_errors() {
        let sel = names(&["A", "B", "C"]);
        let after = BTreeMap::from([
            ("A".to_string(), names(&["C"])),
            ("B".to_string(), names(&["A"])),
            ("C".to_string(), names(&["B"])),
        ]);
        let err = build(&sel, &sel, &after, true).unwrap_err().to_string();
        assert!(err.contains("cycle"), "{err}");
        for t in ["A", "B", "C"] {
            assert!(err.contains(t), "{err}");
        }
        // In waiting order, from the first selected table: A waits for C, C for B, B for A.
        assert!(
            err.contains("the declared table order has a cycle: A -> C -> B -> A"),
            "{err}"
        );
        let after = BTreeMap::from([("A".to_string(), names(&["NOPE"]))]);
        let err = build(&sel, &sel, &after, true).unwrap_err().to_string();
        assert!(err.contains("NOPE"), "{err}");
    }
}
