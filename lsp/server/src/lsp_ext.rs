//! NixOps4's additions to LSP, typed once: the `nixops4/plan` and `nixops4/documentText`
//! requests, the `nixops4/planChanged` notification, and the `workspace/executeCommand`
//! commands with their argument and results. `editors/vscode/src/lsp_ext.ts` is generated
//! from these types by this module's test, so the two cannot drift apart.
//!
//! These are wire types only: what they say is computed elsewhere (labels in
//! [`crate::render`], conversions from the engine's types in [`crate::to_proto`]).

use std::collections::BTreeMap;

use lsp_types::Uri;
use lsp_types::notification::Notification;
use lsp_types::request::Request;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[cfg(test)]
mod typescript;

/// `nixops4/plan`: the latest plan of the document's deployment, made now if there is none.
pub enum PlanRequest {}

impl Request for PlanRequest {
    type Params = PlanParams;
    type Result = PlanResult;
    const METHOD: &'static str = "nixops4/plan";
}

/// `nixops4/documentText`: the server's copy of a document, for clients and tests that
/// check that no edit was lost or misapplied.
pub enum DocumentTextRequest {}

impl Request for DocumentTextRequest {
    type Params = DocumentTextParams;
    type Result = Option<DocumentText>;
    const METHOD: &'static str = "nixops4/documentText";
}

/// `nixops4/planChanged`: a deployment has a new plan (after a save, a job, or a
/// `nixops4/plan` that made one); ask `nixops4/plan` for it.
pub enum PlanChanged {}

impl Notification for PlanChanged {
    type Params = PlanChangedParams;
    const METHOD: &'static str = "nixops4/planChanged";
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct PlanParams {
    /// A document of the deployment.
    #[cfg_attr(test, schemars(with = "String"))]
    pub uri: Uri,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct DocumentTextParams {
    #[cfg_attr(test, schemars(with = "String"))]
    pub uri: Uri,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct DocumentText {
    pub version: i32,
    pub text: String,
    /// Whether the server's line starts, by which it reads positions, are this text's.
    pub analysed: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct PlanChangedParams {
    /// The deployment's name.
    pub deployment: String,
    /// The directory of its flake.
    pub flake: String,
}

/// The answer to `nixops4/plan` (and the result of the `nixops4.plan` command).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct PlanResult {
    pub deployment: String,
    /// The directory of the deployment's flake.
    pub flake: String,
    pub summary: Summary,
    /// The summary as every client shows it: `+2 ~1 -/+0 -0`, with `, 1 to build` when
    /// the apply builds derivations first.
    pub summary_text: String,
    pub plan: Plan,
    /// The custom operations of each resource the document declares, from its type's schema.
    pub operations: Vec<ResourceOperations>,
    /// The deployment's scripts (`nixops4.runScript`), by path: `["backup"]`.
    pub scripts: Vec<Vec<String>>,
}

/// How many resources each kind of change touches. Resources created again count as
/// created, and those forgotten as deleted; their labels say which.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub unchanged: usize,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Plan {
    pub deployment: String,
    pub resources: Vec<PlannedResource>,
    /// Resources that could not be planned.
    pub problems: Vec<Problem>,
    /// Identifies the expression and state the plan was made from.
    pub fingerprint: String,
    /// The derivations an apply builds before it calls the providers that need them.
    pub builds: Vec<PlannedBuild>,
}

/// A derivation an apply builds, and the resources that need it.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct PlannedBuild {
    /// `/nix/store/<hash>-<name>.drv`.
    pub derivation: String,
    /// `<name>`.
    pub name: String,
    /// Their paths: `["host", "key"]`.
    pub resources: Vec<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct PlannedResource {
    /// Its path: `["host", "key"]`.
    pub resource: Vec<String>,
    #[serde(rename = "type")]
    pub type_name: String,
    pub action: Action,
    /// Input by input, for updates and replacements.
    pub changes: Vec<Change>,
    /// Whether the inputs are known now; if not, they wait on `waitingFor`.
    pub inputs_known: bool,
    pub waiting_for: Vec<Vec<String>>,
    /// Where the resource is declared, when it still is.
    pub position: Option<SourcePosition>,
    /// What happens to it, as every client shows it: `+ create`, `~ update: contents`,
    /// `-/+ replace: name`, `- delete`, `no changes`, with `, waiting for resources.a`.
    pub label: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum Action {
    Create,
    Update,
    Replace,
    /// Created again over what is there, deleting nothing (upstream v0, no state).
    Recreate,
    Delete,
    /// Removed from state without being deleted (upstream v0 cannot delete).
    Forget,
    NoChange,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Change {
    pub input: String,
    /// Absent: the input is new.
    pub before: Option<Value>,
    /// Absent: the input is removed.
    pub after: Option<Value>,
    /// The provider cannot change this input in place.
    pub forces_replacement: bool,
}

/// A resource whose evaluation failed, or that waits on one that did.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Problem {
    pub resource: Vec<String>,
    pub message: String,
    pub position: Option<SourcePosition>,
}

/// A place in a file of the flake, as Nix reports it (1-based).
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct SourcePosition {
    /// Relative to the flake's directory.
    pub file: String,
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ResourceOperations {
    pub resource: Vec<String>,
    pub operations: Vec<String>,
}

/// The commands of `workspace/executeCommand`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Apply,
    Destroy,
    Refresh,
    RunOperation,
    Plan,
    RunScript,
}

impl Command {
    pub const ALL: [Command; 6] = [
        Command::Apply,
        Command::Destroy,
        Command::Refresh,
        Command::RunOperation,
        Command::Plan,
        Command::RunScript,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Command::Apply => "nixops4.apply",
            Command::Destroy => "nixops4.destroy",
            Command::Refresh => "nixops4.refresh",
            Command::RunOperation => "nixops4.runOperation",
            Command::Plan => "nixops4.plan",
            Command::RunScript => "nixops4.runScript",
        }
    }

    pub fn named(name: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether it acts on exactly one resource, given in `targets`.
    pub fn needs_one_target(self) -> bool {
        matches!(self, Command::Destroy | Command::RunOperation)
    }
}

/// The one argument of every command: the document it is about, and what to act on.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct CommandArguments {
    /// A document of the deployment.
    #[cfg_attr(test, schemars(with = "String"))]
    pub uri: Uri,
    /// Resources to act on (and, for apply, what they depend on); none: the whole deployment.
    #[serde(default)]
    pub targets: Vec<Target>,
    /// `nixops4.runOperation`: which operation; absent: the server asks.
    #[serde(default)]
    pub operation: Option<String>,
    /// `nixops4.runOperation`: the operation's arguments.
    #[serde(default)]
    pub arguments: Map<String, Value>,
    /// The client asked the user already: do not ask again.
    #[serde(default)]
    pub confirmed: bool,
    /// `nixops4.runScript`: which script, by path (`["backup"]`).
    #[serde(default)]
    pub script: Option<Target>,
    /// `nixops4.runScript`: arguments for the script, after its declared ones.
    #[serde(default)]
    pub script_args: Vec<String>,
}

/// A resource's (or a script's) path, `["host", "key"]`: a non-empty list of non-empty
/// names. Anything else is refused when the command's argument is read, before any work
/// starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Target(Vec<String>);

impl TryFrom<Vec<String>> for Target {
    type Error = &'static str;

    fn try_from(names: Vec<String>) -> Result<Target, Self::Error> {
        if names.is_empty() {
            return Err("a target is a resource's path, a non-empty list of names");
        }
        if names.iter().any(String::is_empty) {
            return Err("a target's names are not empty");
        }
        Ok(Target(names))
    }
}

impl Target {
    pub fn into_names(self) -> Vec<String> {
        self.0
    }
}

/// What `nixops4.apply` returns: what was done, or `{ "applied": false }` when the user
/// declined.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum ApplyResult {
    Applied(JobReport),
    Declined { applied: bool },
}

/// What `nixops4.destroy` returns: what was done, or `{ "destroyed": false }` when the
/// user declined.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum DestroyResult {
    Destroyed(JobReport),
    Declined { destroyed: bool },
}

/// What an apply or destroy did, resources keyed by their dotted path.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct JobReport {
    pub applied: BTreeMap<String, Action>,
    pub unchanged: usize,
    pub failed: BTreeMap<String, String>,
    pub skipped: BTreeMap<String, String>,
    /// Cancelled: nothing new was started after that, what ran is recorded.
    pub interrupted: bool,
}

/// What `nixops4.refresh` returns.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct RefreshResult {
    /// Resources whose outputs changed outside NixOps4.
    pub changed: Vec<Vec<String>>,
    /// Resources that no longer exist; their records are removed.
    pub gone: Vec<Vec<String>>,
    pub unchanged: usize,
    /// Resources whose provider cannot read them.
    pub unreadable: Vec<Vec<String>>,
    pub failed: Vec<(Vec<String>, String)>,
}

/// What `nixops4.runOperation` returns.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct OperationResult {
    /// Whether it ran (not when the user declined or chose none).
    pub ran: bool,
    /// The operation's result, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

/// What `nixops4.runScript` returns.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ScriptResult {
    /// The script's exit code; absent when a signal ended it (cancelled, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_non_empty_paths_of_non_empty_names() {
        let read = |value: Value| {
            serde_json::from_value::<CommandArguments>(value).map(|a| a.targets.len())
        };
        assert_eq!(
            read(serde_json::json!({"uri": "file:///f.nix", "targets": [["a", "b"]]})).ok(),
            Some(1)
        );
        for bad in [
            serde_json::json!([[]]),
            serde_json::json!([[""]]),
            serde_json::json!([["a", ""]]),
            serde_json::json!(["a"]),
        ] {
            let error = read(serde_json::json!({"uri": "file:///f.nix", "targets": bad}));
            assert!(error.is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn command_names_round_trip() {
        for command in Command::ALL {
            assert_eq!(Command::named(command.name()), Some(command));
        }
    }
}
