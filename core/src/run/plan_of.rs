//! The plan a preview makes: where the run left each resource, as create, update,
//! replace, recreate, delete or forget, with what it waits for and what could not be
//! planned.

use serde_json::Value;

use super::Run;
use crate::plan::{self, Action, Plan, PlannedResource, Problem};
use crate::schedule::{Settled, render_cycle};

impl Run<'_> {
    /// The plan: where the preview left each resource. `document` is the state it was
    /// made against.
    pub(crate) fn plan(&self, document: &Value) -> Plan {
        let mut resources = Vec::new();
        let mut problems = Vec::new();
        let mut evaluated = plan::Evaluated::new();
        for (path, _, settled) in self.schedule.settled() {
            let record = self.records.get(&path);
            let problem = |message: String| Problem {
                resource: path.clone(),
                message,
                position: None,
            };
            match settled {
                Settled::Done(work) | Settled::Planned(work) => {
                    let Some(action) = work.action() else {
                        continue;
                    };
                    let spec = self.specs.get(&path);
                    if let Some(spec) = spec {
                        evaluated.insert(
                            path.clone(),
                            Some((spec.type_name.clone(), spec.inputs.clone())),
                        );
                    }
                    resources.push(PlannedResource {
                        resource: path.clone(),
                        type_name: spec.map_or_else(
                            || record.map(|r| r.type_name().to_owned()).unwrap_or_default(),
                            |s| s.type_name.clone(),
                        ),
                        action,
                        changes: self.changes.get(&path).cloned().unwrap_or_default(),
                        inputs_known: true,
                        waiting_for: Vec::new(),
                        position: spec.and_then(|s| s.position.clone()),
                    });
                }
                // Its inputs are known after the apply of what it waits for.
                Settled::Waiting(needs) => {
                    evaluated.insert(path.clone(), None);
                    resources.push(PlannedResource {
                        resource: path.clone(),
                        type_name: record.map(|r| r.type_name().to_owned()).unwrap_or_default(),
                        action: if record.is_some() {
                            Action::Update
                        } else {
                            Action::Create
                        },
                        changes: Vec::new(),
                        inputs_known: false,
                        waiting_for: needs,
                        position: None,
                    });
                }
                Settled::Failed(message) | Settled::Skipped(message) => problems.push(
                    self.problems
                        .get(&path)
                        .cloned()
                        .unwrap_or_else(|| problem(message)),
                ),
                Settled::Cycle(members) => problems.push(problem(format!(
                    "dependency cycle: {}",
                    render_cycle(&members)
                ))),
                Settled::Blocked(culprit) => problems.push(problem(format!(
                    "needs the outputs of {culprit}, which cannot be evaluated"
                ))),
                Settled::NotEvaluated => problems.push(problem("not evaluated".to_owned())),
            }
        }
        let mut plan = Plan {
            deployment: self.deployment.clone(),
            resources,
            problems,
            fingerprint: plan::fingerprint(&evaluated, document),
            builds: self.planned_builds(),
        };
        plan.hide(&self.engine.secrets);
        plan
    }
}
