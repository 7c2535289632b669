//! The goal graph of one run, without any I/O: which resources to evaluate now, which
//! provider calls to start now, and what became of each resource. [`crate::run`] performs
//! what it decides, with the evaluator, the providers and the state.
//!
//! Each resource has a [`Goal`]: apply it as declared (evaluate it, then create, update,
//! replace or keep it), delete it (only after every resource being deleted that depends
//! on it is gone, and in an apply only after every declared resource is applied), or read
//! it back (refresh). A call that can change the world starts only in a schedule that
//! holds the [`Mutation`] capability, which only a locked state hands out. Without it (a
//! preview, which is what a plan is) changing resources stay planned, and what needs
//! their outputs stays waiting, with unknown inputs.
//!
//! A resource whose inputs or provider refer to derivation outputs not in the store
//! waits for them to be built (`schedule/builds.rs`): each derivation once per run, all
//! those wanted in one build per round, and only in a schedule that may change the world.
//!
//! What became of each resource when the run settles (cycles included) is in
//! `schedule/settle.rs`. No tokio, no Nix, no processes: the tests (`schedule/tests.rs`)
//! drive it with deployments written as data.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use nixops4_eval::protocol::Derivation;

use crate::ResourcePath;
use crate::plan::Action;
use crate::state::Mutation;

mod builds;
mod settle;

pub(crate) use settle::{Ended, Settled, render_cycle};

/// What a run wants for a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Goal {
    /// Apply it as declared: evaluate it, then create, update, replace or keep it.
    Apply,
    /// Delete a recorded resource.
    Delete,
    /// Read a recorded resource back from its provider.
    Read,
}

/// What a resource needs, once it is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Work {
    /// Nothing: it is as recorded.
    Keep,
    Create,
    Update,
    /// Delete the recorded resource, then create the declared one.
    Replace,
    /// Create the declared resource again, deleting nothing (upstream v0, no state).
    Recreate,
    Delete,
    /// Remove the record without a provider call (upstream v0 cannot delete). It takes a
    /// delete's place in the order, and like one needs the capability to change the world.
    Forget,
    Read,
}

impl Work {
    /// Its provider requests, in order.
    fn requests(self) -> &'static [Request] {
        match self {
            Work::Keep => &[],
            Work::Create => &[Request::Create],
            Work::Update => &[Request::Update],
            Work::Replace => &[Request::Delete, Request::Create],
            Work::Recreate => &[Request::Create],
            Work::Delete | Work::Forget => &[Request::Delete],
            Work::Read => &[Request::Read],
        }
    }

    /// How plans and reports name it; a read is not an action.
    pub(crate) fn action(self) -> Option<Action> {
        match self {
            Work::Keep => Some(Action::NoChange),
            Work::Create => Some(Action::Create),
            Work::Update => Some(Action::Update),
            Work::Replace => Some(Action::Replace),
            Work::Recreate => Some(Action::Recreate),
            Work::Delete => Some(Action::Delete),
            Work::Forget => Some(Action::Forget),
            Work::Read => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
    Create,
    Update,
    Delete,
    Read,
}

/// One provider call. The calls that change the world carry the capability to do so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Create(Mutation),
    Update(Mutation),
    Delete(Mutation),
    Read,
}

/// A provider call to start now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    pub path: ResourcePath,
    pub step: Step,
    /// What the call is part of: a replacement's delete and create are two calls.
    pub work: Work,
}

impl Call {
    /// What a front end is told starts: a replacement shows as one when its delete starts.
    pub(crate) fn announced(&self) -> Option<Action> {
        match (self.work, self.step) {
            (Work::Replace, Step::Delete(_)) => Some(Action::Replace),
            (Work::Recreate, Step::Create(_)) => Some(Action::Recreate),
            (Work::Forget, Step::Delete(_)) => Some(Action::Forget),
            (_, Step::Create(_)) => Some(Action::Create),
            (_, Step::Update(_)) => Some(Action::Update),
            (_, Step::Delete(_)) => Some(Action::Delete),
            (_, Step::Read) => None,
        }
    }
}

/// What the evaluator said about a resource, with the work decided against its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Evaluated {
    /// Its inputs are known. `after` are resources to apply first (its `dependsOn`);
    /// `needs` the derivation outputs to build before its provider is called. For
    /// [`Work::Keep`] the driver has given the recorded outputs to the evaluator already.
    Ready {
        work: Work,
        after: Vec<ResourcePath>,
        needs: Vec<Derivation>,
    },
    /// It needs the outputs of these resources first.
    Waiting(Vec<ResourcePath>),
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Status {
    ToEvaluate,
    Evaluating,
    Waiting(Vec<ResourcePath>),
    /// The work is known; it waits for these derivations to be built.
    Building {
        work: Work,
        after: Vec<ResourcePath>,
        needs: Vec<String>,
    },
    /// The work is known; it is queued once `after` are done.
    Decided {
        work: Work,
        after: Vec<ResourcePath>,
    },
    /// In the ready queue, or held there until it may start.
    Queued {
        work: Work,
        step: usize,
    },
    Running {
        work: Work,
        step: usize,
    },
    Done(Work),
    Failed(String),
    Skipped(String),
}

struct Node {
    goal: Goal,
    /// Whether this run is to finish it: every resource, or the targets and what they need.
    wanted: bool,
    status: Status,
    /// Everything it waited for in this run.
    observed: BTreeSet<ResourcePath>,
    /// It is evaluated again because what it waited for was done already: resources of
    /// one batch are evaluated before any of their outputs are provided.
    rechecked: bool,
}

pub(crate) struct Schedule {
    nodes: BTreeMap<ResourcePath, Node>,
    to_evaluate: Vec<ResourcePath>,
    /// Queued resources, in the order they became ready.
    ready: VecDeque<ResourcePath>,
    /// Queued resources that may not start yet: no capability, or deletes before applies.
    held: Vec<ResourcePath>,
    /// Who waits for each resource, by its outputs or by `after`.
    waiters: HashMap<ResourcePath, Vec<ResourcePath>>,
    running: usize,
    parallelism: usize,
    mutation: Option<Mutation>,
    interrupted: bool,
    /// Wanted apply goals that are not done; deletes wait until there are none.
    open_applies: usize,
    /// The derivations resources need built, by path.
    derivations: BTreeMap<String, builds::Needed>,
}

impl Schedule {
    pub(crate) fn new(parallelism: usize) -> Schedule {
        Schedule {
            nodes: BTreeMap::new(),
            to_evaluate: Vec::new(),
            ready: VecDeque::new(),
            held: Vec::new(),
            waiters: HashMap::new(),
            running: 0,
            parallelism: parallelism.max(1),
            mutation: None,
            interrupted: false,
            open_applies: 0,
            derivations: BTreeMap::new(),
        }
    }

    /// Adds declared resources to apply.
    pub(crate) fn apply(&mut self, paths: impl IntoIterator<Item = ResourcePath>) {
        for path in paths {
            self.insert(path, Goal::Apply, Status::ToEvaluate);
        }
    }

    /// Adds recorded resources to delete, each with what its record depends on. Each is
    /// deleted after those of them that depend on it. Those `forget` names are removed
    /// from state instead, in the same order.
    pub(crate) fn delete(
        &mut self,
        doomed: impl IntoIterator<Item = (ResourcePath, Vec<ResourcePath>)>,
        forget: impl Fn(&ResourcePath) -> bool,
    ) {
        let doomed: BTreeMap<ResourcePath, Vec<ResourcePath>> = doomed.into_iter().collect();
        let mut dependents: BTreeMap<&ResourcePath, Vec<ResourcePath>> = BTreeMap::new();
        for (path, depends_on) in &doomed {
            for dependency in depends_on
                .iter()
                .filter(|d| doomed.contains_key(*d) && *d != path)
            {
                dependents.entry(dependency).or_default().push(path.clone());
            }
        }
        for path in doomed.keys() {
            self.insert(path.clone(), Goal::Delete, Status::Evaluating);
        }
        for path in doomed.keys() {
            let after = dependents.remove(path).unwrap_or_default();
            let work = if forget(path) {
                Work::Forget
            } else {
                Work::Delete
            };
            self.decided(path, work, after);
        }
    }

    /// Adds recorded resources to read back.
    pub(crate) fn read(&mut self, paths: impl IntoIterator<Item = ResourcePath>) {
        for path in paths {
            self.insert(path.clone(), Goal::Read, Status::Evaluating);
            self.decided(&path, Work::Read, Vec::new());
        }
    }

    fn insert(&mut self, path: ResourcePath, goal: Goal, status: Status) {
        let node = Node {
            goal,
            wanted: true,
            status,
            observed: BTreeSet::new(),
            rechecked: false,
        };
        if goal == Goal::Apply {
            self.open_applies += 1;
            self.to_evaluate.push(path.clone());
        }
        self.nodes.insert(path, node);
    }

    /// Allows the calls that change the world from now on. With targets, only they and
    /// what they need (what they wait for, or, for deletes, what depends on them) are
    /// finished; the rest is left as it is.
    pub(crate) fn grant(&mut self, mutation: Mutation, targets: &[ResourcePath]) {
        self.mutation = Some(mutation);
        let queued: Vec<ResourcePath> = self.held.drain(..).chain(self.ready.drain(..)).collect();
        if !targets.is_empty() {
            for node in self.nodes.values_mut() {
                node.wanted = false;
            }
            self.open_applies = 0;
            self.to_evaluate.clear();
            for target in targets {
                self.want(target);
            }
            // `want` queued the wanted ones; keep the order they were queued in.
            self.ready.clear();
        }
        let wanted: Vec<ResourcePath> = queued
            .into_iter()
            .filter(|path| self.nodes.get(path).is_some_and(|n| n.wanted))
            .collect();
        self.ready.extend(wanted);
    }

    /// Whether the resource is declared, to be applied.
    pub(crate) fn declares(&self, path: &ResourcePath) -> bool {
        self.nodes.get(path).is_some_and(|n| n.goal == Goal::Apply)
    }

    pub(crate) fn holds_mutation(&self) -> bool {
        self.mutation.is_some()
    }

    /// Stops the run: nothing is evaluated or started from now on.
    pub(crate) fn interrupt(&mut self) {
        self.interrupted = true;
    }

    /// Makes a resource, and what it needs, part of what this run finishes.
    fn want(&mut self, path: &ResourcePath) {
        let mut pending = vec![path.clone()];
        while let Some(path) = pending.pop() {
            if !self.nodes.contains_key(&path) {
                // Something needed that was not asked for: a target's dependency.
                self.insert(path, Goal::Apply, Status::ToEvaluate);
                continue;
            }
            let Some(node) = self.nodes.get_mut(&path).filter(|n| !n.wanted) else {
                continue;
            };
            node.wanted = true;
            if node.goal == Goal::Apply && !matches!(node.status, Status::Done(_)) {
                self.open_applies += 1;
            }
            match &node.status {
                Status::ToEvaluate => self.to_evaluate.push(path),
                Status::Queued { .. } => self.ready.push_back(path),
                Status::Waiting(needs)
                | Status::Decided { after: needs, .. }
                | Status::Building { after: needs, .. } => {
                    pending.extend(needs.iter().cloned());
                }
                _ => {}
            }
        }
    }

    /// The resources to evaluate now; the driver answers each with [`Schedule::evaluated`].
    pub(crate) fn evaluate_now(&mut self) -> Vec<ResourcePath> {
        if self.interrupted {
            return Vec::new();
        }
        let mut batch = Vec::new();
        for path in std::mem::take(&mut self.to_evaluate) {
            if let Some(node) = self.nodes.get_mut(&path)
                && node.wanted
                && node.status == Status::ToEvaluate
            {
                node.status = Status::Evaluating;
                batch.push(path);
            }
        }
        batch
    }

    pub(crate) fn evaluated(&mut self, path: &ResourcePath, evaluated: Evaluated) {
        let Some(node) = self
            .nodes
            .get_mut(path)
            .filter(|n| n.status == Status::Evaluating)
        else {
            return;
        };
        match evaluated {
            Evaluated::Failed(error) => node.status = Status::Failed(error),
            Evaluated::Waiting(needs) => {
                node.observed.extend(needs.iter().cloned());
                let rechecked = std::mem::take(&mut node.rechecked);
                let provided = needs.iter().find(|need| self.is_done(need)).cloned();
                let Some(node) = self.nodes.get_mut(path) else {
                    return;
                };
                match provided {
                    None => {
                        node.status = Status::Waiting(needs.clone());
                        self.wait_for(path, &needs);
                    }
                    Some(provided) if rechecked => {
                        node.status = Status::Failed(format!(
                            "the evaluator still waits for the outputs of {provided}, which it was given"
                        ));
                    }
                    Some(_) => {
                        node.status = Status::ToEvaluate;
                        node.rechecked = true;
                        if node.wanted {
                            self.to_evaluate.push(path.clone());
                        }
                    }
                }
            }
            Evaluated::Ready {
                work: Work::Keep, ..
            } => self.done(path, Work::Keep),
            Evaluated::Ready { work, after, needs } => {
                let after = after.into_iter().filter(|a| !self.is_done(a)).collect();
                self.needs_built(path, work, after, needs);
            }
        }
    }

    /// The work of a resource is known: queue it, or wait for `after` first.
    fn decided(&mut self, path: &ResourcePath, work: Work, after: Vec<ResourcePath>) {
        if after.is_empty() {
            self.queue(path, Status::Queued { work, step: 0 });
        } else if let Some(node) = self.nodes.get_mut(path) {
            node.status = Status::Decided {
                work,
                after: after.clone(),
            };
            self.wait_for(path, &after);
        }
    }

    fn wait_for(&mut self, path: &ResourcePath, needs: &[ResourcePath]) {
        for need in needs {
            self.waiters
                .entry(need.clone())
                .or_default()
                .push(path.clone());
        }
        if self.nodes.get(path).is_some_and(|n| n.wanted) {
            for need in needs {
                self.want(need);
            }
        }
    }

    fn queue(&mut self, path: &ResourcePath, status: Status) {
        if let Some(node) = self.nodes.get_mut(path) {
            node.status = status;
            if node.wanted {
                self.ready.push_back(path.clone());
            }
        }
    }

    fn is_done(&self, path: &ResourcePath) -> bool {
        self.nodes
            .get(path)
            .is_some_and(|n| matches!(n.status, Status::Done(_)))
    }

    /// The provider calls to start now: none once interrupted, no more than the
    /// parallelism allows, and none that change the world without the capability.
    pub(crate) fn start(&mut self) -> Vec<Call> {
        let mut calls = Vec::new();
        if self.interrupted {
            return calls;
        }
        while self.running < self.parallelism {
            let Some(path) = self.ready.pop_front() else {
                break;
            };
            let Some(node) = self.nodes.get_mut(&path) else {
                continue;
            };
            let Status::Queued { work, step } = node.status else {
                continue;
            };
            let step_now = match work.requests()[step] {
                Request::Read => Some(Step::Read),
                Request::Create => self.mutation.map(Step::Create),
                Request::Update => self.mutation.map(Step::Update),
                Request::Delete => self.mutation.map(Step::Delete),
            };
            let deletes_wait = node.goal == Goal::Delete && self.open_applies > 0;
            match step_now {
                Some(step_now) if !deletes_wait => {
                    node.status = Status::Running { work, step };
                    self.running += 1;
                    calls.push(Call {
                        path,
                        step: step_now,
                        work,
                    });
                }
                _ => self.held.push(path),
            }
        }
        calls
    }

    /// A call ended. `Some(work)` when that finished the resource.
    pub(crate) fn finished(
        &mut self,
        path: &ResourcePath,
        result: Result<(), String>,
    ) -> Option<Work> {
        let node = self.nodes.get_mut(path)?;
        let Status::Running { work, step } = node.status else {
            return None;
        };
        self.running -= 1;
        match result {
            Err(error) => {
                node.status = Status::Failed(error);
                None
            }
            Ok(()) if step + 1 < work.requests().len() => {
                self.queue(
                    path,
                    Status::Queued {
                        work,
                        step: step + 1,
                    },
                );
                None
            }
            Ok(()) => {
                self.done(path, work);
                Some(work)
            }
        }
    }

    /// A resource is done: what waited for it goes on.
    fn done(&mut self, path: &ResourcePath, work: Work) {
        let Some(node) = self.nodes.get_mut(path) else {
            return;
        };
        node.status = Status::Done(work);
        if node.goal == Goal::Apply && node.wanted {
            self.open_applies -= 1;
            if self.open_applies == 0 {
                self.ready.extend(self.held.drain(..));
            }
        }
        for waiter in self.waiters.remove(path).unwrap_or_default() {
            let Some(node) = self.nodes.get(&waiter) else {
                continue;
            };
            match &node.status {
                Status::Waiting(needs) if needs.contains(path) => {
                    let wanted = node.wanted;
                    if let Some(node) = self.nodes.get_mut(&waiter) {
                        node.status = Status::ToEvaluate;
                    }
                    if wanted {
                        self.to_evaluate.push(waiter);
                    }
                }
                Status::Decided { work, after } if after.iter().all(|a| self.is_done(a)) => {
                    let work = *work;
                    self.queue(&waiter, Status::Queued { work, step: 0 });
                }
                _ => {}
            }
        }
    }

    /// Everything a resource waited for in this run.
    pub(crate) fn observed(&self, path: &ResourcePath) -> impl Iterator<Item = &ResourcePath> {
        self.nodes
            .get(path)
            .into_iter()
            .flat_map(|n| n.observed.iter())
    }

    /// The wanted resources that failed, with why.
    pub(crate) fn failures(&self) -> impl Iterator<Item = (&ResourcePath, &str)> {
        self.wanted().filter_map(|(path, node)| match &node.status {
            Status::Failed(error) => Some((path, error.as_str())),
            _ => None,
        })
    }

    fn wanted(&self) -> impl Iterator<Item = (&ResourcePath, &Node)> {
        self.nodes.iter().filter(|(_, node)| node.wanted)
    }
}

#[cfg(test)]
mod tests;
