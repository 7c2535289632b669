//! Evaluates every resource of a deployment, providing outputs as resources become
//! ready, until nothing more can move: what the engine's plan and apply loops do, with
//! the engine's part (applying a resource) given as a function.
//!
//! A resource is evaluated again only when something it waited for got its outputs.
//! What is still waiting at the end is either part of a cycle (reported with its
//! members) or waits, directly or not, on a resource that failed or is in a cycle.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::client::EvalClient;
use crate::protocol::*;

#[derive(Debug, Default)]
pub struct Resolution {
    pub ready: BTreeMap<ResourcePath, ResourceSpec>,
    pub failed: BTreeMap<ResourcePath, EvalError>,
    /// Each cycle's members, in the order they wait on each other.
    pub cycles: Vec<Vec<ResourcePath>>,
    /// Resources that still wait, with what they wait for.
    pub blocked: BTreeMap<ResourcePath, Vec<ResourcePath>>,
    /// How many `evaluateResource` requests were sent.
    pub evaluations: usize,
}

/// Evaluates all resources of `deployment`. `apply` turns a ready resource into its
/// outputs (the engine creates it; tests make them up); they are provided at once.
pub async fn evaluate_all(
    client: &EvalClient,
    deployment: &str,
    mut apply: impl FnMut(&ResourcePath, &ResourceSpec) -> Map<String, Value>,
) -> Result<Resolution, EvalError> {
    let paths = client.list_resources(deployment).await?;
    let mut resolution = Resolution::default();
    let mut waits: BTreeMap<ResourcePath, Vec<ResourcePath>> = BTreeMap::new();
    let mut to_evaluate: Vec<ResourcePath> = paths.clone();
    while !to_evaluate.is_empty() {
        let mut newly_ready = BTreeSet::new();
        let batch = std::mem::take(&mut to_evaluate);
        resolution.evaluations += batch.len();
        for (path, evaluation) in client.evaluate_each(deployment, &batch).await? {
            match evaluation {
                Ok(Evaluation::Ready { value }) => {
                    let outputs = apply(&path, &value);
                    client.provide_outputs(deployment, &path, outputs).await?;
                    waits.remove(&path);
                    resolution.ready.insert(path.clone(), value);
                    newly_ready.insert(path);
                }
                Ok(Evaluation::Waiting { resources }) => {
                    waits.insert(path, resources);
                }
                Err(error) if error.kind == EvalErrorKind::Request => return Err(error),
                Err(error) => {
                    resolution.failed.insert(path, error);
                }
            }
        }
        to_evaluate = waits
            .iter()
            .filter(|(_, awaited)| awaited.iter().any(|a| newly_ready.contains(a)))
            .map(|(path, _)| path.clone())
            .collect();
    }
    resolution.cycles = cycles(&waits);
    resolution.blocked = waits;
    Ok(resolution)
}

/// The cycles in the "waits for" graph, each listed once, starting at its smallest member.
fn cycles(waits: &BTreeMap<ResourcePath, Vec<ResourcePath>>) -> Vec<Vec<ResourcePath>> {
    let mut found: Vec<Vec<ResourcePath>> = Vec::new();
    for start in waits.keys() {
        // Follow the first wait from each resource; a resource waits on one thing at a time.
        let mut trail: Vec<&ResourcePath> = vec![start];
        let mut current = start;
        while let Some(next) = waits.get(current).and_then(|w| w.first()) {
            if let Some(at) = trail.iter().position(|p| *p == next) {
                let mut cycle: Vec<ResourcePath> =
                    trail[at..].iter().map(|p| (*p).clone()).collect();
                let smallest = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, p)| *p)
                    .map_or(0, |(i, _)| i);
                cycle.rotate_left(smallest);
                if !found.contains(&cycle) {
                    found.push(cycle);
                }
                break;
            }
            trail.push(next);
            current = next;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> ResourcePath {
        ResourcePath::parse_dotted(name)
    }

    #[test]
    fn finds_each_cycle_once() {
        let waits: BTreeMap<_, _> = [
            (p("c"), vec![p("a")]),
            (p("a"), vec![p("b")]),
            (p("b"), vec![p("c")]),
            (p("x"), vec![p("a")]),
            (p("self"), vec![p("self")]),
            (p("y"), vec![p("failed")]),
        ]
        .into();
        assert_eq!(
            cycles(&waits),
            vec![vec![p("a"), p("b"), p("c")], vec![p("self")]]
        );
    }
}
