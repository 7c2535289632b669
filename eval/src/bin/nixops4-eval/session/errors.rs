//! What Nix's answers mean for a request: that a value waits for outputs (and for which
//! resources), a user's error with its position mapped from the store copy back to the
//! flake's own files, a failure of Nix itself, or a request that does not fit; and Nix's
//! other lines as log lines of their level.

use nixops4_eval::protocol::*;

use super::{Session, flake};
use crate::nix_error;

impl Session {
    pub(super) fn waiting_for(&self, error: &str) -> Vec<ResourcePath> {
        self.deployments
            .values()
            .flat_map(|state| {
                nix_error::waiting_for(error, &state.outputs_dir().display().to_string())
            })
            .collect()
    }

    pub(super) fn expression_error_from(&self, text: &str) -> EvalError {
        let session_dir = self.dir.path().display().to_string();
        if let Some(driver) = nix_error::driver_error(text) {
            return EvalError {
                kind: EvalErrorKind::Expression,
                message: driver.message,
                position: driver.position.map(|p| {
                    self.local_position(Position {
                        file: p.file,
                        line: p.line,
                        column: p.column,
                    })
                }),
            };
        }
        EvalError {
            kind: EvalErrorKind::Expression,
            message: nix_error::message(text),
            position: nix_error::position(text, &|file| file.starts_with(&session_dir))
                .map(|p| self.local_position(p)),
        }
    }

    /// Maps a position in the flake's store copy to the same file in the flake's own
    /// directory: `/nix/store/<hash>-source/<rest>` becomes `<dir>/<rest>` for the flake's
    /// directory or one above it (a flake inside a Git repository), when that file has
    /// the same contents. Files of other inputs stay as they are.
    pub(super) fn local_position(&self, mut position: Position) -> Position {
        position.file = self.local_file(position.file);
        position
    }

    /// The file a store file of the flake is shown as (see [`Session::local_position`]).
    pub(super) fn local_file(&self, file: String) -> String {
        let Some(flake) = &self.flake else {
            return file;
        };
        let mut shown = flake.shown_files.borrow_mut();
        shown
            .entry(file)
            .or_insert_with_key(|file| {
                flake::local_file(file, flake.local.as_deref()).unwrap_or_else(|| file.clone())
            })
            .clone()
    }
}

pub(super) fn log_line(line: &str) -> LogLine {
    let (level, message) = if let Some(rest) = line.strip_prefix("trace: ") {
        (LogLevel::Trace, rest)
    } else if let Some(rest) = line.strip_prefix("warning: ") {
        (LogLevel::Warning, rest)
    } else {
        (LogLevel::Info, line)
    };
    LogLine {
        level,
        message: message.to_owned(),
    }
}

pub(super) fn expression_error(message: String) -> EvalError {
    EvalError {
        kind: EvalErrorKind::Expression,
        message,
        position: None,
    }
}

pub(super) fn nix_failure(message: String) -> EvalError {
    EvalError {
        kind: EvalErrorKind::Nix,
        message,
        position: None,
    }
}

pub(super) fn request_error(message: String) -> EvalError {
    EvalError {
        kind: EvalErrorKind::Request,
        message,
        position: None,
    }
}
