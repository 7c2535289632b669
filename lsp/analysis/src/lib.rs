//! Static analysis of NixOps4 deployment files for the language server: completion,
//! diagnostics with their fixes, hover, navigation, rename and the document's outline, from
//! the rnix syntax tree and the providers' `describe`, on any text, half-typed and broken
//! included. Nothing is evaluated.
//!
//! Works in byte offsets ([`TextSize`]); turning them into editor positions is the
//! server's job. Knows nothing of LSP, tokio or the engine. An [`Analysis`] is immutable
//! and `Send + Sync`, so the server parses a version once and shares it.
//!
//! The API is the features, one module each, and `declarations` for what the server's
//! evaluation-backed features need to know of a file. The index they all read (`index`:
//! scopes, declarations, references, lowered from the tree by `index::lower`) and the
//! syntax helpers (`syntax`) are private, so they can change shape freely. Each feature's
//! tests sit beside it, written as fixtures (`fixture`).

pub mod completion;
pub mod declarations;
pub mod diagnostics;
#[cfg(test)]
mod fixture;
mod index;
pub mod navigation;
pub mod options;
pub mod outline;
mod parse;
mod syntax;
pub mod workspace;

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use nixops4_provider_protocol::{DescribeResponse, ResourceTypeDescription};
pub use rnix::{TextRange, TextSize};
pub use syntax::{attribute_name, is_identifier};

use crate::index::{Index, ScopeId};

/// The resource types the analysis knows, by their full name (`local.file`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schemas {
    pub types: BTreeMap<String, ResourceTypeDescription>,
}

impl Schemas {
    /// Adds a provider's types under its name in deployments (`local`).
    pub fn add_provider(&mut self, name: &str, description: &DescribeResponse) {
        for (type_name, type_description) in &description.resource_types {
            self.types
                .insert(format!("{name}.{type_name}"), type_description.clone());
        }
    }

    pub fn providers(&self) -> impl Iterator<Item = &str> {
        self.types
            .keys()
            .filter_map(|t| t.split_once('.').map(|(p, _)| p))
    }
}

/// What the state last recorded of each resource, by its path (`["host", "key"]`).
pub type Recorded = BTreeMap<Vec<String>, RecordedResource>;

/// One resource's last recorded inputs and outputs. Secret outputs are in it; the analysis
/// never shows them. Values made from secrets come as `(sensitive)`: the server hides
/// them before the analysis sees them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordedResource {
    pub inputs: serde_json::Map<String, serde_json::Value>,
    pub outputs: serde_json::Map<String, serde_json::Value>,
}

/// One file, parsed and indexed.
pub struct Analysis {
    text: String,
    parsed: parse::Parsed,
    index: Index,
    /// What the declarations said, for the next version's index.
    bodies: index::BodyCache,
    /// The diagnostics computed for this version, by declaration, for this version's
    /// and the next's (`diagnostics`).
    diagnosed: Mutex<Option<diagnostics::DiagnosticsMemo>>,
}

impl Clone for Analysis {
    fn clone(&self) -> Analysis {
        let diagnosed = self
            .diagnosed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Analysis {
            text: self.text.clone(),
            parsed: self.parsed.clone(),
            index: self.index.clone(),
            bodies: self.bodies.clone(),
            diagnosed: Mutex::new(diagnosed.clone()),
        }
    }
}

impl Analysis {
    pub fn new(text: &str) -> Analysis {
        Analysis::from_parse(
            text.to_owned(),
            parse::Parsed::new(text),
            &index::BodyCache::default(),
        )
    }

    fn from_parse(text: String, parsed: parse::Parsed, previous: &index::BodyCache) -> Analysis {
        let root = rnix::SyntaxNode::new_root(parsed.green.clone());
        let (index, bodies) = Index::build(&root, previous);
        Analysis {
            text,
            parsed,
            index,
            bodies,
            diagnosed: Mutex::new(None),
        }
    }

    /// The analysis of this text with `range` replaced by `replacement` (see
    /// [`Analysis::edit`]); this one stays as it is.
    pub fn edited(&self, range: TextRange, replacement: &str) -> Analysis {
        let copy = Analysis {
            text: self.text.clone(),
            parsed: self.parsed.clone(),
            index: self.index.clone(),
            bodies: self.bodies.clone(),
            diagnosed: Mutex::new(None),
        };
        copy.edit(range, replacement)
    }

    /// The analysis of this text with `range` replaced by `replacement`. Only the
    /// innermost set or list around the edit, or the set's entries it touches, is parsed
    /// again when that is sure to give the same tree as parsing everything (see `parse`);
    /// otherwise the whole text is parsed. An edit inside one declaration's `{ ... }`
    /// reads that declaration again and moves the rest of the index, whole resources added
    /// to or removed from a set are spliced into it, and other edits index the tree again,
    /// reusing what unchanged declarations said. The diagnostics computed for this version
    /// are carried over the first two.
    pub fn edit(self, range: TextRange, replacement: &str) -> Analysis {
        let start = usize::from(range.start()).min(self.text.len());
        let end = usize::from(range.end()).clamp(start, self.text.len());
        if !self.text.is_char_boundary(start) || !self.text.is_char_boundary(end) {
            return Analysis::new(&self.text);
        }
        let mut text = String::with_capacity(self.text.len() + replacement.len());
        text.push_str(&self.text[..start]);
        text.push_str(replacement);
        text.push_str(&self.text[end..]);
        let range = TextRange::new(TextSize::from(start as u32), TextSize::from(end as u32));
        let Some(parsed) = parse::reparse(&self.parsed, &self.text, range, replacement, &text)
        else {
            return Analysis::new(&text);
        };
        let (old_root, new_root) = (
            self.root(),
            rnix::SyntaxNode::new_root(parsed.green.clone()),
        );
        let delta = replacement.len() as i64 - i64::from(u32::from(range.len()));
        let (mut index, mut bodies) = (self.index, self.bodies);
        let edited = match index::BodyEdit::of(&index, &old_root, &new_root, range, delta) {
            Some(edit) => Some(edit.apply(&mut index, &mut bodies)),
            None => index::EntriesEdit::of(&index, &old_root, &new_root, range, delta)
                .map(|edit| edit.apply(&mut index, &mut bodies)),
        };
        match edited {
            Some(edited) => {
                let diagnosed = self
                    .diagnosed
                    .into_inner()
                    .unwrap_or_else(PoisonError::into_inner);
                Analysis {
                    text,
                    parsed,
                    index,
                    bodies,
                    diagnosed: Mutex::new(diagnosed.and_then(|memo| memo.after(&edited))),
                }
            }
            None => Analysis::from_parse(text, parsed, &bodies),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The syntax tree (cheap: a new root over the shared green tree).
    pub(crate) fn root(&self) -> rnix::SyntaxNode {
        rnix::SyntaxNode::new_root(self.parsed.green.clone())
    }

    pub(crate) fn parse_errors(&self) -> &[rnix::ParseError] {
        &self.parsed.errors
    }

    /// Whether this analysis is the one parsing its text whole gives. Only an edit that
    /// leaves a bracket or string open, and the edits after it until it is closed, give
    /// another: one where the entries around the edit stay as they were
    /// (docs/architecture/006).
    pub fn is_whole_parse(&self) -> bool {
        self.parsed.is_whole_parse()
    }

    /// Whether this analysis has the same tree, errors and index as `other` (for tests of
    /// [`Analysis::edited`]).
    pub fn same_as(&self, other: &Analysis) -> bool {
        let sorted = |errors: &[rnix::ParseError]| {
            let mut shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
            shown.sort();
            shown
        };
        self.text == other.text
            && self.parsed.green == other.parsed.green
            && sorted(&self.parsed.errors) == sorted(&other.parsed.errors)
            && self.index == other.index
    }

    /// The type a declared resource has, when its provider is described.
    pub(crate) fn description<'s>(
        &self,
        decl: &index::ResourceDecl,
        schemas: &'s Schemas,
    ) -> Option<(&'s str, &'s ResourceTypeDescription)> {
        let (type_name, _) = decl.type_name()?;
        schemas
            .types
            .get_key_value(type_name)
            .map(|(name, description)| (name.as_str(), description))
    }

    /// The innermost scope containing an offset.
    pub(crate) fn scope_at(&self, offset: TextSize) -> ScopeId {
        self.index
            .scope_ids()
            .filter(|(_, scope)| scope.range.contains_inclusive(offset))
            .min_by_key(|(_, scope)| scope.range.len())
            .map_or(ScopeId::FILE, |(id, _)| id)
    }
}

impl Analysis {
    /// The innermost scope around `offset` whose function binds `name` (`outer@{ ... }`).
    pub(crate) fn binding_scope(&self, name: &str, offset: TextSize) -> Option<ScopeId> {
        use rowan::ast::AstNode;
        let root = self.root();
        let mut around: Vec<(ScopeId, &index::Scope)> = self
            .index
            .scope_ids()
            .filter(|(_, scope)| scope.range.contains_inclusive(offset))
            .collect();
        around.sort_by_key(|(_, scope)| scope.range.len());
        around.into_iter().find_map(|(id, scope)| {
            let element = root.covering_element(scope.range);
            let node = match element {
                rowan::NodeOrToken::Node(node) => node,
                rowan::NodeOrToken::Token(token) => token.parent()?,
            };
            node.ancestors()
                .filter_map(rnix::ast::Lambda::cast)
                .find(|lambda| lambda.syntax().text_range() == scope.range)
                .filter(|lambda| syntax::binds(lambda, name))
                .map(|_| id)
        })
    }
}

/// A property's JSON type as a schema states it (`string`, `array`, ...), if it does.
pub(crate) fn schema_type(schema: &serde_json::Value) -> Vec<&str> {
    match schema.get("type") {
        Some(serde_json::Value::String(t)) => vec![t.as_str()],
        Some(serde_json::Value::Array(types)) => types.iter().filter_map(|t| t.as_str()).collect(),
        _ => Vec::new(),
    }
}

/// The closest candidate to `word`, when close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let length = word.chars().count();
    candidates
        // No closer than their difference in length: most are ruled out without comparing.
        .filter(|c| length.abs_diff(c.chars().count()) <= 2.max(c.len() / 4))
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| *distance <= 2.max(c.len() / 4) && *distance < c.len().max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::fixture::{local_schemas, nested_deployment};
    use crate::workspace::{self, File};
    use crate::{Analysis, Recorded, TextSize};

    /// Every question, at every byte offset (inside multi-byte characters and past the
    /// end too), of texts whole, half-typed and broken: answered, never a panic.
    #[test]
    fn any_text_at_any_offset_is_answered() {
        let samples = [
            nested_deployment(),
            r#"{ outputs = { self }: { nixops4Deployments.default = { resources, ... }: {
resources.a = { type = "local.file"; inputs = { name = "a"; contents = resources.b.path; }; }; resources.b.type = "local.exec";
}; }; }"#
                .to_owned(),
            "{ resources = { a = { type = \"".to_owned(),
            "resources.\u{e9}\u{1F600}.x = { inputs.\"\" = ${ }; }".to_owned(),
            "{{{{ ;;; \"\\".to_owned(),
            String::new(),
        ];
        let schemas = local_schemas();
        for text in samples {
            let analysis = Analysis::new(&text);
            let _ = analysis.diagnostics(schemas, &BTreeSet::new());
            let _ = (
                analysis.symbols(),
                analysis.folding_ranges(),
                analysis.semantic_tokens(),
                analysis.declared_resources(),
                analysis.declared_providers(),
                analysis.state_file_name(),
            );
            let files = [File {
                id: "f",
                analysis: &analysis,
            }];
            for offset in 0..=text.len() + 2 {
                let offset = TextSize::from(offset as u32);
                let _ = analysis.completions(offset, schemas, &[&analysis]);
                let _ = analysis.hover(offset, schemas, &Recorded::new(), &[&analysis]);
                let _ = analysis.resource_named_at(offset);
                let _ = workspace::definition(&files, "f", offset);
                let _ = workspace::references(&files, "f", offset, true);
                let _ = workspace::rename(&files, "f", offset, "renamed");
            }
        }
    }
}
