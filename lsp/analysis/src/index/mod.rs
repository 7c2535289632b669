//! What a deployment file declares, read from its syntax tree alone: its scopes, the
//! resources each declares (with their `type` literal and inputs), the providers, and every
//! reference `resources.<name>[.<output>]`.
//!
//! Resources are found wherever an attribute path reaches `resources`: the set form
//! `resources = { a = { type = ...; inputs = { ... }; }; }` and the dotted forms
//! `resources.a = { ... }`, `resources.a.type = ...`, `resources.a.inputs.name = ...`,
//! mixed freely. Any other set with a literal `type = "<provider>.<type>"` (in a function's
//! body, a `mapAttrs`, a `let`, a list) is a nameless *typed* declaration, whose inputs are
//! completed, hovered and checked like a named one's. A *scope* is one deployment's
//! namespace of resources: the file itself, a function whose argument pattern binds
//! `resources`, a `nixops4Deployments.<name>` function, and the function given to `nested`
//! or `mkSequence`, whose resources are nested under the resource that holds it. A
//! reference belongs to the scope whose function binds the name it starts from:
//! `resources.a` the innermost one binding `resources`, `outer.resources.a` the one
//! binding `outer`. Broken files give what can be read; nothing here evaluates.
//!
//! Private to the crate: features ask it their questions and answer the server's.
//! `model` is the data, `lower` fills it from the tree, `cache` keeps what unchanged
//! declarations said for the next version, `edit` updates it for an edit inside one
//! declaration, `splice` for whole resources added to or removed from a set.

mod cache;
mod edit;
mod lower;
mod model;
mod splice;
#[cfg(test)]
mod tests;

pub(crate) use cache::BodyCache;
pub(crate) use edit::{BodyEdit, Reindexed};
pub use model::ScopeId;
pub(crate) use model::{DeclId, Index, Reference, ResourceDecl, Scope};
pub(crate) use splice::EntriesEdit;
