//! What became of each resource once a run has settled: done, planned, waiting for
//! outputs that a preview does not make, failed, skipped, or stuck in a dependency cycle
//! or behind a resource that cannot finish; and the report of an apply or destroy.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::{Goal, Schedule, Status, Work};
use crate::ResourcePath;
use crate::apply::ApplyReport;

/// Where a resource stands when nothing more can happen in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    Done(Work),
    /// Known work that did not start: planned, in a preview.
    Planned(Work),
    /// Its inputs need the outputs of these, which are planned to change.
    Waiting(Vec<ResourcePath>),
    Failed(String),
    Skipped(String),
    /// A member of this dependency cycle, listed from its first member.
    Cycle(Vec<ResourcePath>),
    /// It waits for this resource, which failed, was skipped, is in a cycle or waits for
    /// such a resource itself.
    Blocked(ResourcePath),
    /// The run was interrupted before it was evaluated.
    NotEvaluated,
}

/// How a resource that did not finish ended, with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    Failed(String),
    Skipped(String),
}

const NOT_STARTED: &str = "not started: interrupted";

impl Schedule {
    /// Where each wanted resource stands, by path, once nothing more can happen.
    pub(crate) fn settled(&self) -> Vec<(ResourcePath, Goal, Settled)> {
        let mut stuck = self.stuck();
        self.wanted()
            .map(|(path, node)| {
                let settled = match (stuck.remove(path), &node.status) {
                    (Some(Stuck::Cycle(members)), _) => Settled::Cycle(members),
                    (Some(Stuck::On(culprit)), _) => Settled::Blocked(culprit),
                    (None, Status::Done(work)) => Settled::Done(*work),
                    (None, Status::Failed(error)) => Settled::Failed(error.clone()),
                    (None, Status::Skipped(reason)) => Settled::Skipped(reason.clone()),
                    (None, Status::Waiting(needs)) => Settled::Waiting(needs.clone()),
                    (
                        None,
                        Status::Decided { work, .. }
                        | Status::Building { work, .. }
                        | Status::Queued { work, .. }
                        | Status::Running { work, .. },
                    ) => Settled::Planned(*work),
                    (None, Status::ToEvaluate | Status::Evaluating) => Settled::NotEvaluated,
                };
                (path.clone(), node.goal, settled)
            })
            .collect()
    }

    /// Ends the run: what did not finish is failed (a dependency cycle) or skipped, with
    /// the reason. Returns those, in path order.
    pub(crate) fn conclude(&mut self) -> Vec<(ResourcePath, Ended)> {
        let mut ended = Vec::new();
        for (path, goal, settled) in self.settled() {
            let status = match (settled, goal) {
                (Settled::Done(_) | Settled::Failed(_) | Settled::Skipped(_), _) => continue,
                (_, _) if self.interrupted => Ended::Skipped(NOT_STARTED.to_owned()),
                (Settled::Cycle(members), Goal::Apply) => {
                    Ended::Failed(format!("dependency cycle: {}", render_cycle(&members)))
                }
                (Settled::Cycle(members), _) => Ended::Skipped(format!(
                    "not deleted: a dependency cycle in the state: {}",
                    render_cycle(&members)
                )),
                (Settled::Blocked(culprit), Goal::Delete) => Ended::Skipped(format!(
                    "not deleted: {culprit}, which depends on it, is not deleted"
                )),
                (Settled::Blocked(culprit), _) => {
                    Ended::Skipped(format!("needs the outputs of {culprit}"))
                }
                (Settled::Waiting(needs), _) => {
                    Ended::Skipped(format!("needs the outputs of {}", list(&needs)))
                }
                (Settled::Planned(_), Goal::Delete) => Ended::Skipped(
                    "not deleted: not every declared resource was applied".to_owned(),
                ),
                (Settled::Planned(_) | Settled::NotEvaluated, _) => {
                    Ended::Skipped(NOT_STARTED.to_owned())
                }
            };
            if let Some(node) = self.nodes.get_mut(&path) {
                node.status = match &status {
                    Ended::Failed(error) => Status::Failed(error.clone()),
                    Ended::Skipped(reason) => Status::Skipped(reason.clone()),
                };
            }
            ended.push((path, status));
        }
        ended
    }

    /// What the run did, for an apply or destroy.
    pub(crate) fn report(&self) -> ApplyReport {
        let mut report = ApplyReport {
            interrupted: self.interrupted,
            ..ApplyReport::default()
        };
        for (path, node) in self.wanted() {
            match &node.status {
                Status::Done(Work::Keep) => report.unchanged += 1,
                Status::Done(work) => {
                    if let Some(action) = work.action() {
                        report.applied.insert(path.clone(), action);
                    }
                }
                Status::Failed(error) => {
                    report.failed.insert(path.clone(), error.clone());
                }
                Status::Skipped(reason) => {
                    report.skipped.insert(path.clone(), reason.clone());
                }
                _ => {}
            }
        }
        report
    }

    /// Why unfinished resources cannot go on: the cycles among them, and for the others,
    /// a resource they wait for that cannot finish.
    fn stuck(&self) -> HashMap<ResourcePath, Stuck> {
        let waits: BTreeMap<&ResourcePath, Vec<&ResourcePath>> = self
            .wanted()
            .filter_map(|(path, node)| {
                let needs = match &node.status {
                    Status::Waiting(needs) => needs.iter().collect(),
                    Status::Decided { after, .. } => {
                        after.iter().filter(|a| !self.is_done(a)).collect()
                    }
                    _ => return None,
                };
                Some((path, needs))
            })
            .collect();
        let mut stuck: HashMap<ResourcePath, Stuck> = HashMap::new();
        // Each component comes after those it waits for, so their verdicts are known.
        for component in components(&waits) {
            if let Some(cycle) = cycle_of(&component, &waits) {
                for member in component {
                    stuck.insert(member.clone(), Stuck::Cycle(cycle.clone()));
                }
                continue;
            }
            let path = component[0];
            let culprit = waits[path].iter().find(|need| {
                stuck.contains_key(*need)
                    || self
                        .nodes
                        .get(*need)
                        .is_some_and(|n| matches!(n.status, Status::Failed(_) | Status::Skipped(_)))
            });
            if let Some(culprit) = culprit {
                stuck.insert(path.clone(), Stuck::On((*culprit).clone()));
            }
        }
        stuck
    }
}

enum Stuck {
    Cycle(Vec<ResourcePath>),
    On(ResourcePath),
}

type Graph<'a> = BTreeMap<&'a ResourcePath, Vec<&'a ResourcePath>>;

/// The strongly connected components of a "waits for" graph (Tarjan's algorithm, without
/// recursion so that long chains cannot overflow the stack), each listed after every
/// component it waits for. Edges to resources outside the graph are ignored.
fn components<'a>(graph: &Graph<'a>) -> Vec<Vec<&'a ResourcePath>> {
    let mut index: HashMap<&ResourcePath, usize> = HashMap::new();
    let mut low: HashMap<&ResourcePath, usize> = HashMap::new();
    let mut stack: Vec<&ResourcePath> = Vec::new();
    let mut on_stack: HashSet<&ResourcePath> = HashSet::new();
    let mut found = Vec::new();
    for &root in graph.keys() {
        if index.contains_key(root) {
            continue;
        }
        let mut calls: Vec<(&ResourcePath, usize)> = vec![(root, 0)];
        index.insert(root, index.len());
        low.insert(root, low.len());
        stack.push(root);
        on_stack.insert(root);
        while let Some((node, edge)) = calls.last_mut() {
            let node = *node;
            if let Some(&next) = graph[node].get(*edge) {
                *edge += 1;
                if !graph.contains_key(next) {
                    continue;
                }
                match index.get(next) {
                    None => {
                        index.insert(next, index.len());
                        low.insert(next, low.len());
                        stack.push(next);
                        on_stack.insert(next);
                        calls.push((next, 0));
                    }
                    Some(&at) if on_stack.contains(next) => {
                        low.insert(node, low[node].min(at));
                    }
                    Some(_) => {}
                }
                continue;
            }
            calls.pop();
            if let Some((parent, _)) = calls.last() {
                low.insert(parent, low[parent].min(low[node]));
            }
            if low[node] == index[node] {
                let mut component = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack.remove(member);
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                component.sort();
                found.push(component);
            }
        }
    }
    found
}

/// The cycle through a component's first member, if the component is a cycle (several
/// members, or one that waits for itself): the shortest way back to it.
fn cycle_of(component: &[&ResourcePath], graph: &Graph) -> Option<Vec<ResourcePath>> {
    let start = *component.first()?;
    let members: HashSet<&ResourcePath> = component.iter().copied().collect();
    let mut previous: HashMap<&ResourcePath, &ResourcePath> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &next in &graph[node] {
            if next == start {
                let mut cycle = vec![node.clone()];
                let mut at = node;
                while at != start {
                    at = previous[at];
                    cycle.push(at.clone());
                }
                cycle.reverse();
                return Some(cycle);
            }
            if members.contains(next) && !previous.contains_key(next) {
                previous.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    None
}

/// `a → b → a`.
pub(crate) fn render_cycle(members: &[ResourcePath]) -> String {
    members
        .iter()
        .chain(members.first())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" → ")
}

pub(crate) fn list(paths: &[ResourcePath]) -> String {
    paths
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> ResourcePath {
        ResourcePath::parse_dotted(name)
    }

    /// The cycle finder on its own, with resource `failed` outside the graph.
    #[test]
    fn finds_each_cycle_once() {
        let waits: BTreeMap<ResourcePath, Vec<ResourcePath>> = [
            (p("c"), vec![p("a")]),
            (p("a"), vec![p("b")]),
            (p("b"), vec![p("c")]),
            (p("x"), vec![p("a")]),
            (p("self"), vec![p("self")]),
            (p("y"), vec![p("failed")]),
        ]
        .into();
        let graph: Graph = waits
            .iter()
            .map(|(path, needs)| (path, needs.iter().collect()))
            .collect();
        let cycles: Vec<String> = components(&graph)
            .iter()
            .filter_map(|component| cycle_of(component, &graph))
            .map(|cycle| render_cycle(&cycle))
            .collect();
        assert_eq!(cycles, ["a → b → c → a", "self → self"]);
    }
}
