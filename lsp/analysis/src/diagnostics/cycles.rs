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
        let references = self.index.references.iter().filter_map(|reference| {
            Some((
                reference.within?,
                self.index.resolve(reference)?,
                reference.resource_range,
            ))
        });
        let graph = Graph::of(self.index.resources.len(), references);
        for component in cycles_of(&graph) {
            let first = component[0];
            let members: BTreeSet<DeclId> = component.iter().copied().collect();
            let Some(cycle) = shortest_cycle(first, &graph, &members) else {
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

/// Which resources each resource references, each once with the range of its first
/// reference, in two flat arrays: files of 10,000 resources are searched for cycles after
/// many keystrokes, and a list per resource would be as many allocations each time.
struct Graph {
    /// Where each resource's edges start and end in `edges`.
    spans: Vec<(usize, usize)>,
    edges: Vec<(DeclId, TextRange)>,
}

impl Graph {
    /// The graph of `count` resources with the references `(from, to, range)`, in order.
    fn of(count: usize, references: impl Iterator<Item = (DeclId, DeclId, TextRange)>) -> Graph {
        let references: Vec<_> = references.collect();
        let mut spans = Vec::with_capacity(count);
        let mut counts = vec![0; count];
        for (from, ..) in &references {
            counts[*from] += 1;
        }
        let mut start = 0;
        for n in counts {
            spans.push((start, start));
            start += n;
        }
        let mut edges = vec![(0, TextRange::default()); references.len()];
        for (from, to, range) in references {
            let (begin, end) = spans[from];
            if !edges[begin..end].iter().any(|(t, _)| *t == to) {
                edges[end] = (to, range);
                spans[from].1 += 1;
            }
        }
        Graph { spans, edges }
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    /// The resources `from` references, with the range of the first reference to each.
    fn from(&self, from: DeclId) -> &[(DeclId, TextRange)] {
        let (begin, end) = self.spans[from];
        &self.edges[begin..end]
    }
}

/// The strongly connected components that hold a cycle (more than one resource, or one
/// naming itself), by Kosaraju's algorithm, iterative so that long chains cannot overflow
/// the stack.
fn cycles_of(graph: &Graph) -> Vec<Vec<DeclId>> {
    let count = graph.len();
    let mut order = Vec::with_capacity(count);
    let mut visited = vec![false; count];
    let mut stack = Vec::new();
    for start in 0..count {
        if visited[start] {
            continue;
        }
        visited[start] = true;
        stack.push((start, 0));
        while let Some((node, next)) = stack.pop() {
            if let Some(&(to, _)) = graph.from(node).get(next) {
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
    // The reverse graph, flat as well: who references each resource.
    let mut reverse_starts = vec![0; count + 1];
    for (to, _) in (0..count).flat_map(|from| graph.from(from)) {
        reverse_starts[to + 1] += 1;
    }
    for k in 0..count {
        reverse_starts[k + 1] += reverse_starts[k];
    }
    let mut filled = reverse_starts.clone();
    let mut referrers = vec![0; reverse_starts[count]];
    for from in 0..count {
        for (to, _) in graph.from(from) {
            referrers[filled[*to]] = from;
            filled[*to] += 1;
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
            for &from in &referrers[reverse_starts[node]..filled[node]] {
                if !assigned[from] {
                    assigned[from] = true;
                    component.push(from);
                    stack.push(from);
                }
            }
        }
        let cyclic = component.len() > 1 || graph.from(start).iter().any(|(to, _)| *to == start);
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
    graph: &Graph,
    members: &BTreeSet<DeclId>,
) -> Option<Vec<(DeclId, TextRange)>> {
    let mut came_from: std::collections::BTreeMap<DeclId, (DeclId, TextRange)> = Default::default();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &(to, range) in graph.from(node) {
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
