//! The options of a module-system deployment, for the language server's completion and
//! hover: the driver walks the option tree that `lib.moduleDeployment` carries beside its
//! configuration; here their declarations are mapped back to the flake's own files.

use nixops4_eval::protocol::*;

use super::{Cancelled, Session, expression_error, list, parse};

impl Session {
    pub(super) fn list_options(
        &mut self,
        deployment: &str,
        cancelled: Cancelled,
        log: &mut dyn FnMut(LogLine),
    ) -> Result<Response, EvalError> {
        let binding = self.binding(deployment, cancelled, log)?;
        match self.eval_json(&format!("_n4.options {binding}"), cancelled, log)? {
            Ok(value) => {
                let mut options: Vec<ModuleOption> = parse(value, "the option list")?;
                for declaration in options.iter_mut().flat_map(|o| &mut o.declarations) {
                    declaration.file = self.local_file(std::mem::take(&mut declaration.file));
                }
                Ok(Response::Options { options })
            }
            Err(waiting) => Err(expression_error(format!(
                "the options depend on the outputs of {}; options are read without outputs",
                list(&waiting)
            ))),
        }
    }
}
