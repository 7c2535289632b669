//! One evaluation session: a flake loaded into a `nix repl`, deployments applied in it,
//! and the outputs the engine has provided, kept as files the Nix side reads.
//!
//! If the repl dies, hangs or is cancelled, the next request starts a new one and
//! restores the flake and the deployments; the outputs files survive in the session
//! directory, so nothing the engine provided is lost.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nixops4_eval::protocol::*;
use serde_json::{Map, Value};

use crate::nix_error;
use crate::repl::{Repl, ReplFailure, Reply, unquote_nix_string};
use errors::{expression_error, log_line, nix_failure, request_error};

mod errors;
mod flake;
mod options;
mod scripts;

const DRIVER: &str = include_str!("../../driver.nix");

pub struct Session {
    nix_command: Vec<String>,
    timeout: Duration,
    dir: tempfile::TempDir,
    repl: Option<Repl>,
    /// How failures behave in this Nix; probed when the first repl starts.
    nix: Option<(Strategy, String)>,
    flake: Option<Flake>,
    deployments: HashMap<String, Deployment>,
    next_binding: u64,
}

struct Flake {
    reference: String,
    /// The local directory the flake came from, to show positions in the user's files
    /// rather than in the store copy.
    local: Option<PathBuf>,
    /// Store file → the file positions in it are shown in; files are compared once.
    shown_files: RefCell<HashMap<String, String>>,
}

struct Deployment {
    /// The repl variable holding the current application of the deployment.
    binding: Option<String>,
    /// Outputs files live in `<outputs_root>/<round>/`. Nix versions that memoise
    /// failures also remember that a file was missing, so each fresh application
    /// ([`Strategy::Reapply`]) reads from a directory of its own.
    outputs_root: PathBuf,
    round: u64,
    /// File names of the outputs provided so far.
    provided: BTreeSet<String>,
    /// Under [`Strategy::Reapply`]: outputs arrived after something in the current
    /// application waited, so the next request needs a fresh application.
    stale: bool,
    waited_in_binding: bool,
}

impl Deployment {
    fn outputs_dir(&self) -> PathBuf {
        self.outputs_root.join(self.round.to_string())
    }

    /// Moves to a fresh outputs directory holding every output provided so far.
    fn next_round(&mut self) -> Result<(), EvalError> {
        let previous = self.outputs_dir();
        self.round += 1;
        let next = self.outputs_dir();
        std::fs::create_dir_all(&next)
            .map_err(|e| nix_failure(format!("creating {}: {e}", next.display())))?;
        for file in &self.provided {
            let (from, to) = (previous.join(file), next.join(file));
            std::fs::hard_link(&from, &to)
                .or_else(|_| std::fs::copy(&from, &to).map(drop))
                .map_err(|e| {
                    nix_failure(format!(
                        "copying {} to {}: {e}",
                        from.display(),
                        to.display()
                    ))
                })?;
        }
        Ok(())
    }
}

/// Asked by the request loop between slices of waiting for Nix.
pub type Cancelled<'a> = &'a dyn Fn() -> bool;

impl Session {
    pub fn new(nix_command: Vec<String>, timeout: Duration) -> std::io::Result<Session> {
        // Outputs files are many, small and short-lived: in memory (tmpfs) where there is
        // one, they cost a fraction of a disk file's creation.
        let dir = match std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|d| d.is_dir())
        {
            Some(runtime) => tempfile::Builder::new()
                .prefix("nixops4-eval-")
                .tempdir_in(runtime),
            None if Path::new("/dev/shm").is_dir() => tempfile::Builder::new()
                .prefix("nixops4-eval-")
                .tempdir_in("/dev/shm")
                .or_else(|_| tempfile::Builder::new().prefix("nixops4-eval-").tempdir()),
            None => tempfile::Builder::new().prefix("nixops4-eval-").tempdir(),
        }?;
        std::fs::write(dir.path().join("driver.nix"), DRIVER)?;
        Ok(Session {
            nix_command,
            timeout,
            dir,
            repl: None,
            nix: None,
            flake: None,
            deployments: HashMap::new(),
            next_binding: 0,
        })
    }

    pub fn handle(
        &mut self,
        request: Request,
        cancelled: Cancelled,
        log: &mut dyn FnMut(LogLine),
    ) -> Result<Response, EvalError> {
        match request {
            Request::LoadFlake { flake } => self.load_flake(&flake, cancelled, log),
            Request::ListResources { deployment } => {
                let binding = self.binding(&deployment, cancelled, log)?;
                let json = self.eval_json(&format!("_n4.resources {binding}"), cancelled, log)?;
                match json {
                    Ok(value) => Ok(Response::Resources {
                        resources: parse(value, "the resource list")?,
                    }),
                    Err(waiting) => Err(expression_error(format!(
                        "the list of resources depends on the outputs of {}; resources cannot be added or removed depending on outputs",
                        list(&waiting)
                    ))),
                }
            }
            Request::EvaluateResource {
                deployment,
                resource,
            } => {
                let binding = self.binding(&deployment, cancelled, log)?;
                let evaluation =
                    self.evaluate_one(&deployment, &binding, &resource, cancelled, log)?;
                Ok(Response::Resource(evaluation))
            }
            Request::ListScripts { deployment } => self.list_scripts(&deployment, cancelled, log),
            Request::ListOptions { deployment } => self.list_options(&deployment, cancelled, log),
            Request::EvaluateScript { deployment, script } => {
                self.evaluate_script(&deployment, &script, cancelled, log)
            }
            Request::StateReferences { deployment } => {
                let binding = self.binding(&deployment, cancelled, log)?;
                match self.eval_json(&format!("_n4.stateReferences {binding}"), cancelled, log)? {
                    Ok(value) => Ok(Response::StateReferences {
                        references: parse(value, "the state references")?,
                    }),
                    Err(_) => Err(expression_error(
                        "reading `state` references needs resource outputs".into(),
                    )),
                }
            }
            Request::EvaluateResources {
                deployment,
                resources,
            } => {
                let binding = self.binding(&deployment, cancelled, log)?;
                let items =
                    self.evaluate_many(&deployment, &binding, &resources, cancelled, log)?;
                Ok(Response::ResourceBatch { items })
            }
            Request::ProvideOutputs {
                deployment,
                resource,
                outputs,
            } => {
                self.provide_outputs(&deployment, &resource, &outputs)?;
                Ok(Response::OutputsProvided {})
            }
            Request::EvaluateOutput { deployment, name } => {
                let binding = self.binding(&deployment, cancelled, log)?;
                let expression = format!("_n4.output {binding} {}", nix_string(&name));
                let evaluation = match self.eval_in(&deployment, &expression, cancelled, log)? {
                    Ok(value) => Evaluation::Ready { value },
                    Err(resources) => Evaluation::Waiting { resources },
                };
                Ok(Response::Output(evaluation))
            }
            // The request loop runs builds beside the session (`build.rs`).
            Request::Build { .. } => {
                Err(request_error("a build is not an evaluation request".into()))
            }
        }
    }

    /// The session's directory, for files that Nix reads.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Evaluates one resource: ready, waiting, or an expression error with a position.
    fn evaluate_one(
        &mut self,
        deployment: &str,
        binding: &str,
        resource: &ResourcePath,
        cancelled: Cancelled,
        log: &mut dyn FnMut(LogLine),
    ) -> Result<Evaluation<ResourceSpec>, EvalError> {
        let expression = format!("_n4.resource {binding} {}", nix_list(&resource.0));
        match self.eval_in(deployment, &expression, cancelled, log) {
            Ok(Ok(value)) => Ok(Evaluation::Ready {
                value: self.spec(value)?,
            }),
            Ok(Err(resources)) => Ok(Evaluation::Waiting { resources }),
            Err(mut error) => {
                // Nix 2.8 gives no position for a `throw`; point at the resource.
                if error.kind == EvalErrorKind::Expression && error.position.is_none() {
                    let expression = format!("_n4.position {binding} {}", nix_list(&resource.0));
                    if let Ok(Ok(value)) = self.eval_json(&expression, cancelled, log) {
                        error.position = serde_json::from_value::<Option<Position>>(value)
                            .ok()
                            .flatten()
                            .map(|p| self.local_position(p));
                    }
                }
                Err(error)
            }
        }
    }

    /// Evaluates many resources in one round trip to Nix. Those that cannot be evaluated
    /// there (they wait, or fail) are evaluated one by one, for the reason why.
    fn evaluate_many(
        &mut self,
        deployment: &str,
        binding: &str,
        resources: &[ResourcePath],
        cancelled: Cancelled,
        log: &mut dyn FnMut(LogLine),
    ) -> Result<Vec<BatchItem>, EvalError> {
        let list: Vec<String> = resources.iter().map(|r| nix_list(&r.0)).collect();
        let expression = format!("_n4.resourceBatch {binding} [ {} ]", list.join(" "));
        let attempts: Vec<Option<String>> =
            match self.eval_in(deployment, &expression, cancelled, log) {
                Ok(Ok(value)) => parse(value, "a batch of resources")?,
                // Something no `tryEval` catches stopped the whole batch: go one by one.
                Ok(Err(_)) | Err(_) => vec![None; resources.len()],
            };
        let mut items = Vec::with_capacity(resources.len());
        for (resource, attempt) in resources.iter().zip(attempts) {
            let item = match attempt {
                Some(json) => {
                    let value: Value = serde_json::from_str(&json).map_err(|e| {
                        nix_failure(format!("the driver returned malformed JSON: {e}"))
                    })?;
                    BatchItem::Ready {
                        value: self.spec(value)?,
                    }
                }
                None => match self.evaluate_one(deployment, binding, resource, cancelled, log) {
                    Ok(Evaluation::Ready { value }) => BatchItem::Ready { value },
                    Ok(Evaluation::Waiting { resources }) => BatchItem::Waiting { resources },
                    // Nix failures too are this resource's: the next one gets a new repl.
                    Err(error) => BatchItem::Failed { error },
                },
            };
            items.push(item);
        }
        Ok(items)
    }

    fn spec(&self, value: Value) -> Result<ResourceSpec, EvalError> {
        let mut spec: ResourceSpec = parse(value, "a resource")?;
        spec.position = spec.position.map(|p| self.local_position(p));
        spec.needs = crate::build::unbuilt(std::mem::take(&mut spec.needs));
        Ok(spec)
    }

    fn load_flake(
        &mut self,
        flake: &str,
        cancelled: Cancelled,
        log: &mut dyn FnMut(LogLine),
    ) -> Result<Response, EvalError> {
        let (reference, local) = flake::flake_reference(flake)?;
        self.flake = Some(Flake {
            reference: reference.clone(),
            local: local.clone(),
            shown_files: RefCell::default(),
        });
        self.deployments.clear();
        let outputs = self.dir.path().join("outputs");
        if outputs.exists() {
            std::fs::remove_dir_all(&outputs)
                .map_err(|e| nix_failure(format!("clearing {}: {e}", outputs.display())))?;
        }
        // A fresh repl, so nothing of a previous flake stays memoised.
        self.repl = None;
        let lock_file = self.ensure_repl_locked(&reference, local, cancelled, log)?;
        let deployments: Vec<String> =
            match self.eval_json("_n4.deployments _flake", cancelled, log)? {
                Ok(value) => parse(value, "the deployment list")?,
                Err(_) => {
                    return Err(expression_error(
                        "listing the deployments needs resource outputs".into(),
                    ));
                }
            };
        let (strategy, nix_version) = self.nix.clone().expect("probed when the repl started");
        Ok(Response::Loaded(Loaded {
            flake: reference,
            deployments,
            strategy,
            nix_version,
            lock_file,
        }))
    }

    fn provide_outputs(
        &mut self,
        deployment: &str,
        resource: &ResourcePath,
        outputs: &Map<String, Value>,
    ) -> Result<(), EvalError> {
        let state = self.deployment(deployment)?;
        let dir = state.outputs_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| nix_failure(format!("creating the outputs directory: {e}")))?;
        let name = format!("{}.json", nix_error::outputs_key(resource));
        let file = dir.join(&name);
        let text = serde_json::to_string(outputs)
            .map_err(|e| request_error(format!("outputs of {resource}: {e}")))?;
        // Written in place: Nix reads outputs only while it evaluates a request, and
        // requests run one at a time.
        std::fs::write(&file, text)
            .map_err(|e| nix_failure(format!("writing {}: {e}", file.display())))?;
        state.provided.insert(name);
        if state.waited_in_binding {
            state.stale = true;
        }
        Ok(())
    }

    fn deployment(&mut self, name: &str) -> Result<&mut Deployment, EvalError> {
        if self.flake.is_none() {
            return Err(request_error(
                "no flake is loaded; send loadFlake first".into(),
            ));
        }
        let outputs_root = self
            .dir
            .path()
            .join("outputs")
            .join(nix_error::outputs_key(&ResourcePath(vec![name.to_owned()])));
        Ok(self
            .deployments
            .entry(name.to_owned())
            .or_insert_with(|| Deployment {
                binding: None,
                outputs_root,
                round: 0,
                provided: BTreeSet::new(),
                stale: false,
                waited_in_binding: false,
            }))
    }

    /// The repl variable holding the deployment's current application, creating a fresh
    /// one when there is none (first use, new repl) or the strategy needs one.
    fn binding(
        &mut self,
        name: &str,
        cancelled: Cancelled,
        log: &mut dyn FnMut(LogLine),
    ) -> Result<String, EvalError> {
        self.ensure_repl(cancelled, log)?;
        let reapply = matches!(self.nix, Some((Strategy::Reapply, _)));
        let state = self.deployment(name)?;
        if let Some(binding) = &state.binding
            && !(reapply && state.stale)
        {
            return Ok(binding.clone());
        }
        if reapply && state.binding.is_some() {
            state.next_round()?;
        }
        let outputs_dir = state.outputs_dir().display().to_string();
        let binding = format!("_d{}", self.next_binding);
        self.next_binding += 1;
        let expression = format!(
            "{binding} = _n4.instance _flake {} {}",
            nix_string(name),
            nix_string(&outputs_dir)
        );
        self.eval_raw(&expression, cancelled, log)?;
        let state = self.deployment(name)?;
        state.binding = Some(binding.clone());
        state.stale = false;
        state.waited_in_binding = false;
        Ok(binding)
    }

    /// Evaluates in a deployment's application, noting when something waited.
    fn eval_in(
        &mut self,
        deployment: &str,
        expression: &str,
        cancelled: Cancelled,
        log: &mut dyn FnMut(LogLine),
    ) -> Result<Result<Value, Vec<ResourcePath>>, EvalError> {
        let result = self.eval_json(expression, cancelled, log)?;
        if result.is_err() {
            self.deployment(deployment)?.waited_in_binding = true;
        }
        Ok(result)
    }

    /// Evaluates an expression that yields a JSON string: the value, or the resources it
    /// waits for.
    fn eval_json(
        &mut self,
        expression: &str,
        cancelled: Cancelled,
        log: &mut dyn FnMut(LogLine),
    ) -> Result<Result<Value, Vec<ResourcePath>>, EvalError> {
        match self.eval_raw(expression, cancelled, log)? {
            Reply::Value(printed) => {
                let json = unquote_nix_string(&printed).ok_or_else(|| {
                    nix_failure(format!(
                        "Nix printed something that is not a string: {printed}"
                    ))
                })?;
                let value = serde_json::from_str(&json).map_err(|e| {
                    nix_failure(format!("Nix printed malformed JSON ({e}): {json}"))
                })?;
                Ok(Ok(value))
            }
            Reply::Error(text) => {
                let waiting = self.waiting_for(&text);
                if !waiting.is_empty() {
                    return Ok(Err(waiting));
                }
                Err(self.expression_error_from(&text))
            }
        }
    }

    fn eval_raw(
        &mut self,
        expression: &str,
        cancelled: Cancelled,
        log: &mut dyn FnMut(LogLine),
    ) -> Result<Reply, EvalError> {
        self.ensure_repl(cancelled, log)?;
        let repl = self.repl.as_mut().expect("just started");
        let result = repl.eval(expression, self.timeout, cancelled, &mut |line| {
            log(log_line(line))
        });
        result.map_err(|failure| {
            // The repl is gone or unusable: the next request starts another.
            self.repl = None;
            for state in self.deployments.values_mut() {
                state.binding = None;
            }
            nix_failure(failure.to_string())
        })
    }

    /// Starts the repl if there is none: loads the driver, probes how Nix treats failed
    /// values, and loads the flake again after a restart.
    fn ensure_repl(
        &mut self,
        cancelled: Cancelled,
        log: &mut dyn FnMut(LogLine),
    ) -> Result<(), EvalError> {
        if self.repl.is_some() {
            return Ok(());
        }
        let mut repl = Repl::start(&self.nix_command).map_err(|e| nix_failure(e.to_string()))?;
        let mut run = |repl: &mut Repl, expression: &str| -> Result<Reply, EvalError> {
            repl.eval(expression, self.timeout, cancelled, &mut |line| {
                log(log_line(line))
            })
            .map_err(|failure: ReplFailure| nix_failure(failure.to_string()))
        };
        let driver = self.dir.path().join("driver.nix");
        run(
            &mut repl,
            &format!("_n4 = import {}", nix_string(&driver.display().to_string())),
        )?;
        if self.nix.is_none() {
            self.nix = Some(probe(&mut repl, self.dir.path(), &mut run)?);
        }
        if let Some(flake) = &self.flake {
            run(
                &mut repl,
                &format!(
                    "_flake = builtins.getFlake {}",
                    nix_string(&flake.reference)
                ),
            )?;
            if let Reply::Error(text) = run(&mut repl, "_flake.outPath")? {
                return Err(self.expression_error_from(&text));
            }
        }
        for state in self.deployments.values_mut() {
            state.binding = None;
        }
        self.repl = Some(repl);
        Ok(())
    }
}

/// Finds out whether this Nix remembers a failed value: forces a value that fails, makes
/// it succeed, and forces it again.
fn probe(
    repl: &mut Repl,
    dir: &Path,
    run: &mut dyn FnMut(&mut Repl, &str) -> Result<Reply, EvalError>,
) -> Result<(Strategy, String), EvalError> {
    let version = match run(repl, "builtins.nixVersion")? {
        Reply::Value(printed) => unquote_nix_string(&printed).unwrap_or(printed),
        Reply::Error(text) => {
            return Err(nix_failure(format!("cannot read the Nix version: {text}")));
        }
    };
    let file = dir.join("probe.json");
    let _ = std::fs::remove_file(&file);
    run(
        repl,
        &format!(
            "_probe = builtins.fromJSON (builtins.readFile {})",
            nix_string(&file.display().to_string())
        ),
    )?;
    if let Reply::Value(printed) = run(repl, "_probe")? {
        return Err(nix_failure(format!(
            "the probe read a file that does not exist: {printed}"
        )));
    }
    std::fs::write(&file, "1")
        .map_err(|e| nix_failure(format!("writing {}: {e}", file.display())))?;
    let strategy = match run(repl, "_probe")? {
        Reply::Value(_) => Strategy::Persistent,
        Reply::Error(_) => Strategy::Reapply,
    };
    Ok((strategy, version))
}

pub(crate) fn nix_string(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace("${", "\\${")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

fn nix_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| nix_string(s)).collect();
    format!("[ {} ]", inner.join(" "))
}

fn parse<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T, EvalError> {
    serde_json::from_value(value).map_err(|e| {
        nix_failure(format!(
            "the driver returned {what} that does not parse: {e}"
        ))
    })
}

fn list(paths: &[ResourcePath]) -> String {
    paths
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix_strings_are_escaped() {
        assert_eq!(nix_string(r#"a"b\c${d}"#), r#""a\"b\\c\${d}""#);
        assert_eq!(nix_list(&["x".into(), "y z".into()]), r#"[ "x" "y z" ]"#);
    }
}
