//! The error a resource type returns: a kind, a message that stands on its own, and the
//! input path at fault when there is one. Serialised as the protocol's `errorResponse`.

use std::fmt;

use nixops4_provider_protocol::{ErrorKind, ErrorResponse, InputPath};

pub type Result<T, E = ProviderError> = std::result::Result<T, E>;

#[derive(Clone, Debug, PartialEq)]
pub struct ProviderError {
    pub kind: ErrorKind,
    pub message: String,
    pub input_path: Option<InputPath>,
}

impl ProviderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ProviderError {
        ProviderError {
            kind,
            message: message.into(),
            input_path: None,
        }
    }

    /// Wrong inputs. Give the input's path with [`ProviderError::at`].
    pub fn invalid_input(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::InvalidInput, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::InvalidRequest, message)
    }

    pub fn unsupported(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::Unsupported, message)
    }

    pub fn not_found(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::NotFound, message)
    }

    pub fn transient(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::Transient, message)
    }

    /// Another client holds the state's lock; the message names it.
    pub fn locked(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::Locked, message)
    }

    pub fn internal(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::Internal, message)
    }

    /// Names the input at fault.
    pub fn at(mut self, path: InputPath) -> ProviderError {
        self.input_path = Some(path);
        self
    }

    pub(crate) fn into_response(self, extended: bool) -> ErrorResponse {
        ErrorResponse {
            message: self.message,
            kind: extended.then_some(self.kind),
            input_path: if extended { self.input_path } else { None },
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind)
    }
}

impl std::error::Error for ProviderError {}

/// Turns any error into an internal [`ProviderError`] that says what was being done:
/// `fs::write(&path, data).context(format!("writing {}", path.display()))?`.
pub trait Context<T> {
    fn context(self, doing: impl fmt::Display) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, doing: impl fmt::Display) -> Result<T> {
        self.map_err(|e| ProviderError::internal(format!("{doing}: {e}")))
    }
}
