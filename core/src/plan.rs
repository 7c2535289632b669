//! Plans: what an apply would do to each resource, decided by comparing the evaluated
//! deployment with the recorded state and the providers' schemas.
//!
//! Knows nothing about terminals; front ends render a [`Plan`] themselves.

use std::collections::{BTreeMap, BTreeSet};

use nixops4_eval::protocol::{Position, ResourcePath};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::secrets::{PLACEHOLDER, Secrets};
use crate::state::ResourceRecord;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Create,
    Update,
    /// Delete and create again: an input the provider cannot update in place changed.
    Replace,
    /// Create again over what is there, deleting nothing: a resource without state whose
    /// provider speaks upstream's protocol v0, which re-creates such resources.
    Recreate,
    Delete,
    /// Remove from state without deleting: its provider speaks upstream's protocol v0,
    /// which cannot delete.
    Forget,
    NoChange,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedResource {
    pub resource: ResourcePath,
    #[serde(rename = "type")]
    pub type_name: String,
    pub action: Action,
    /// Input by input, for updates and replacements.
    pub changes: Vec<Change>,
    /// Whether the inputs are known now; if not, they depend on outputs of resources
    /// that change in this apply, listed in `waiting_for`.
    pub inputs_known: bool,
    pub waiting_for: Vec<ResourcePath>,
    /// Where the resource is declared, when it still is.
    pub position: Option<Position>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub input: String,
    /// `None`: the input is new.
    pub before: Option<Value>,
    /// `None`: the input is removed.
    pub after: Option<Value>,
    /// The provider cannot change this input in place.
    pub forces_replacement: bool,
}

/// A resource that could not be planned: its evaluation failed, or it waits on one that did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub resource: ResourcePath,
    pub message: String,
    pub position: Option<Position>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub deployment: String,
    pub resources: Vec<PlannedResource>,
    pub problems: Vec<Problem>,
    /// Identifies the expression and state the plan was made from; a saved plan is
    /// applied only while it still matches.
    pub fingerprint: String,
    /// The derivations an apply builds first: outputs that changing resources (their
    /// inputs or their provider) refer to and that are not in the store. Left out of the
    /// JSON when there are none, so plans without builds read as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builds: Vec<PlannedBuild>,
}

/// A derivation to build, and the resources that need it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedBuild {
    /// `/nix/store/<hash>-<name>.drv`.
    pub derivation: String,
    /// `<name>`.
    pub name: String,
    pub resources: Vec<ResourcePath>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub recreate: usize,
    pub delete: usize,
    pub forget: usize,
    pub unchanged: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for resource in &self.resources {
            match resource.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Replace => summary.replace += 1,
                Action::Recreate => summary.recreate += 1,
                Action::Delete => summary.delete += 1,
                Action::Forget => summary.forget += 1,
                Action::NoChange => summary.unchanged += 1,
            }
        }
        summary
    }

    pub fn has_changes(&self) -> bool {
        self.resources.iter().any(|r| r.action != Action::NoChange)
    }

    /// Hides secrets: an input change with a secret on either side shows both sides as
    /// `(sensitive)` (what replaces a secret is as secret as what it replaces), and
    /// problems' messages have them replaced.
    pub(crate) fn hide(&mut self, secrets: &Secrets) {
        for resource in &mut self.resources {
            for change in &mut resource.changes {
                let sensitive = [&change.before, &change.after]
                    .into_iter()
                    .flatten()
                    .any(|value| secrets.is_sensitive(value));
                if sensitive {
                    for value in [&mut change.before, &mut change.after]
                        .into_iter()
                        .flatten()
                    {
                        *value = Value::String(PLACEHOLDER.into());
                    }
                }
            }
        }
        for problem in &mut self.problems {
            problem.message = secrets.redact(&problem.message);
        }
    }

    /// Whether applying it deletes something (a delete or a replacement).
    pub fn is_destructive(&self) -> bool {
        self.resources
            .iter()
            .any(|r| matches!(r.action, Action::Delete | Action::Replace))
    }
}

/// What to do with a resource whose inputs are known, given its record.
pub fn decide(
    inputs: &Map<String, Value>,
    type_name: &str,
    record: Option<&ResourceRecord>,
    replace_on_change: &[String],
) -> (Action, Vec<Change>) {
    let Some(record) = record else {
        return (Action::Create, Vec::new());
    };
    if !record.is_type(type_name) {
        let change = Change {
            input: "type".into(),
            before: Some(Value::String(record.type_name().to_owned())),
            after: Some(Value::String(type_name.to_owned())),
            forces_replacement: true,
        };
        return (Action::Replace, vec![change]);
    }
    let changes = diff(&record.input_properties, inputs, replace_on_change);
    if changes.is_empty() && record.pending().is_none() {
        (Action::NoChange, changes)
    } else if changes.iter().any(|c| c.forces_replacement) {
        (Action::Replace, changes)
    } else {
        (Action::Update, changes)
    }
}

/// Input-level differences, in input name order.
pub fn diff(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    replace_on_change: &[String],
) -> Vec<Change> {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|key| before.get(*key) != after.get(*key))
        .map(|key| Change {
            input: key.clone(),
            before: before.get(key).cloned(),
            after: after.get(key).cloned(),
            forces_replacement: replace_on_change.contains(key),
        })
        .collect()
}

/// What a plan saw of each resource: its type and inputs, or nothing when they were not
/// known yet.
pub type Evaluated = BTreeMap<ResourcePath, Option<(String, Map<String, Value>)>>;

/// A digest of what a plan was made from: every resource's evaluated inputs (or their
/// absence) and the whole state document.
pub fn fingerprint(evaluated: &Evaluated, state: &Value) -> String {
    let mut hasher = Sha256::new();
    for (path, spec) in evaluated {
        hasher.update(serde_json::to_vec(&(path, spec)).unwrap_or_default());
        hasher.update(b"\n");
    }
    hasher.update(serde_json::to_vec(state).unwrap_or_default());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(type_name: &str, inputs: Value) -> ResourceRecord {
        ResourceRecord {
            resource_type: type_name
                .split_once('.')
                .map_or(type_name, |(_, t)| t)
                .to_owned(),
            input_properties: inputs.as_object().unwrap().clone(),
            output_properties: Map::new(),
            nixops4: None,
        }
    }

    fn inputs(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn decides_each_action() {
        let name = vec!["name".to_owned()];
        let rec = record("file", json!({"name": "a", "contents": "x"}));
        assert_eq!(
            decide(&inputs(json!({"name": "a"})), "local.file", None, &name).0,
            Action::Create
        );
        assert_eq!(
            decide(
                &inputs(json!({"name": "a", "contents": "x"})),
                "local.file",
                Some(&rec),
                &name
            )
            .0,
            Action::NoChange
        );
        let (action, changes) = decide(
            &inputs(json!({"name": "a", "contents": "y", "mode": "0600"})),
            "local.file",
            Some(&rec),
            &name,
        );
        assert_eq!(action, Action::Update);
        assert_eq!(
            changes.iter().map(|c| c.input.as_str()).collect::<Vec<_>>(),
            ["contents", "mode"]
        );
        assert_eq!(
            decide(
                &inputs(json!({"name": "b", "contents": "x"})),
                "local.file",
                Some(&rec),
                &name
            )
            .0,
            Action::Replace
        );
        assert_eq!(
            decide(
                &inputs(json!({"name": "a", "contents": "x"})),
                "local.exec",
                Some(&rec),
                &name
            )
            .0,
            Action::Replace
        );
    }

    #[test]
    fn a_plan_shows_an_input_with_a_secret_in_it_as_sensitive() {
        let secrets = Secrets::default();
        secrets.learn(&json!("s3cr3t-token"));
        let changes = diff(
            &inputs(json!({"a": "x", "c": 0})),
            &inputs(json!({"a": "key=s3cr3t-token", "b": ["s3cr3t-token"], "c": 1})),
            &[],
        );
        let mut plan = Plan {
            deployment: "default".into(),
            resources: vec![PlannedResource {
                resource: ResourcePath::parse_dotted("r"),
                type_name: "local.file".into(),
                action: Action::Update,
                changes,
                inputs_known: true,
                waiting_for: Vec::new(),
                position: None,
            }],
            problems: vec![Problem {
                resource: ResourcePath::parse_dotted("r"),
                message: "error: bad value \"s3cr3t-token\"".into(),
                position: None,
            }],
            fingerprint: String::new(),
            builds: Vec::new(),
        };
        plan.hide(&secrets);
        let after: Vec<Value> = plan.resources[0]
            .changes
            .iter()
            .map(|c| c.after.clone().unwrap())
            .collect();
        assert_eq!(
            after,
            [json!("(sensitive)"), json!("(sensitive)"), json!(1)]
        );
        let before = plan.resources[0].changes[0].before.clone();
        assert_eq!(
            before,
            Some(json!("(sensitive)")),
            "what a secret replaces is hidden too"
        );
        assert_eq!(plan.problems[0].message, "error: bad value \"(sensitive)\"");
    }
}
