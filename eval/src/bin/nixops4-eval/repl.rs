//! A `nix repl` process driven over pipes: one expression in, one framed reply out.
//!
//! After each expression we send `builtins.trace ("END" + "-n") ("END" + "-n")`. Its
//! value arrives on stdout and its trace on stderr, after everything the expression
//! printed, so it frames the reply on both streams; the concatenation keeps the repl's
//! echo of our input from matching. Colours are stripped; traces and warnings that come
//! before an error are passed on as log lines.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// What one expression produced.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// The value, as the repl printed it (colours stripped).
    Value(String),
    /// The error text, from `error:` on.
    Error(String),
}

/// A failure of the repl process itself.
#[derive(Debug)]
pub enum ReplFailure {
    Start(String),
    Died { stderr_tail: Vec<String> },
    Timeout(Duration),
    Cancelled,
}

impl std::fmt::Display for ReplFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplFailure::Start(why) => write!(f, "cannot start `nix repl`: {why}"),
            ReplFailure::Died { stderr_tail } if stderr_tail.is_empty() => {
                write!(f, "`nix repl` exited unexpectedly")
            }
            ReplFailure::Died { stderr_tail } => {
                write!(
                    f,
                    "`nix repl` exited unexpectedly; its stderr ended with:\n{}",
                    stderr_tail.join("\n")
                )
            }
            ReplFailure::Cancelled => write!(f, "the evaluation was cancelled"),
            ReplFailure::Timeout(after) => write!(
                f,
                "Nix did not finish evaluating within {} s (an infinite loop?); it was stopped",
                after.as_secs()
            ),
        }
    }
}

enum Line {
    Stdout(String),
    Stderr(String),
}

pub struct Repl {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Line>,
    counter: u64,
    stderr_tail: Vec<String>,
}

impl Repl {
    /// Starts `nix repl` with `nix_command` (a program and its leading arguments).
    pub fn start(nix_command: &[String]) -> Result<Repl, ReplFailure> {
        let (program, leading) = nix_command
            .split_first()
            .ok_or_else(|| ReplFailure::Start("empty Nix command".into()))?;
        let mut child = Command::new(program)
            .args(leading)
            .args(["repl", "--impure"])
            .env("NIX_CONFIG", nix_config())
            .env("NO_COLOR", "1")
            .env("TERM", "dumb")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ReplFailure::Start(format!("{program}: {e}")))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let (sender, lines) = channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let to_lines = sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if to_lines.send(Line::Stdout(line)).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr is piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(Line::Stderr(line)).is_err() {
                    break;
                }
            }
        });
        Ok(Repl {
            child,
            stdin,
            lines,
            counter: 0,
            stderr_tail: Vec::new(),
        })
    }

    /// Evaluates one single-line expression (or a repl binding `name = expr`). Log lines
    /// that arrive meanwhile are given to `log`. `cancelled` is asked every 100 ms; when it
    /// says yes, or the timeout passes, the repl is killed.
    pub fn eval(
        &mut self,
        expression: &str,
        timeout: Duration,
        cancelled: &dyn Fn() -> bool,
        log: &mut dyn FnMut(&str),
    ) -> Result<Reply, ReplFailure> {
        debug_assert!(!expression.contains('\n'), "one line per expression");
        self.counter += 1;
        let marker = format!("END-{}", self.counter);
        let sentinel = format!(
            "builtins.trace (\"END\" + \"-{0}\") (\"END\" + \"-{0}\")",
            self.counter
        );
        let sent =
            writeln!(self.stdin, "{expression}").and_then(|()| writeln!(self.stdin, "{sentinel}"));
        if sent.and_then(|()| self.stdin.flush()).is_err() {
            return Err(self.died());
        }
        let deadline = Instant::now() + timeout;
        let value_end = format!("\"{marker}\"");
        let trace_end = format!("trace: {marker}");
        let (mut stdout_done, mut stderr_done) = (false, false);
        let mut value_lines: Vec<String> = Vec::new();
        let mut error_lines: Vec<String> = Vec::new();
        while !(stdout_done && stderr_done) {
            if cancelled() {
                self.stop();
                return Err(ReplFailure::Cancelled);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.stop();
                return Err(ReplFailure::Timeout(timeout));
            }
            let line = match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Err(self.died()),
            };
            match line {
                Line::Stdout(line) => {
                    let line = strip_ansi(&line);
                    let text = line.strip_prefix("nix-repl> ").unwrap_or(&line);
                    if text.trim() == value_end {
                        stdout_done = true;
                    } else if !line.starts_with("nix-repl> ")
                        && !text.trim().is_empty()
                        && !stdout_done
                    {
                        value_lines.push(text.to_owned());
                    }
                }
                Line::Stderr(line) => {
                    let line = strip_ansi(&line);
                    self.remember_stderr(&line);
                    if line.trim() == trace_end {
                        stderr_done = true;
                    } else if !error_lines.is_empty() || line.starts_with("error:") {
                        error_lines.push(line);
                    } else if !line.trim().is_empty() && !is_greeting(&line) {
                        log(&line);
                    }
                }
            }
        }
        if !error_lines.is_empty() {
            while error_lines.last().is_some_and(|l| l.trim().is_empty()) {
                error_lines.pop();
            }
            return Ok(Reply::Error(error_lines.join("\n")));
        }
        Ok(Reply::Value(value_lines.join("\n")))
    }

    fn remember_stderr(&mut self, line: &str) {
        if self.stderr_tail.len() == 20 {
            self.stderr_tail.remove(0);
        }
        self.stderr_tail.push(line.to_owned());
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn died(&mut self) -> ReplFailure {
        self.stop();
        // Collect what is still in the pipes.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            if let Line::Stderr(line) = line {
                self.remember_stderr(&strip_ansi(&line));
            }
        }
        ReplFailure::Died {
            stderr_tail: self.stderr_tail.clone(),
        }
    }
}

impl Drop for Repl {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The lines `nix repl` greets with (`Welcome to Nix 2.8.0. Type :? for help.`, or
/// `Nix 2.34.8` and `Type :? for help.`).
fn is_greeting(line: &str) -> bool {
    line.starts_with("Welcome to Nix")
        || line.starts_with("Type :? for help")
        || line
            .strip_prefix("Nix ")
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// The Nix settings the evaluator needs on top of the user's `NIX_CONFIG`.
pub(crate) fn nix_config() -> String {
    let mut config = std::env::var("NIX_CONFIG").unwrap_or_default();
    config.push_str("\nexperimental-features = nix-command flakes\n");
    config
}

/// Removes ANSI escape sequences (the repl colours values even into a pipe).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Reads a Nix string literal as the repl prints it: `"a\"b\n"` → `a"b` + newline.
pub fn unquote_nix_string(printed: &str) -> Option<String> {
    let inner = printed.trim().strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colours() {
        assert_eq!(strip_ansi("\u{1b}[35;1m\"END-1\"\u{1b}[0m"), "\"END-1\"");
    }

    #[test]
    fn unquotes_printed_strings() {
        assert_eq!(
            unquote_nix_string(r#""{\"a\":\"q\\\"uote\",\"n\":\"x\\ny\"}""#).as_deref(),
            Some(r#"{"a":"q\"uote","n":"x\ny"}"#)
        );
        assert_eq!(
            unquote_nix_string(r#""\${x} \t""#).as_deref(),
            Some("${x} \t")
        );
        assert_eq!(unquote_nix_string("42"), None);
    }
}
