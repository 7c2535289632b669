//! Derivations that resources need built before their provider is called: which to build
//! now, and what becomes of the resources waiting for them.
//!
//! A derivation is built at most once per run, however many resources need it: the
//! second resource to need it waits for the build the first one started, or goes on at
//! once if it was built already. Everything wanted at one moment is built together, and
//! only where the schedule may change the world (a plan builds nothing; it lists what
//! would be built). A failed build fails the resources that need it; what waits on their
//! outputs is then blocked as after any failure.

use std::collections::BTreeMap;

use nixops4_eval::protocol::Derivation;

use super::{Schedule, Status, Work};
use crate::ResourcePath;

/// A derivation some resources need, and where its build stands.
pub(super) struct Needed {
    derivation: Derivation,
    state: State,
    /// The resources that need it, in the order they asked.
    waiters: Vec<ResourcePath>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    ToBuild,
    Building,
    Built,
    Failed(String),
}

impl Schedule {
    /// A resource's work is known and needs these derivations: it waits for those not
    /// built in this run yet, fails if one of them failed, or goes on.
    pub(super) fn needs_built(
        &mut self,
        path: &ResourcePath,
        work: Work,
        after: Vec<ResourcePath>,
        needs: Vec<Derivation>,
    ) {
        let mut pending = Vec::new();
        for derivation in needs {
            let key = derivation.path.clone();
            let needed = self.derivations.entry(key.clone()).or_insert(Needed {
                derivation: Derivation {
                    path: derivation.path.clone(),
                    outputs: BTreeMap::new(),
                },
                state: State::ToBuild,
                waiters: Vec::new(),
            });
            match &needed.state {
                State::Built => continue,
                State::Failed(error) => {
                    let error = failed_build(&needed.derivation, error);
                    if let Some(node) = self.nodes.get_mut(path) {
                        node.status = Status::Failed(error);
                    }
                    return;
                }
                State::ToBuild | State::Building => {}
            }
            // An output not asked for by the build that runs is built in a later one.
            let missing = derivation
                .outputs
                .iter()
                .any(|(name, _)| !needed.derivation.outputs.contains_key(name));
            if missing && needed.state == State::Building {
                needed.state = State::ToBuild;
            }
            needed.derivation.outputs.extend(derivation.outputs);
            needed.waiters.push(path.clone());
            pending.push(key);
        }
        if pending.is_empty() {
            self.decided(path, work, after);
        } else if let Some(node) = self.nodes.get_mut(path) {
            node.status = Status::Building {
                work,
                after,
                needs: pending,
            };
        }
    }

    /// The derivations to build now, in one build: every one that a wanted resource
    /// waits for and that is not built or building. None without the capability to
    /// change the world, or once interrupted.
    pub(crate) fn build_now(&mut self) -> Vec<Derivation> {
        if self.interrupted || self.mutation.is_none() {
            return Vec::new();
        }
        let mut batch = Vec::new();
        for needed in self.derivations.values_mut() {
            let wanted = needed
                .waiters
                .iter()
                .any(|w| self.nodes.get(w).is_some_and(|n| n.wanted));
            if needed.state == State::ToBuild && wanted {
                needed.state = State::Building;
                batch.push(needed.derivation.clone());
            }
        }
        batch
    }

    /// A build of `derivation` ended. The resources it fails, with why.
    pub(crate) fn built(
        &mut self,
        derivation: &str,
        result: Result<(), String>,
    ) -> Vec<(ResourcePath, String)> {
        let Some(needed) = self.derivations.get_mut(derivation) else {
            return Vec::new();
        };
        if needed.state != State::Building {
            // Asked again for more outputs meanwhile: the later build decides.
            return Vec::new();
        }
        needed.state = match &result {
            Ok(()) => State::Built,
            Err(error) => State::Failed(error.clone()),
        };
        let failure = result
            .err()
            .map(|error| failed_build(&needed.derivation, &error));
        let waiters = std::mem::take(&mut needed.waiters);
        let mut failed = Vec::new();
        for waiter in waiters {
            let Some(node) = self.nodes.get_mut(&waiter) else {
                continue;
            };
            let Status::Building { work, after, needs } = &mut node.status else {
                continue;
            };
            if let Some(error) = &failure {
                node.status = Status::Failed(error.clone());
                failed.push((waiter, error.clone()));
                continue;
            }
            needs.retain(|n| n != derivation);
            if needs.is_empty() {
                let (work, after) = (*work, std::mem::take(after));
                let after = after.into_iter().filter(|a| !self.is_done(a)).collect();
                self.decided(&waiter, work, after);
            }
        }
        failed
    }

    /// What a plan would build: each derivation wanted resources wait for, with them.
    pub(crate) fn planned_builds(&self) -> Vec<(&Derivation, Vec<&ResourcePath>)> {
        self.derivations
            .values()
            .filter(|needed| matches!(needed.state, State::ToBuild | State::Building))
            .filter_map(|needed| {
                let waiters: Vec<&ResourcePath> = needed
                    .waiters
                    .iter()
                    .filter(|w| self.nodes.get(*w).is_some_and(|n| n.wanted))
                    .collect();
                (!waiters.is_empty()).then_some((&needed.derivation, waiters))
            })
            .collect()
    }
}

fn failed_build(derivation: &Derivation, error: &str) -> String {
    format!("could not build {}: {error}", derivation.name())
}
