//! `local.exec`: runs a command on this machine and exposes what it printed.
//!
//! Create and update run the command; `once` keeps the first result (which needs state to
//! remember it), and the `rerun` operation runs it again on demand. There is nothing to
//! delete: deleting forgets the result.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use nixops4_provider_sdk::protocol::{InputPath, Properties};
use nixops4_provider_sdk::{
    Context, Extant, OperationOutcome, ProviderError, ResourceType, Result, TypeInfo, no_arguments,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub struct LocalExec;

/// Inputs of `local.exec`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecInputs {
    /// The program to run: a path, or a name looked up in `PATH`.
    pub executable: String,
    /// Arguments passed to the program.
    #[serde(default)]
    pub args: Vec<String>,
    /// Text written to the program's standard input. Without it, stdin is empty.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Environment variables set for the program, on top of NixOps4's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Run only when the resource is created, and keep that first result on later applies.
    /// Needs state.
    #[serde(default)]
    pub once: bool,
    /// Exit statuses that count as success.
    #[serde(default = "default_success_exit_codes")]
    pub success_exit_codes: Vec<i32>,
}

fn default_success_exit_codes() -> Vec<i32> {
    vec![0]
}

/// Outputs of `local.exec`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ExecOutputs {
    /// What the program printed on standard output.
    pub stdout: String,
    /// The program's exit status (one of `success_exit_codes`).
    #[serde(default)]
    pub exit_status: i32,
}

impl ResourceType for LocalExec {
    type Inputs = ExecInputs;
    type Outputs = ExecOutputs;

    fn info(&self) -> TypeInfo {
        TypeInfo::new("Runs a program on the machine that runs NixOps4 and captures its standard output.")
            .operation(
                "rerun",
                "Run the program again with the recorded inputs, even when `once` is set, and record the new output.",
                no_arguments(),
            )
    }

    fn create(&self, inputs: ExecInputs, context: &Context) -> Result<ExecOutputs> {
        if inputs.once && !context.is_stateful {
            return Err(ProviderError::invalid_input(
                "exec with `once = true` needs state to remember its first result: give the resource a `state`",
            )
            .at(InputPath::key("once")));
        }
        run(&inputs)
    }

    fn update(
        &self,
        previous: Extant<ExecInputs, ExecOutputs>,
        inputs: ExecInputs,
        _: &Context,
    ) -> Result<ExecOutputs> {
        if inputs.once {
            return previous.outputs.ok_or_else(|| {
                ProviderError::invalid_request(
                    "exec with `once = true` was updated without its recorded outputs",
                )
            });
        }
        run(&inputs)
    }

    fn destroy(&self, _: Extant<ExecInputs, ExecOutputs>) -> Result<()> {
        Ok(())
    }

    fn operation(
        &self,
        _name: &str,
        resource: Extant<ExecInputs, ExecOutputs>,
        _arguments: Properties,
        _: &Context,
    ) -> Result<OperationOutcome<ExecOutputs>> {
        // `rerun` is the only operation; the SDK checked the name.
        let outputs = run(&resource.inputs)?;
        Ok(OperationOutcome {
            result: serde_json::to_value(&outputs).unwrap_or_default(),
            outputs: Some(outputs),
        })
    }
}

/// How much of stderr an error message carries.
const STDERR_TAIL_LINES: usize = 20;
const STDERR_TAIL_BYTES: usize = 4096;

fn run(inputs: &ExecInputs) -> Result<ExecOutputs> {
    let program = &inputs.executable;
    let mut child = Command::new(program)
        .args(&inputs.args)
        .envs(&inputs.env)
        .stdin(if inputs.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            ProviderError::invalid_input(format!("cannot run `{program}`: {e}"))
                .at(InputPath::key("executable"))
        })?;
    // Feed stdin from a thread so that a program that prints before reading cannot deadlock.
    let feeder = match (child.stdin.take(), inputs.stdin.clone()) {
        (Some(mut pipe), Some(text)) => Some(std::thread::spawn(move || {
            // A program that exits without reading its input is not an error.
            let _ = pipe.write_all(text.as_bytes());
        })),
        _ => None,
    };
    let output = child
        .wait_with_output()
        .map_err(|e| ProviderError::internal(format!("waiting for `{program}`: {e}")))?;
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stderr.lines() {
        tracing::info!("{program}: {line}");
    }
    let Some(status) = output.status.code() else {
        return Err(ProviderError::internal(format!(
            "`{program}` was killed by a signal ({}){}",
            output.status,
            stderr_tail(&stderr)
        )));
    };
    if !inputs.success_exit_codes.contains(&status) {
        return Err(ProviderError::internal(format!(
            "`{program}` failed with exit status {status}{}",
            stderr_tail(&stderr)
        )));
    }
    let stdout = String::from_utf8(output.stdout).map_err(|e| {
        ProviderError::internal(format!("`{program}` printed output that is not UTF-8: {e}"))
    })?;
    Ok(ExecOutputs {
        stdout,
        exit_status: status,
    })
}

fn stderr_tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    let mut tail = lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n");
    if tail.len() > STDERR_TAIL_BYTES {
        let mut cut = tail.len() - STDERR_TAIL_BYTES;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = format!("…{}", &tail[cut..]);
    }
    format!("; its stderr ended with:\n{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_tail_keeps_the_last_lines() {
        let stderr: String = (1..=30).map(|n| format!("line {n}\n")).collect();
        let tail = stderr_tail(&stderr);
        assert!(
            tail.contains("line 30") && tail.contains("line 11"),
            "{tail}"
        );
        assert!(!tail.contains("line 10\n"), "{tail}");
        assert_eq!(stderr_tail(""), "");
    }

    #[test]
    fn stderr_tail_is_bounded_in_bytes() {
        let stderr = "é".repeat(10_000);
        assert!(stderr_tail(&stderr).len() < STDERR_TAIL_BYTES + 100);
    }
}
