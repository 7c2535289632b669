//! Realising derivation outputs: which outputs a resource needs that are not in the store
//! yet, and one `nix build` for a batch of them, run as a child process beside the repl so
//! that evaluation requests go on meanwhile.
//!
//! The build reads Nix's `--log-format internal-json` (the same on Nix 2.8 and 2.34):
//! an activity of type 105 starts the build of a derivation (its path is the first
//! field), results of type 101 are its log lines. `--keep-going` builds whatever it can;
//! afterwards a derivation counts as built when every output asked for is in the store,
//! so success is read from the store, not from Nix's prose. A derivation that failed is
//! reported with the tail of its own log, or, when it never started (a dependency
//! failed), with Nix's error.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::Duration;

use nixops4_eval::protocol::{BuildProgress, BuildResult, Derivation, EvalError, EvalErrorKind};
use serde_json::Value;

use crate::repl::{nix_config, strip_ansi};
use crate::session::nix_string;

/// How many lines of a failed build's log its error shows.
const LOG_TAIL: usize = 10;

/// Internal-json activity and result types (Nix's `ActivityType`, `ResultType`).
const ACTIVITY_BUILD: u64 = 105;
const RESULT_BUILD_LOG_LINE: u64 = 101;

/// The outputs that are not in the store, by derivation; derivations with none are left
/// out.
pub fn unbuilt(needs: Vec<Derivation>) -> Vec<Derivation> {
    needs
        .into_iter()
        .filter_map(|mut derivation| {
            derivation
                .outputs
                .retain(|_, path| Path::new(path).symlink_metadata().is_err());
            (!derivation.outputs.is_empty()).then_some(derivation)
        })
        .collect()
}

/// Builds `derivations` with one `nix build`: what became of each, in order. `progress`
/// hears of each derivation Nix starts building; `cancelled` is asked every 100 ms and
/// stops the build.
pub fn build(
    nix_command: &[String],
    dir: &Path,
    id: u64,
    derivations: &[Derivation],
    cancelled: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(BuildProgress),
) -> Result<Vec<BuildResult>, EvalError> {
    let (program, leading) = nix_command
        .split_first()
        .ok_or_else(|| failure("empty Nix command".into()))?;
    // One attribute per output, so each installable is exactly one output on every Nix.
    let mut attributes = Vec::new();
    let mut expression = String::from("{\n");
    for (i, derivation) in derivations.iter().enumerate() {
        for (j, output) in derivation.outputs.keys().enumerate() {
            let attribute = format!("d{i}o{j}");
            expression.push_str(&format!(
                "  {attribute} = (import {}).{};\n",
                nix_string(&derivation.path),
                nix_string(output)
            ));
            attributes.push(attribute);
        }
    }
    expression.push_str("}\n");
    let file = dir.join(format!("build-{id}.nix"));
    std::fs::write(&file, expression)
        .map_err(|e| failure(format!("writing {}: {e}", file.display())))?;
    let mut child = Command::new(program)
        .args(leading)
        .args(["build", "--impure", "--no-link", "--keep-going"])
        .args(["--log-format", "internal-json", "-f"])
        .arg(&file)
        .args(&attributes)
        .env("NIX_CONFIG", nix_config())
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failure(format!("cannot start `nix build` ({program}): {e}")))?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let (sender, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = BuildLog::default();
    loop {
        if cancelled() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&file);
            return Err(failure("the build was cancelled".into()));
        }
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => log.read(&line, progress),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait();
    let _ = std::fs::remove_file(&file);
    let status = status.map_err(|e| failure(format!("waiting for `nix build`: {e}")))?;
    Ok(derivations
        .iter()
        .map(|derivation| {
            let built = derivation
                .outputs
                .values()
                .all(|path| Path::new(path).symlink_metadata().is_ok());
            BuildResult {
                path: derivation.path.clone(),
                error: (!built).then(|| log.why(&derivation.path, &status.to_string())),
            }
        })
        .collect())
}

/// What `nix build` said, as far as attributing failures needs.
#[derive(Default)]
struct BuildLog {
    /// Build activities: activity id → derivation.
    activities: HashMap<u64, String>,
    /// The last lines each derivation's build logged.
    tails: BTreeMap<String, VecDeque<String>>,
    /// Nix's error messages.
    errors: Vec<String>,
    /// Lines that are not internal-json.
    other: VecDeque<String>,
}

impl BuildLog {
    fn read(&mut self, line: &str, progress: &mut dyn FnMut(BuildProgress)) {
        let Some(json) = line.strip_prefix("@nix ") else {
            push_bounded(&mut self.other, strip_ansi(line));
            return;
        };
        let Ok(message) = serde_json::from_str::<Value>(json) else {
            return;
        };
        let id = message["id"].as_u64();
        match (message["action"].as_str(), message["type"].as_u64(), id) {
            (Some("start"), Some(ACTIVITY_BUILD), Some(id)) => {
                if let Some(derivation) = message["fields"][0].as_str() {
                    self.activities.insert(id, derivation.to_owned());
                    progress(BuildProgress::Started {
                        derivation: derivation.to_owned(),
                    });
                }
            }
            (Some("result"), Some(RESULT_BUILD_LOG_LINE), Some(id)) => {
                if let (Some(derivation), Some(text)) =
                    (self.activities.get(&id), message["fields"][0].as_str())
                {
                    let tail = self.tails.entry(derivation.clone()).or_default();
                    push_bounded(tail, strip_ansi(text));
                }
            }
            (Some("msg"), _, _) if message["level"].as_u64() == Some(0) => {
                if let Some(text) = message["msg"].as_str() {
                    self.errors.push(strip_ansi(text));
                }
            }
            _ => {}
        }
    }

    /// Why a derivation's outputs are missing, in words.
    fn why(&self, derivation: &str, status: &str) -> String {
        let own: Vec<&String> = self
            .errors
            .iter()
            .filter(|error| error.contains(derivation))
            .collect();
        let mut text = match (own.last(), self.errors.last()) {
            (Some(error), _) => one_line(error),
            (None, Some(error)) => format!("it was not built: {}", one_line(error)),
            (None, None) => format!("it was not built (`nix build` {status})"),
        };
        let tail = self.tails.get(derivation).filter(|t| !t.is_empty());
        match tail {
            Some(tail) => {
                text.push_str("; its log ends with:\n");
                text.push_str(&Vec::from(tail.clone()).join("\n"));
            }
            None if own.is_empty() && !self.other.is_empty() => {
                text.push_str(":\n");
                text.push_str(&Vec::from(self.other.clone()).join("\n"));
            }
            None => {}
        }
        text
    }
}

fn push_bounded(lines: &mut VecDeque<String>, line: String) {
    if lines.len() == LOG_TAIL {
        lines.pop_front();
    }
    lines.push_back(line);
}

/// Nix's multi-line error, as one line: `error:` and indentation dropped.
fn one_line(error: &str) -> String {
    let text = error.trim_start_matches("error:").trim();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn failure(message: String) -> EvalError {
    EvalError {
        kind: EvalErrorKind::Nix,
        message,
        position: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as Nix 2.34 prints them for a batch where one derivation fails (2.8's differ
    /// only in the error's words).
    #[test]
    fn failures_are_attributed_with_their_own_log() {
        let mut log = BuildLog::default();
        let mut started = Vec::new();
        for line in [
            r#"@nix {"action":"start","fields":["/nix/store/a-bad.drv","",1,1],"id":7,"level":3,"text":"building","type":105}"#,
            r#"@nix {"action":"start","fields":["/nix/store/b-ok.drv","",1,1],"id":8,"level":3,"text":"building","type":105}"#,
            r#"@nix {"action":"result","fields":["line1"],"id":7,"type":101}"#,
            r#"@nix {"action":"result","fields":["fine"],"id":8,"type":101}"#,
            r#"@nix {"action":"result","fields":["oops"],"id":7,"type":101}"#,
            r#"@nix {"action":"msg","level":0,"msg":"\u001b[31;1merror:\u001b[0m Cannot build '/nix/store/a-bad.drv'.\n       Reason: builder failed with exit code 3."}"#,
        ] {
            log.read(line, &mut |p| started.push(p));
        }
        assert_eq!(started.len(), 2);
        assert_eq!(
            log.why("/nix/store/a-bad.drv", "exit status: 1"),
            "Cannot build '/nix/store/a-bad.drv'. Reason: builder failed with exit code 3.; its log ends with:\nline1\noops"
        );
        assert_eq!(
            log.why("/nix/store/c-dep.drv", "exit status: 1"),
            "it was not built: Cannot build '/nix/store/a-bad.drv'. Reason: builder failed with exit code 3."
        );
    }
}
