//! What needs the deployment evaluated, in trusted workspaces only: plan previews after a
//! save (code lenses, `nixops4/plan`, evaluation errors as diagnostics) and the jobs that
//! apply, destroy, refresh and run operations. Every job runs the engine exactly as the
//! headless `nixops4-lsp --apply` does ([`apply`]); only how it asks and reports differs.
//!
//! Jobs run on the server's runtime beside the requests; the engine's work is waiting on
//! `nix` and provider processes, so completion and hover are answered meanwhile. The state
//! lock keeps two applies of one state apart; shutting down interrupts running jobs (no new
//! provider call starts) and waits until what they started is recorded.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use nixops4_core::ResourcePath;
use nixops4_core::engine::{ApplyReport, Engine, EngineOptions, RefreshReport};
use nixops4_core::error::EngineError;
use nixops4_core::events::{Event, EventSink};
use nixops4_core::plan::{Action, Plan, PlannedResource};
use serde_json::{Map, Value};
use tokio::sync::Notify;

/// How long after a save the plan is made; a later save within it starts the wait over.
const PLAN_DELAY: Duration = Duration::from_millis(300);

/// One deployment of one flake, and how many provider calls its jobs may run at once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Deployment {
    pub flake_dir: PathBuf,
    pub name: String,
    pub parallelism: usize,
}

impl Deployment {
    fn options(&self, events: EventSink, interrupt: Arc<AtomicBool>) -> EngineOptions {
        let mut options = EngineOptions::new(&self.flake_dir, &self.name);
        options.parallelism = self.parallelism;
        options.events = events;
        options.interrupt = interrupt;
        options
    }
}

#[derive(Clone, Debug)]
pub enum PlanStatus {
    Planning,
    Ready(Arc<Plan>),
    /// The deployment could not be evaluated or planned at all.
    Failed(String),
}

/// Plans by deployment, and the jobs running.
#[derive(Default)]
pub struct Runner {
    plans: DashMap<Deployment, PlanStatus>,
    /// The plan being made per deployment, aborted when a newer one is asked for.
    planning: DashMap<Deployment, tokio::task::AbortHandle>,
    /// Interrupt flags of running jobs, by progress token.
    interrupts: DashMap<String, Arc<AtomicBool>>,
    running: AtomicUsize,
    idle: Notify,
}

/// Counts a job as running until dropped.
struct JobGuard<'a>(&'a Runner);

impl Drop for JobGuard<'_> {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Runner {
    pub fn plan(&self, deployment: &Deployment) -> Option<PlanStatus> {
        self.plans.get(deployment).map(|p| p.clone())
    }

    /// Makes a plan after [`PLAN_DELAY`]. Run it as a task given to [`Runner::supersede`],
    /// so that a newer request aborts it (and the evaluator it started).
    pub async fn plan_after_delay(&self, deployment: &Deployment) {
        tokio::time::sleep(PLAN_DELAY).await;
        self.plans.insert(deployment.clone(), PlanStatus::Planning);
        let status = match self.plan_now(deployment).await {
            Ok(plan) => PlanStatus::Ready(Arc::new(plan)),
            Err(error) => PlanStatus::Failed(error.to_string()),
        };
        self.plans.insert(deployment.clone(), status);
    }

    /// Makes `task` the deployment's plan in the making, aborting the one before.
    pub fn supersede(&self, deployment: Deployment, task: tokio::task::AbortHandle) {
        if let Some(previous) = self.planning.insert(deployment, task) {
            previous.abort();
        }
    }

    /// Plans now, and keeps the plan for the lenses.
    pub async fn plan_now(&self, deployment: &Deployment) -> Result<Plan, EngineError> {
        let engine = Engine::start(deployment.options(None, Arc::default())).await?;
        let plan = engine.plan().await;
        engine.shutdown().await;
        if let Ok(plan) = &plan {
            self.plans.insert(
                deployment.clone(),
                PlanStatus::Ready(Arc::new(plan.clone())),
            );
        }
        plan
    }

    /// Runs a job with an interrupt flag known under `token`.
    pub async fn job<T, F: Future<Output = T>>(
        &self,
        token: &str,
        work: impl FnOnce(Arc<AtomicBool>) -> F,
    ) -> T {
        self.running.fetch_add(1, Ordering::SeqCst);
        let _guard = JobGuard(self);
        let interrupt = Arc::new(AtomicBool::new(false));
        self.interrupts.insert(token.to_owned(), interrupt.clone());
        let result = work(interrupt).await;
        self.interrupts.remove(token);
        result
    }

    /// Asks the job under `token` to stop: nothing new starts, what started is recorded.
    pub fn cancel(&self, token: &str) {
        if let Some(flag) = self.interrupts.get(token) {
            flag.store(true, Ordering::SeqCst);
        }
    }

    /// Interrupts every job and waits until they have recorded what they did.
    pub async fn shut_down(&self) {
        for flag in self.interrupts.iter() {
            flag.store(true, Ordering::SeqCst);
        }
        loop {
            let idle = self.idle.notified();
            if self.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// Applies a deployment (or `targets` and what they depend on). `approve` sees the plan
/// (to show it, or to ask when it deletes or replaces something) and says whether to go
/// on; what is then applied is exactly that plan, or nothing if the deployment or its
/// state changed meanwhile. `None` when not approved.
pub async fn apply<A, F>(
    deployment: &Deployment,
    targets: &[ResourcePath],
    events: EventSink,
    interrupt: Arc<AtomicBool>,
    approve: A,
) -> Result<Option<(Plan, ApplyReport)>, EngineError>
where
    A: FnOnce(Plan) -> F,
    F: Future<Output = bool>,
{
    let engine = Engine::start(deployment.options(events, interrupt)).await?;
    let result = async {
        let plan = engine.plan().await?;
        if !approve(plan.clone()).await {
            return Ok(None);
        }
        let approved = plan.fingerprint.clone();
        let report = engine
            .apply(targets, |now: &Plan| {
                if now.fingerprint == approved {
                    Ok(true)
                } else {
                    Err(EngineError::usage(
                        "the deployment or its state changed while the plan was shown; nothing was applied",
                    ))
                }
            })
            .await?;
        Ok(report.map(|report| (plan, report)))
    }
    .await;
    engine.shutdown().await;
    result
}

/// Destroys a resource and what depends on it.
pub async fn destroy(
    deployment: &Deployment,
    target: &ResourcePath,
    events: EventSink,
    interrupt: Arc<AtomicBool>,
) -> Result<ApplyReport, EngineError> {
    let engine = Engine::start(deployment.options(events, interrupt)).await?;
    let report = engine.destroy(std::slice::from_ref(target)).await;
    engine.shutdown().await;
    report
}

pub async fn refresh(deployment: &Deployment) -> Result<RefreshReport, EngineError> {
    let engine = Engine::start(deployment.options(None, Arc::default())).await?;
    let report = engine.refresh().await;
    engine.shutdown().await;
    report
}

pub async fn run_operation(
    deployment: &Deployment,
    target: &ResourcePath,
    operation: &str,
    arguments: Map<String, Value>,
) -> Result<Value, EngineError> {
    let engine = Engine::start(deployment.options(None, Arc::default())).await?;
    let result = engine.run_operation(target, operation, arguments).await;
    engine.shutdown().await;
    result
}

/// How a planned resource reads in a lens or a line: `+ create`, `~ update: contents,
/// mode`, `-/+ replace: name`, `- delete`, `no changes`, with what it waits for.
pub fn label(planned: &PlannedResource) -> String {
    let inputs = |only_replacing: bool| {
        planned
            .changes
            .iter()
            .filter(|c| !only_replacing || c.forces_replacement)
            .map(|c| c.input.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let listed = |verb: &str, inputs: String| {
        if inputs.is_empty() {
            verb.to_owned()
        } else {
            format!("{verb}: {inputs}")
        }
    };
    let mut text = match planned.action {
        Action::Create => "+ create".to_owned(),
        Action::Update => listed("~ update", inputs(false)),
        Action::Replace => listed("-/+ replace", inputs(true)),
        Action::Delete => "- delete".to_owned(),
        Action::NoChange => "no changes".to_owned(),
    };
    if !planned.inputs_known && !planned.waiting_for.is_empty() {
        let waiting: Vec<String> = planned
            .waiting_for
            .iter()
            .map(|p| format!("resources.{p}"))
            .collect();
        text.push_str(&format!(", waiting for {}", waiting.join(", ")));
    }
    text
}

/// `+2 ~1 -/+0 -0`.
pub fn summary(plan: &Plan) -> String {
    let s = plan.summary();
    format!("+{} ~{} -/+{} -{}", s.create, s.update, s.replace, s.delete)
}

/// What an event says, as a line of progress.
pub fn event_line(event: &Event) -> String {
    let verb = |action: &Action, done: bool| match (action, done) {
        (Action::Create, false) => "creating",
        (Action::Create, true) => "created",
        (Action::Update, false) => "updating",
        (Action::Update, true) => "updated",
        (Action::Replace, false) => "replacing",
        (Action::Replace, true) => "replaced",
        (Action::Delete, false) => "deleting",
        (Action::Delete, true) => "deleted",
        (Action::NoChange, _) => "unchanged",
    };
    match event {
        Event::Started { resource, action } => format!("{} {resource}", verb(action, false)),
        Event::Finished { resource, action } => format!("{} {resource}", verb(action, true)),
        Event::Failed { resource, error } => format!("{resource} failed: {error}"),
        Event::Skipped { resource, reason } => format!("{resource} skipped: {reason}"),
    }
}

/// How an apply or destroy ended, in one sentence.
pub fn outcome(report: &ApplyReport) -> String {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for action in report.applied.values() {
        let word = match action {
            Action::Create => "created",
            Action::Update => "updated",
            Action::Replace => "replaced",
            Action::Delete => "deleted",
            Action::NoChange => "unchanged",
        };
        *counts.entry(word).or_default() += 1;
    }
    let mut parts: Vec<String> = ["created", "updated", "replaced", "deleted"]
        .iter()
        .filter_map(|w| counts.get(w).map(|n| format!("{n} {w}")))
        .collect();
    if parts.is_empty() {
        parts.push("nothing to change".into());
    }
    let mut text = parts.join(", ");
    if !report.failed.is_empty() {
        let failed: Vec<String> = report
            .failed
            .iter()
            .map(|(path, error)| format!("{path}: {error}"))
            .collect();
        text.push_str(&format!("; failed: {}", failed.join("; ")));
    }
    if !report.skipped.is_empty() {
        text.push_str(&format!("; {} skipped", report.skipped.len()));
    }
    if report.interrupted {
        text.push_str("; interrupted");
    }
    text
}
