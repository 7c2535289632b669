//! Where the session's flake is: the reference Nix gets for what the user named, its
//! store files mapped back to the user's, and its `flake.lock`, written the first time
//! the flake is loaded (or when an input was added since), as `nix build` would.
//!
//! `builtins.getFlake` never writes a lock file: Nix 2.8 refuses a flake whose inputs are
//! not all locked ("requires lock file changes"), current Nix evaluates it and warns
//! "not writing modified lock file". Either way the session runs `nix flake lock` once,
//! for a local flake only, and loads the flake again.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nixops4_eval::protocol::{EvalError, EvalErrorKind, LockFileChange, LogLine};

use super::{Cancelled, Session, nix_failure, request_error};
use crate::{nix_error, repl};

impl Session {
    /// Starts the repl with the flake loaded, first completing the flake's lock file when
    /// Nix says it lacks inputs (and the flake is a local one, whose lock file can be
    /// written); the repl then starts again, on the flake as locked.
    pub(super) fn ensure_repl_locked(
        &mut self,
        reference: &str,
        local: Option<PathBuf>,
        cancelled: Cancelled,
        log: &mut dyn FnMut(LogLine),
    ) -> Result<Option<LockFileChange>, EvalError> {
        let mut unlocked = false;
        let started = self.ensure_repl(cancelled, &mut |line: LogLine| {
            unlocked |= lacks_lock(&line.message);
            log(line)
        });
        let unlocked = unlocked || started.as_ref().is_err_and(|e| lacks_lock(&e.message));
        let Some(dir) = local.filter(|_| unlocked) else {
            return started.map(|()| None);
        };
        let change = lock(&self.nix_command, reference, &dir, self.timeout, cancelled)?;
        self.repl = None;
        self.ensure_repl(cancelled, log).map_err(|mut error| {
            if change.git && lacks_lock(&error.message) {
                error.message = format!("{error}; {change}");
            }
            error
        })?;
        Ok(Some(change))
    }
}

/// The flake reference for what the user gave: a directory becomes `git+file:` when it
/// is inside a Git work tree (Nix then sees only tracked files; a flake in a
/// subdirectory gets `?dir=`) and `path:` otherwise; anything else is passed to Nix as it
/// is.
pub(super) fn flake_reference(flake: &str) -> Result<(String, Option<PathBuf>), EvalError> {
    if flake.contains(':') && !Path::new(flake).exists() {
        let local = ["path:", "git+file://", "git+file:"]
            .iter()
            .find_map(|scheme| flake.strip_prefix(scheme))
            .map(|rest| PathBuf::from(rest.split(['?', '#']).next().unwrap_or(rest)));
        return Ok((flake.to_owned(), local));
    }
    let dir =
        std::path::absolute(flake).map_err(|e| request_error(format!("flake {flake}: {e}")))?;
    if !dir.join("flake.nix").is_file() {
        return Err(request_error(format!("{} has no flake.nix", dir.display())));
    }
    let reference = match dir.ancestors().find(|d| d.join(".git").exists()) {
        None => format!("path:{}", dir.display()),
        Some(root) if root == dir => format!("git+file:{}", dir.display()),
        Some(root) => {
            let sub = dir.strip_prefix(root).unwrap_or(&dir);
            format!("git+file:{}?dir={}", root.display(), sub.display())
        }
    };
    Ok((reference, Some(dir)))
}

/// The file in `local` (or a directory above it) with the same contents as `store_file`.
pub(super) fn local_file(store_file: &str, local: Option<&Path>) -> Option<String> {
    let rest = store_file.strip_prefix("/nix/store/")?.split_once('/')?.1;
    let stored = std::fs::read(store_file).ok()?;
    local?
        .ancestors()
        .map(|dir| dir.join(rest))
        .find(|candidate| std::fs::read(candidate).is_ok_and(|contents| contents == stored))
        .map(|candidate| candidate.display().to_string())
}

/// Whether what Nix said while loading the flake (an error, or a warning line) means that
/// its lock file lacks inputs.
pub(super) fn lacks_lock(text: &str) -> bool {
    text.contains("requires lock file changes") || text.contains("not writing modified lock file")
}

/// Runs `nix flake lock` on a local flake, as bounded and cancellable as an evaluation.
pub(super) fn lock(
    nix_command: &[String],
    reference: &str,
    dir: &Path,
    timeout: Duration,
    cancelled: Cancelled,
) -> Result<LockFileChange, EvalError> {
    let path = dir.join("flake.lock");
    let created = !path.exists();
    let (program, leading) = nix_command
        .split_first()
        .ok_or_else(|| nix_failure("empty Nix command".into()))?;
    let mut child = Command::new(program)
        .args(leading)
        .args(["flake", "lock", reference])
        .env("NIX_CONFIG", repl::nix_config())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| nix_failure(format!("cannot start `nix flake lock`: {program}: {e}")))?;
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| nix_failure(format!("waiting for `nix flake lock`: {e}")))?
        {
            break status;
        }
        let stop = if cancelled() {
            Some("was cancelled".to_owned())
        } else if Instant::now() >= deadline {
            Some(format!("did not finish within {} s", timeout.as_secs()))
        } else {
            None
        };
        if let Some(why) = stop {
            let _ = child.kill();
            let _ = child.wait();
            return Err(nix_failure(format!(
                "locking the flake's inputs (`nix flake lock {reference}`) {why}"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(EvalError {
            kind: EvalErrorKind::Expression,
            message: format!(
                "the flake has inputs that are not locked, and locking them failed: {}",
                nix_error::message(&stderr)
            ),
            position: None,
        });
    }
    Ok(LockFileChange {
        path: path.display().to_string(),
        created,
        git: reference.starts_with("git+file:"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_an_unlocked_flake_on_every_nix() {
        // Nix 2.8's error and current Nix's warning.
        assert!(lacks_lock(
            "error: flake 'path:/f' requires lock file changes but they're not allowed due to '--no-update-lock-file'"
        ));
        assert!(lacks_lock(
            "not writing modified lock file of flake 'path:/f':"
        ));
        assert!(!lacks_lock("error: undefined variable 'x'"));
    }
}
