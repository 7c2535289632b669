//! What needs the deployment evaluated, in trusted workspaces only: plan previews after a
//! save (code lenses, `nixops4/plan`, evaluation errors as diagnostics), with the
//! deployment's scripts and its module options (completion and hover), and the jobs that
//! apply, destroy, refresh, run operations and prepare scripts. Every job runs the engine exactly as the
//! headless `nixops4-lsp --apply` does ([`apply`]); only how it asks and reports differs.
//!
//! Jobs run on the server's runtime beside the requests; the engine's work is waiting on
//! `nix` and provider processes, so completion and hover are answered meanwhile. The state
//! lock keeps two applies of one state apart; shutting down interrupts running jobs (no new
//! provider call starts) and waits until what they started is recorded.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use nixops4_analysis::options::ModuleOption;
use nixops4_core::engine::{ApplyReport, Engine, EngineOptions, RefreshReport};
use nixops4_core::error::EngineError;
use nixops4_core::events::EventSink;
use nixops4_core::plan::Plan;
use nixops4_core::scripts::PreparedScript;
use nixops4_core::{DeclaredScript, ResourcePath};
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
pub struct Runner {
    plans: DashMap<Deployment, PlanStatus>,
    /// The scripts each deployment declared when it was last planned, or why they could
    /// not be listed.
    scripts: DashMap<Deployment, Result<Arc<Vec<DeclaredScript>>, String>>,
    /// The options of each module-system deployment as of its latest plan that could list
    /// them, as the analysis takes them.
    options: DashMap<Deployment, Arc<Vec<ModuleOption>>>,
    /// What loading a deployment's flake did to its `flake.lock`, to tell the user once.
    lock_notes: DashMap<Deployment, String>,
    /// The plan being made per deployment, aborted when a newer one is asked for.
    planning: DashMap<Deployment, tokio::task::AbortHandle>,
    /// Interrupt flags of running jobs, by progress token.
    interrupts: DashMap<String, Arc<AtomicBool>>,
    running: AtomicUsize,
    idle: Notify,
    /// Told each time a deployment's plan is stored, ready or failed.
    on_plan: Box<dyn Fn(&Deployment) + Send + Sync>,
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
    pub fn new(on_plan: impl Fn(&Deployment) + Send + Sync + 'static) -> Runner {
        Runner {
            plans: DashMap::new(),
            scripts: DashMap::new(),
            options: DashMap::new(),
            lock_notes: DashMap::new(),
            planning: DashMap::new(),
            interrupts: DashMap::new(),
            running: AtomicUsize::new(0),
            idle: Notify::new(),
            on_plan: Box::new(on_plan),
        }
    }

    pub fn plan(&self, deployment: &Deployment) -> Option<PlanStatus> {
        self.plans.get(deployment).map(|p| p.clone())
    }

    /// The deployment's scripts as of its latest plan.
    pub fn scripts(
        &self,
        deployment: &Deployment,
    ) -> Option<Result<Arc<Vec<DeclaredScript>>, String>> {
        self.scripts.get(deployment).map(|s| s.clone())
    }

    /// The deployment's module options (none for a plain deployment, or before a plan).
    pub fn options(&self, deployment: &Deployment) -> Arc<Vec<ModuleOption>> {
        self.options
            .get(deployment)
            .map(|o| o.clone())
            .unwrap_or_default()
    }

    /// What the latest plan's load did to the flake's `flake.lock`, if anything and not
    /// told yet.
    pub fn take_lock_note(&self, deployment: &Deployment) -> Option<String> {
        self.lock_notes.remove(deployment).map(|(_, note)| note)
    }

    /// Makes a plan after [`PLAN_DELAY`]. Run it as a task given to [`Runner::supersede`],
    /// so that a newer request aborts it (and the evaluator it started).
    pub async fn plan_after_delay(&self, deployment: &Deployment) {
        tokio::time::sleep(PLAN_DELAY).await;
        self.plans.insert(deployment.clone(), PlanStatus::Planning);
        if let Err(error) = self.plan_now(deployment).await {
            self.plans
                .insert(deployment.clone(), PlanStatus::Failed(error.to_string()));
            (self.on_plan)(deployment);
        }
    }

    /// Makes `task` the deployment's plan in the making, aborting the one before.
    pub fn supersede(&self, deployment: Deployment, task: tokio::task::AbortHandle) {
        if let Some(previous) = self.planning.insert(deployment, task) {
            previous.abort();
        }
    }

    /// Plans now, and keeps the plan and the scripts for the lenses (telling whoever
    /// listens), and the module options for completion and hover. Options that cannot be
    /// listed now (the flake is being edited) stay as they were last listed.
    pub async fn plan_now(&self, deployment: &Deployment) -> Result<Plan, EngineError> {
        let engine = Engine::start(deployment.options(None, Arc::default())).await?;
        if let Some(change) = engine.lock_file_change() {
            self.lock_notes
                .insert(deployment.clone(), change.to_string());
        }
        let plan = engine.plan().await;
        let scripts = engine.scripts().await;
        let options = engine.module_options().await;
        engine.shutdown().await;
        if let Ok(options) = options {
            let shown = options
                .into_iter()
                .map(|option| shown_option(&deployment.flake_dir, option))
                .collect();
            self.options.insert(deployment.clone(), Arc::new(shown));
        }
        self.scripts.insert(
            deployment.clone(),
            scripts.map(Arc::new).map_err(|e| e.to_string()),
        );
        if let Ok(plan) = &plan {
            self.plans.insert(
                deployment.clone(),
                PlanStatus::Ready(Arc::new(plan.clone())),
            );
            (self.on_plan)(deployment);
        }
        plan
    }

    /// Runs a job whose interrupt flag is also known under `token` (its progress).
    pub async fn job<T, F: Future<Output = T>>(
        &self,
        token: &str,
        interrupt: Arc<AtomicBool>,
        work: impl FnOnce(Arc<AtomicBool>) -> F,
    ) -> T {
        self.running.fetch_add(1, Ordering::SeqCst);
        let _guard = JobGuard(self);
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

/// An option as the analysis takes it, with its declarations as `file:line:column`,
/// relative to the flake's directory when they are in it.
fn shown_option(flake_dir: &Path, option: nixops4_core::ModuleOption) -> ModuleOption {
    let declarations = option
        .declarations
        .into_iter()
        .map(|declared| {
            let file = Path::new(&declared.file);
            let mut shown = file
                .strip_prefix(flake_dir)
                .unwrap_or(file)
                .display()
                .to_string();
            if let Some(line) = declared.line {
                shown.push_str(&format!(":{line}"));
                if let Some(column) = declared.column {
                    shown.push_str(&format!(":{column}"));
                }
            }
            shown
        })
        .collect();
    ModuleOption {
        path: option.path,
        description: option.description,
        type_description: option.type_description,
        default: option.default,
        example: option.example,
        declarations,
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

/// What to run for a script, with the outputs recorded in state.
pub async fn prepare_script(
    deployment: &Deployment,
    script: &ResourcePath,
    args: &[String],
) -> Result<PreparedScript, EngineError> {
    let engine = Engine::start(deployment.options(None, Arc::default())).await?;
    let prepared = engine.prepare_script(script, args).await;
    engine.shutdown().await;
    prepared
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
