//! Dependency cycles among the resources of a file: the references written inside
//! declarations as a graph, its strongly connected components that hold a cycle, and the
//! shortest way round each, reported on every reference along it.

use std::collections::{BTreeSet, VecDeque};

use super::{Diagnostic, DiagnosticCode};
use crate::index::DeclId;
use crate::{Analysis, TextRange};

impl Analysis {
    /// Cycles among the references written inside declarations, reported on each
    /// reference that closes one.
    pub(super) fn check_cycles(&self, found: &mut Vec<Diagnostic>) {
        let count = self.index.resources.len();
        // For each resource, the resources it references, with the reference's range.
        let mut edges: Vec<Vec<(DeclId, TextRange)>> = vec![Vec::new(); count];
        for reference in &self.index.references {
            if let (Some(from), Some(to)) = (reference.within, self.index.resolve(reference))
                && !edges[from].iter().any(|(t, _)| *t == to)
            {
                edges[from].push((to, reference.resource_range));
            }
        }
        for component in cycles_of(&edges) {
            let first = component[0];
            let members: BTreeSet<DeclId> = component.iter().copied().collect();
            let Some(cycle) = shortest_cycle(first, &edges, &members) else {
                continue;
            };
            let names: Vec<&str> = cycle
                .iter()
                .map(|(id, _)| self.index.resources[*id].name.as_str())
                .chain(std::iter::once(self.index.resources[first].name.as_str()))
                .collect();
            let shown = names.join(" → ");
            for (_, range) in cycle {
                found.push(Diagnostic {
                    range,
                    code: DiagnosticCode::DependencyCycle,
                    message: format!("dependency cycle: {shown}"),
                    fix: None,
                });
            }
        }
    }
}

/// The strongly connected components that hold a cycle (more than one resource, or one
/// naming itself), by Kosaraju's algorithm, iterative so that long chains cannot overflow
/// the stack.
fn cycles_of(edges: &[Vec<(DeclId, TextRange)>]) -> Vec<Vec<DeclId>> {
    let count = edges.len();
    let mut order = Vec::with_capacity(count);
    let mut visited = vec![false; count];
    for start in 0..count {
        if visited[start] {
            continue;
        }
        visited[start] = true;
        let mut stack = vec![(start, 0)];
        while let Some((node, next)) = stack.pop() {
            if let Some(&(to, _)) = edges[node].get(next) {
                stack.push((node, next + 1));
                if !visited[to] {
                    visited[to] = true;
                    stack.push((to, 0));
                }
            } else {
                order.push(node);
            }
        }
    }
    let mut reverse = vec![Vec::new(); count];
    for (from, targets) in edges.iter().enumerate() {
        for (to, _) in targets {
            reverse[*to].push(from);
        }
    }
    let mut assigned = vec![false; count];
    let mut components = Vec::new();
    // Reused: most components are one resource outside any cycle.
    let (mut component, mut stack) = (Vec::new(), Vec::new());
    for &start in order.iter().rev() {
        if assigned[start] {
            continue;
        }
        assigned[start] = true;
        component.clear();
        component.push(start);
        stack.push(start);
        while let Some(node) = stack.pop() {
            for &from in &reverse[node] {
                if !assigned[from] {
                    assigned[from] = true;
                    component.push(from);
                    stack.push(from);
                }
            }
        }
        let cyclic = component.len() > 1 || edges[start].iter().any(|(to, _)| *to == start);
        if cyclic {
            component.sort_unstable();
            components.push(component.clone());
        }
    }
    components
}

/// The shortest way from `start` back to itself within `members`: each step as the
/// resource it leaves from and the reference it follows.
fn shortest_cycle(
    start: DeclId,
    edges: &[Vec<(DeclId, TextRange)>],
    members: &BTreeSet<DeclId>,
) -> Option<Vec<(DeclId, TextRange)>> {
    let mut came_from: std::collections::BTreeMap<DeclId, (DeclId, TextRange)> = Default::default();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &(to, range) in &edges[node] {
            if !members.contains(&to) {
                continue;
            }
            if to == start {
                let mut steps = vec![(node, range)];
                let mut at = node;
                while at != start {
                    let (previous, range) = came_from[&at];
                    steps.push((previous, range));
                    at = previous;
                }
                steps.reverse();
                return Some(steps);
            }
            if to != start && !came_from.contains_key(&to) {
                came_from.insert(to, (node, range));
                queue.push_back(to);
            }
        }
    }
    None
}
