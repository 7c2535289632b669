//! Scripts of a deployment (`scripts.<name>`): which there are, and what to run for one,
//! prepared with the outputs recorded in state. Nothing is applied, and the state is only
//! read (without its lock).
//!
//! The engine prepares, a front end runs: a [`PreparedScript`] is the program, its
//! arguments, its environment (each output as a variable) and a file holding all outputs
//! as JSON, removed when the prepared script is dropped. Outputs may be secret: they are
//! in that environment and that file only, never in an error or a `Debug` of this
//! module's types; errors from evaluating a script have recorded secret values hidden.

use std::path::{Path, PathBuf};

use nixops4_eval::protocol::{
    BuildProgress, DeclaredScript, Derivation, Evaluation, ResourcePath, derivation_name,
};
use serde_json::{Map, Value};

use crate::engine::{Engine, not_applied, refuse_empty};
use crate::error::{EngineError, EngineErrorKind};
use crate::events::{Event, emit};
use crate::secrets::Secrets;

/// The environment variable that names the file with all of a script's outputs.
pub const OUTPUTS_FILE_VARIABLE: &str = "NIXOPS4_OUTPUTS_FILE";

/// What to run for a script. Dropping it removes its outputs file: keep it until the
/// program has ended.
pub struct PreparedScript {
    pub script: ResourcePath,
    pub program: String,
    /// The declared arguments, then the caller's.
    pub args: Vec<String>,
    /// Each output by its name; the values may be secret.
    variables: Vec<(String, String)>,
    outputs_file: tempfile::TempPath,
    secrets: Secrets,
}

impl PreparedScript {
    /// The variables to add to the program's environment: every output, and
    /// [`OUTPUTS_FILE_VARIABLE`].
    pub fn environment(&self) -> impl Iterator<Item = (&str, &str)> {
        let file = self.outputs_file.to_str().unwrap_or_default();
        self.variables
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .chain([(OUTPUTS_FILE_VARIABLE, file)])
    }

    /// The file holding every output as one JSON object (mode 0600).
    pub fn outputs_file(&self) -> &Path {
        &self.outputs_file
    }

    /// The secrets known when it was prepared, for a front end that logs the program's
    /// output (a terminal gets it as it is: the user ran the script).
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }
}

/// Names the variables, never their values.
impl std::fmt::Debug for PreparedScript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedScript")
            .field("script", &self.script)
            .field("program", &self.program)
            .field("args", &self.args)
            .field(
                "variables",
                &self.variables.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("outputs_file", &self.outputs_file)
            .finish()
    }
}

impl Engine {
    /// The deployment's scripts, with where each is declared.
    pub async fn scripts(&self) -> Result<Vec<DeclaredScript>, EngineError> {
        let listed = async { Ok(self.eval.list_scripts(self.deployment()?).await?) };
        self.hiding(listed.await)
    }

    /// Prepares a script to run with `args` after its declared ones: evaluates it with the
    /// recorded outputs, makes sure what it runs is in the store, and writes its outputs
    /// file.
    pub async fn prepare_script(
        &self,
        script: &ResourcePath,
        args: &[String],
    ) -> Result<PreparedScript, EngineError> {
        self.hiding(self.prepare_script_unhidden(script, args).await)
    }

    async fn prepare_script_unhidden(
        &self,
        script: &ResourcePath,
        args: &[String],
    ) -> Result<PreparedScript, EngineError> {
        let deployment = self.deployment()?;
        refuse_empty(std::slice::from_ref(script))?;
        let state = self.read_state().await?;
        self.provide_recorded_outputs(deployment, &state).await?;
        let spec = match self.eval.evaluate_script(deployment, script).await? {
            Evaluation::Ready { value } => value,
            Evaluation::Waiting { resources } => {
                return Err(not_applied(&format!("script `{script}`"), &resources));
            }
        };
        if !spec.needs.is_empty() {
            self.realise(script, &spec.needs).await?;
        }
        let variables = spec
            .outputs
            .iter()
            .map(|(name, value)| variable(script, name, value))
            .collect::<Result<_, _>>()?;
        let outputs_file = write_outputs(script, &spec.outputs)?;
        Ok(PreparedScript {
            script: script.clone(),
            program: spec.program,
            args: spec.args.into_iter().chain(args.iter().cloned()).collect(),
            variables,
            outputs_file,
            secrets: self.secrets.clone(),
        })
    }

    /// Builds the derivation outputs a script needs that are not in the store yet, in one
    /// build through the evaluator, with build events; a failed build refuses to run the
    /// script, naming the derivation, with the tail of its log (secrets hidden).
    async fn realise(
        &self,
        script: &ResourcePath,
        needs: &[Derivation],
    ) -> Result<(), EngineError> {
        let missing: Vec<Derivation> = needs
            .iter()
            .filter(|d| d.outputs.values().any(|out| !Path::new(out).exists()))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let events = &self.options.events;
        let secrets = &self.secrets;
        let (progress, mut started) = tokio::sync::mpsc::unbounded_channel();
        let build = self.eval.build(missing, progress);
        let forward = async {
            while let Some(BuildProgress::Started { derivation }) = started.recv().await {
                let name = derivation_name(&derivation).to_owned();
                emit(events, secrets, Event::BuildStarted { derivation, name });
            }
        };
        let (results, ()) = tokio::join!(build, forward);
        let mut failures = Vec::new();
        for result in results? {
            let name = derivation_name(&result.path).to_owned();
            match result.error {
                None => emit(
                    events,
                    secrets,
                    Event::Built {
                        derivation: result.path,
                        name,
                    },
                ),
                Some(error) => {
                    failures.push(format!("{name}: {error}"));
                    emit(
                        events,
                        secrets,
                        Event::BuildFailed {
                            derivation: result.path,
                            name,
                            error,
                        },
                    );
                }
            }
        }
        if failures.is_empty() {
            return Ok(());
        }
        Err(EngineError::new(
            EngineErrorKind::Build,
            format!(
                "script `{script}` cannot run: building what it needs failed: {}",
                failures.join("; ")
            ),
        ))
    }
}

/// An output as an environment variable: a string as it is, anything else as JSON.
fn variable(
    script: &ResourcePath,
    name: &str,
    value: &Value,
) -> Result<(String, String), EngineError> {
    let text = match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    if text.contains('\0') {
        return Err(EngineError::usage(format!(
            "output `{name}` of script `{script}` holds a NUL character, which an environment variable cannot; read it from ${OUTPUTS_FILE_VARIABLE}"
        )));
    }
    Ok((name.to_owned(), text))
}

/// Writes the outputs, readable by this user only, to a temporary file: in memory
/// (`$XDG_RUNTIME_DIR`) where there is such a place.
fn write_outputs(
    script: &ResourcePath,
    outputs: &Map<String, Value>,
) -> Result<tempfile::TempPath, EngineError> {
    use std::io::Write;
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let failed = |e: std::io::Error| {
        EngineError::internal(format!(
            "writing the outputs of script `{script}` to a file in {}: {e}",
            dir.display()
        ))
    };
    let mut file = tempfile::Builder::new()
        .prefix("nixops4-script-")
        .suffix(".json")
        .tempfile_in(&dir)
        .map_err(failed)?;
    let text = serde_json::to_vec(outputs).map_err(|e| failed(e.into()))?;
    file.write_all(&text).map_err(failed)?;
    file.flush().map_err(failed)?;
    Ok(file.into_temp_path())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_become_variables_and_a_private_file() {
        let script = ResourcePath::parse_dotted("backup");
        let outputs = json!({"URL": "https://db", "PORT": 5432, "TAGS": ["a"]});
        let outputs = outputs.as_object().unwrap();
        let variables: Vec<(String, String)> = outputs
            .iter()
            .map(|(n, v)| variable(&script, n, v).unwrap())
            .collect();
        assert_eq!(
            variables,
            [
                ("PORT".to_owned(), "5432".to_owned()),
                ("TAGS".to_owned(), "[\"a\"]".to_owned()),
                ("URL".to_owned(), "https://db".to_owned())
            ]
        );
        let file = write_outputs(&script, outputs).unwrap();
        let read: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(&read, &Value::Object(outputs.clone()));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let path = file.to_path_buf();
        drop(file);
        assert!(!path.exists(), "removed with the prepared script");
    }

    #[test]
    fn errors_never_show_a_value() {
        let script = ResourcePath::parse_dotted("backup");
        let error = variable(&script, "TOKEN", &json!("s3cr3t\0")).unwrap_err();
        assert!(!error.message.contains("s3cr3t"), "{error}");
    }
}
