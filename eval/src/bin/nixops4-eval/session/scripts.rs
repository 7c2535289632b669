//! The scripts of a deployment (`scripts.<name>`): listing them, which needs no outputs,
//! and evaluating one, which needs the outputs it passes on.
//!
//! A script's outputs may hold secrets: they go to the engine in the reply and nowhere
//! else (never into a log line or an error of this process).

use nixops4_eval::protocol::*;

use super::{Cancelled, Session, expression_error, list, nix_list, parse};

impl Session {
    pub(super) fn list_scripts(
        &mut self,
        deployment: &str,
        cancelled: Cancelled,
        log: &mut dyn FnMut(LogLine),
    ) -> Result<Response, EvalError> {
        let binding = self.binding(deployment, cancelled, log)?;
        match self.eval_json(&format!("_n4.scripts {binding}"), cancelled, log)? {
            Ok(value) => {
                let mut scripts: Vec<DeclaredScript> = parse(value, "the script list")?;
                for declared in &mut scripts {
                    declared.position = declared.position.take().map(|p| self.local_position(p));
                }
                Ok(Response::Scripts { scripts })
            }
            Err(waiting) => Err(expression_error(format!(
                "the list of scripts depends on the outputs of {}; scripts cannot be added or removed depending on outputs",
                list(&waiting)
            ))),
        }
    }

    pub(super) fn evaluate_script(
        &mut self,
        deployment: &str,
        script: &ResourcePath,
        cancelled: Cancelled,
        log: &mut dyn FnMut(LogLine),
    ) -> Result<Response, EvalError> {
        let binding = self.binding(deployment, cancelled, log)?;
        let expression = format!("_n4.script {binding} {}", nix_list(&script.0));
        let evaluation = match self.eval_in(deployment, &expression, cancelled, log)? {
            Ok(value) => {
                let mut spec: ScriptSpec = parse(value, "a script")?;
                spec.position = spec.position.map(|p| self.local_position(p));
                Evaluation::Ready { value: spec }
            }
            Err(resources) => Evaluation::Waiting { resources },
        };
        Ok(Response::Script(evaluation))
    }
}
