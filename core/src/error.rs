//! Errors of the engine: what failed, in words for the user, with a kind for exit codes
//! and front ends.

use std::fmt;

use nixops4_eval::protocol::EvalError;

use crate::provider_client::ProviderError;

#[derive(Debug)]
pub struct EngineError {
    pub kind: EngineErrorKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineErrorKind {
    /// The deployment expression could not be evaluated.
    Evaluation,
    /// A derivation the deployment refers to could not be built.
    Build,
    /// A provider failed or refused.
    Provider,
    /// The state could not be read or written, or is inconsistent.
    State,
    /// Another process holds the state's lock.
    Locked,
    /// The request does not fit: unknown resource, stale plan, nothing to do.
    Usage,
    /// A bug or an unexpected condition.
    Internal,
}

impl EngineError {
    pub fn new(kind: EngineErrorKind, message: impl Into<String>) -> EngineError {
        EngineError {
            kind,
            message: message.into(),
        }
    }

    pub fn state(message: impl Into<String>) -> EngineError {
        EngineError::new(EngineErrorKind::State, message)
    }

    pub fn locked(message: impl Into<String>) -> EngineError {
        EngineError::new(EngineErrorKind::Locked, message)
    }

    pub fn usage(message: impl Into<String>) -> EngineError {
        EngineError::new(EngineErrorKind::Usage, message)
    }

    pub fn internal(message: impl Into<String>) -> EngineError {
        EngineError::new(EngineErrorKind::Internal, message)
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EngineError {}

impl From<ProviderError> for EngineError {
    fn from(error: ProviderError) -> EngineError {
        EngineError::new(EngineErrorKind::Provider, error.to_string())
    }
}

impl From<EvalError> for EngineError {
    fn from(error: EvalError) -> EngineError {
        EngineError::new(EngineErrorKind::Evaluation, error.to_string())
    }
}
