//! Messages between the engine and `nixops4-eval`, one JSON object per line.
//!
//! The engine sends `{"id": N, "request": {...}}`; the evaluator answers each with
//! `{"id": N, "result": {...}}` or `{"id": N, "error": {...}}`, and may send log lines
//! `{"log": {...}}` (Nix traces and warnings) at any time. Replies carry the request's id
//! and may come in any order. This protocol is internal: the engine and the evaluator of
//! one NixOps4 version are used together.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A resource's place in the deployment: `["host", "key"]` for `resources.host.key`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResourcePath(pub Vec<String>);

impl ResourcePath {
    /// Parses `host.key`. Names containing dots cannot be written this way.
    pub fn parse_dotted(text: &str) -> ResourcePath {
        ResourcePath(text.split('.').map(str::to_owned).collect())
    }
}

impl fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            let plain = !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '\''))
                && !segment.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '\'');
            if plain {
                f.write_str(segment)?;
            } else {
                write!(f, "{}", Value::String(segment.clone()))?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestEnvelope {
    pub id: u64,
    pub request: Request,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Request {
    /// Loads a flake (a directory, `path:` or `git+file:` reference) and lists its
    /// deployments. Loading again replaces the flake and forgets all outputs.
    LoadFlake { flake: String },
    /// Lists the resources of a deployment, nested ones included.
    ListResources { deployment: String },
    /// Evaluates one resource: its provider, type, inputs and state, or what it waits for.
    EvaluateResource {
        deployment: String,
        resource: ResourcePath,
    },
    /// Lists the scripts of a deployment, nested ones included, with where each is
    /// declared. Needs no resource outputs.
    ListScripts { deployment: String },
    /// Lists the options of a module-system deployment (`lib.moduleDeployment`), for the
    /// language server's completion and hover; a deployment written as a plain function
    /// has none. Needs no resource outputs.
    ListOptions { deployment: String },
    /// Evaluates one script: what to run and the outputs it gets, or what it waits for.
    EvaluateScript {
        deployment: String,
        /// Its place in the deployment, as a resource's: `["host", "ssh"]`.
        script: ResourcePath,
    },
    /// Evaluates many resources at once, each as `evaluateResource` would; an expression
    /// error of one is its own item, not the request's error.
    EvaluateResources {
        deployment: String,
        resources: Vec<ResourcePath>,
    },
    /// The state resource each resource names, if any.
    StateReferences { deployment: String },
    /// Makes a resource's outputs available to everything that refers to them.
    ProvideOutputs {
        deployment: String,
        resource: ResourcePath,
        outputs: Map<String, Value>,
    },
    /// Evaluates `outputs.<name>` of a deployment.
    EvaluateOutput { deployment: String, name: String },
    /// Builds these derivation outputs in one Nix build, beside evaluation requests;
    /// `build` lines report each derivation as Nix starts building it.
    Build { derivations: Vec<Derivation> },
}

/// A line from the evaluator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ResponseLine {
    Result {
        id: u64,
        result: Response,
    },
    Error {
        id: u64,
        error: EvalError,
    },
    Log {
        log: LogLine,
    },
    /// Progress of the `build` request `id`.
    Build {
        id: u64,
        build: BuildProgress,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Response {
    Loaded(Loaded),
    Resources { resources: Vec<ResourcePath> },
    Resource(Evaluation<ResourceSpec>),
    ResourceBatch { items: Vec<BatchItem> },
    Scripts { scripts: Vec<DeclaredScript> },
    Options { options: Vec<ModuleOption> },
    Script(Evaluation<ScriptSpec>),
    StateReferences { references: Vec<StateReference> },
    OutputsProvided {},
    Output(Evaluation<Value>),
    Built { results: Vec<BuildResult> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Loaded {
    /// The flake reference as Nix resolved it.
    pub flake: String,
    pub deployments: Vec<String>,
    /// The evaluation strategy chosen for this Nix (see `docs/evaluation.md`).
    pub strategy: Strategy,
    pub nix_version: String,
    /// The flake's `flake.lock`, when loading it had to create or complete it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_file: Option<LockFileChange>,
}

/// A `flake.lock` that loading wrote, as `nix build` would: the flake has inputs that
/// were not locked (no lock file yet, or an input added since).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockFileChange {
    /// The lock file.
    pub path: String,
    /// Whether there was none before (else inputs it lacked were added).
    pub created: bool,
    /// The flake is in a Git work tree, where Nix sees only files Git knows.
    pub git: bool,
}

impl fmt::Display for LockFileChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.created {
            return write!(
                f,
                "updated {} with the inputs it did not lock yet",
                self.path
            );
        }
        write!(f, "created {} to lock the flake's inputs", self.path)?;
        if self.git {
            let file = std::path::Path::new(&self.path);
            let dir = file
                .parent()
                .map_or(".".into(), |d| d.display().to_string());
            write!(
                f,
                "; add it to Git, which is where Nix looks for a flake's files: `git -C {dir} add flake.lock`"
            )?;
        }
        Ok(())
    }
}

/// How blocked values are retried, chosen by probing the Nix in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Strategy {
    /// Nix forgets failures: one application of each deployment serves the whole session.
    Persistent,
    /// Nix memoises failures: a fresh application per round for what was blocked.
    Reapply,
}

/// A value, or the resources whose outputs it needs first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase", deny_unknown_fields)]
pub enum Evaluation<T> {
    Ready { value: T },
    Waiting { resources: Vec<ResourcePath> },
}

/// A resource and the state resource it names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateReference {
    pub resource: ResourcePath,
    pub state: Option<ResourcePath>,
}

/// One resource of an `evaluateResources` request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase", deny_unknown_fields)]
pub enum BatchItem {
    Ready { value: ResourceSpec },
    Waiting { resources: Vec<ResourcePath> },
    Failed { error: EvalError },
}

/// Everything the engine needs to apply a resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceSpec {
    /// As written: `local.file`.
    #[serde(rename = "type")]
    pub type_name: String,
    pub provider: ProviderSpec,
    /// The type within the provider: `file`.
    pub resource_type: String,
    pub inputs: Map<String, Value>,
    /// The state resource it records into, if any.
    pub state: Option<ResourcePath>,
    /// Resources to apply first, besides those its inputs refer to.
    pub depends_on: Vec<ResourcePath>,
    /// Where the resource is declared.
    pub position: Option<Position>,
    /// The derivation outputs its inputs and its provider refer to (their string
    /// context) that are not in the store yet: to build before its provider is called.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<Derivation>,
}

/// A store derivation and some of its outputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derivation {
    /// `/nix/store/<hash>-<name>.drv`.
    pub path: String,
    /// Output name → its store path.
    pub outputs: BTreeMap<String, String>,
}

impl Derivation {
    /// The name people know it by: `hello` for `/nix/store/<hash>-hello.drv`.
    pub fn name(&self) -> &str {
        derivation_name(&self.path)
    }
}

/// `hello` for `/nix/store/<hash>-hello.drv`; the path itself when it is not one.
pub fn derivation_name(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    let file = file.strip_suffix(".drv").unwrap_or(file);
    match file.split_once('-') {
        Some((hash, name)) if hash.len() == 32 && !name.is_empty() => name,
        _ => file,
    }
}

/// What became of one derivation of a `build` request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildResult {
    /// The derivation's path.
    pub path: String,
    /// Why its outputs are not in the store: the build's error and the tail of its log.
    /// None: they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a running `build` request reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum BuildProgress {
    /// Nix started building this derivation (one asked for, or one it needs).
    Started { derivation: String },
}

/// A script of a deployment (`scripts.<name>`), and where it is declared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredScript {
    pub script: ResourcePath,
    pub position: Option<Position>,
}

/// An option of a module-system deployment, as `lib.optionAttrSetToDocList` walks them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleOption {
    /// `["customers", "<name>", "domain"]`: `<name>` stands for any attribute name of an
    /// `attrsOf`, `*` for any element of a `listOf`.
    pub path: Vec<String>,
    /// Plain text (Markdown, as the module wrote it), without `mdDoc` or literal wrappers.
    pub description: Option<String>,
    /// The type's description: `string`, `attribute set of (submodule)`.
    #[serde(rename = "type")]
    pub type_description: Option<String>,
    /// The default as text, when it is literal text or a plain value.
    pub default: Option<String>,
    pub example: Option<String>,
    pub declarations: Vec<OptionDeclaration>,
}

/// Where an option is declared: the file, and the line and column where the nixpkgs lib
/// records them (`declarationPositions`). Files in the flake's store copy are mapped back to
/// the flake's directory, as [`Position`]s are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionDeclaration {
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

/// What to run for a script, and the resource outputs it gets.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScriptSpec {
    /// The program: a store path, or any executable's path.
    pub program: String,
    /// Arguments before those the user gives.
    pub args: Vec<String>,
    /// By the name it gets as an environment variable; may hold secrets.
    pub outputs: Map<String, Value>,
    /// The derivation outputs that the program, its arguments and its outputs refer to
    /// (their string context): to build before it runs.
    pub needs: Vec<Derivation>,
    pub position: Option<Position>,
}

/// Names the outputs, never their values, which may be secret.
impl fmt::Debug for ScriptSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptSpec")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("outputs", &self.outputs.keys().collect::<Vec<_>>())
            .field("needs", &self.needs)
            .field("position", &self.position)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderSpec {
    /// The part of `type` before the dot: `local`.
    pub name: String,
    /// Declared in the deployment's `providers.<name>`; none for the built-in `local`.
    pub executable: Option<String>,
    pub args: Vec<String>,
}

/// A place in a Nix file. Files inside a flake's store copy are mapped back to the
/// flake's directory when it is a local one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A failed request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvalError {
    pub kind: EvalErrorKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvalErrorKind {
    /// The deployment expression is wrong: syntax, evaluation error, contract violation.
    Expression,
    /// Nix itself failed: it could not start, died, timed out or printed nonsense. The
    /// evaluator restarts it for the next request.
    Nix,
    /// The request itself is wrong: no flake loaded, malformed message.
    Request,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.position {
            Some(position) => write!(f, "{position}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for EvalError {}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// `builtins.trace` output.
    Trace,
    Warning,
    Info,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_display_like_nix_attribute_paths() {
        assert_eq!(
            ResourcePath::parse_dotted("host.key").to_string(),
            "host.key"
        );
        let odd = ResourcePath(vec!["files".into(), "a.txt".into()]);
        assert_eq!(odd.to_string(), "files.\"a.txt\"");
    }

    #[test]
    fn derivations_are_named_without_hash_and_extension() {
        assert_eq!(
            derivation_name("/nix/store/qd32qq7mvj1j2wajgis51sxhj03s04x8-hello-x.drv"),
            "hello-x"
        );
        assert_eq!(derivation_name("odd.drv"), "odd");
    }

    #[test]
    fn response_lines_round_trip() {
        for line in [
            r#"{"id":1,"result":{"resources":{"resources":[["a"],["host","key"]]}}}"#,
            r#"{"id":2,"result":{"resource":{"status":"waiting","resources":[["a"]]}}}"#,
            r#"{"id":3,"error":{"kind":"expression","message":"m","position":{"file":"f","line":1,"column":2}}}"#,
            r#"{"log":{"level":"trace","message":"hello"}}"#,
            r#"{"id":4,"build":{"started":{"derivation":"/nix/store/x.drv"}}}"#,
            r#"{"id":4,"result":{"built":{"results":[{"path":"/nix/store/x.drv","error":"e"}]}}}"#,
        ] {
            let parsed: ResponseLine = serde_json::from_str(line).unwrap();
            assert_eq!(serde_json::to_string(&parsed).unwrap(), line);
        }
    }
}
