//! The declared table order (`after = [...]`) as a graph, and its cycles.
//!
//! Two places look for cycles: validation reports each one at the table that starts it before
//! anything runs, and the planner refuses an order it cannot follow. Both ask this one function,
//! so a cycle is found, started and named the same way wherever it is reported.

use std::collections::{BTreeMap, HashMap, VecDeque};

use petgraph::Direction::Incoming;
use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// Every cycle among `after` declarations, where `after[t]` lists the tables `t` waits for.
///
/// Table names match case-insensitively, as everywhere in a workflow file, and a table is named
/// as it was first written (the map's keys in order, each followed by its list). A cycle lists its
/// tables in waiting order, without repeating the first: `[A, C, B]` is A waiting for C, C for B
/// and B for A. Of the tables waiting for each other, the one `rank` puts first starts the cycle,
/// which then follows a shortest way back to it; cycles come in the order of their first table's
/// rank. A table that waits for itself is a cycle of one (`[A]`); inside a larger group such a
/// self-wait is left aside, so the cycle shown is the one through the other tables.
pub fn cycles<K: Ord>(
    after: &BTreeMap<String, Vec<String>>,
    rank: impl Fn(&str) -> K,
) -> Vec<Vec<String>> {
    // An edge runs from the awaited table to the waiting one.
    let mut g: DiGraph<String, ()> = DiGraph::new();
    let mut idx = BTreeMap::new();
    let mut node = |g: &mut DiGraph<String, ()>, name: &str| {
        *idx.entry(name.to_lowercase())
            .or_insert_with(|| g.add_node(name.to_string()))
    };
    for (table, deps) in after {
        let b = node(&mut g, table);
        for dep in deps {
            let a = node(&mut g, dep);
            g.add_edge(a, b, ());
        }
    }
    let mut found: Vec<(K, Vec<String>)> = Vec::new();
    for scc in kosaraju_scc(&g) {
        if scc.len() < 2 && !g.contains_edge(scc[0], scc[0]) {
            continue;
        }
        let start = *scc
            .iter()
            .min_by_key(|n| rank(&g[**n]))
            .expect("non-empty component");
        let names: Vec<String> = shortest_cycle(&g, start, &scc)
            .into_iter()
            .map(str::to_string)
            .collect();
        found.push((rank(&names[0]), names));
    }
    // Stable: cycles whose first tables rank alike keep the order they were found in.
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.into_iter().map(|(_, c)| c).collect()
}

/// A cycle as messages show it: `A -> C -> B -> A`.
pub fn describe(cycle: &[String]) -> String {
    let mut names: Vec<&str> = cycle.iter().map(String::as_str).collect();
    names.extend(cycle.first().map(String::as_str));
    names.join(" -> ")
}

/// The tables on a shortest cycle from `start` back to itself, following "waits for" edges
/// inside the strongly connected component `scc`, in waiting order (`start` first, not repeated).
fn shortest_cycle<'g>(
    g: &'g DiGraph<String, ()>,
    start: NodeIndex,
    scc: &[NodeIndex],
) -> Vec<&'g str> {
    if scc.len() == 1 {
        return vec![g[start].as_str()];
    }
    let mut prev = HashMap::new();
    let mut queue = VecDeque::from([start]);
    'search: while let Some(n) = queue.pop_front() {
        for m in g.neighbors_directed(n, Incoming) {
            if m == n || !scc.contains(&m) || prev.contains_key(&m) {
                continue;
            }
            prev.insert(m, n);
            if m == start {
                break 'search;
            }
            queue.push_back(m);
        }
    }
    // Walk back from start's predecessor to start, then reverse into waiting order.
    let mut path = vec![start];
    let mut cur = start;
    while let Some(&p) = prev.get(&cur) {
        if p == start {
            break;
        }
        path.push(p);
        cur = p;
    }
    path.push(start);
    path.reverse();
    path.pop();
    path.into_iter().map(|n| g[n].as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(t, deps)| (t.to_string(), deps.iter().map(|d| d.to_string()).collect()))
            .collect()
    }

    fn by_name(t: &str) -> String {
        t.to_string()
    }

    #[test]
    fn a_cycle_is_in_waiting_order_from_the_first_ranked_table() {
        let a = after(&[("A", &["C"]), ("B", &["A"]), ("C", &["B"])]);
        let found = cycles(&a, by_name);
        assert_eq!(found, vec![vec!["A", "C", "B"]]);
        assert_eq!(describe(&found[0]), "A -> C -> B -> A");
        // Another rank starts elsewhere on the same cycle.
        let rank = |t: &str| ["B", "A", "C"].iter().position(|x| *x == t);
        assert_eq!(cycles(&a, rank), vec![vec!["B", "A", "C"]]);
    }

    #[test]
    fn no_cycle_no_report_and_names_match_in_any_case() {
        let a = after(&[("B", &["A"]), ("C", &["A", "B"])]);
        assert!(cycles(&a, by_name).is_empty());
        let a = after(&[("Orders", &["customers"]), ("CUSTOMERS", &["orders"])]);
        // Named as first written: the keys in order, then each one's list.
        assert_eq!(cycles(&a, by_name), vec![vec!["CUSTOMERS", "orders"]]);
    }

    #[test]
    fn separate_cycles_come_in_rank_order_and_take_a_shortest_way() {
        let a = after(&[
            ("X", &["Y"]),
            ("Y", &["X"]),
            ("A", &["B", "D"]),
            ("B", &["C"]),
            ("C", &["A"]),
            ("D", &["A"]),
        ]);
        let found: Vec<String> = cycles(&a, by_name).iter().map(|c| describe(c)).collect();
        assert_eq!(found, vec!["A -> D -> A", "X -> Y -> X"]);
    }

    #[test]
    fn a_self_wait_is_a_cycle_of_one_unless_a_longer_one_goes_through_it() {
        let a = after(&[("A", &["A"])]);
        assert_eq!(cycles(&a, by_name), vec![vec!["A"]]);
        let a = after(&[("A", &["A", "B"]), ("B", &["A"])]);
        assert_eq!(cycles(&a, by_name), vec![vec!["A", "B"]]);
    }
}
