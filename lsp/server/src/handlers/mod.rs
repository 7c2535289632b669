//! One handler per LSP method, each in its own file, as plain functions: requests take a
//! [`crate::snapshot::Snapshot`] and their parameters and return their result;
//! notifications change the [`crate::state::State`] and cannot `.await`.
//! [`crate::router`] says which method goes where.

pub mod code_action;
pub mod code_lens;
pub mod completion;
pub mod definition;
pub mod document_text;
pub mod execute_command;
pub mod folding;
pub mod hover;
pub mod lifecycle;
pub mod notifications;
pub mod plan;
pub mod references;
pub mod rename;
pub mod semantic_tokens;
pub mod symbols;

use crate::transport::{ResponseError, code};

pub type Result<T> = std::result::Result<T, ResponseError>;

pub fn invalid_params(why: impl std::fmt::Display) -> ResponseError {
    ResponseError::new(code::INVALID_PARAMS, why.to_string())
}

/// A request or command refused, or failed, with why.
pub fn refused(why: impl Into<String>) -> ResponseError {
    ResponseError::new(code::INVALID_REQUEST, why)
}
