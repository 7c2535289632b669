//! Static analysis of NixOps4 deployment files for the language server: completion,
//! diagnostics, hover and go-to-definition from the rnix syntax tree and the providers' `describe`, on any text,
//! half-typed and broken included. Nothing is evaluated.
//!
//! Works in byte offsets ([`TextSize`]); turning them into editor positions is the
//! server's job. Knows nothing of LSP, tokio or the engine.

pub mod completion;
pub mod diagnostics;
pub mod index;
pub mod navigation;

use std::collections::BTreeMap;

use nixops4_provider_protocol::{DescribeResponse, ResourceTypeDescription};
pub use rnix::{TextRange, TextSize};

use crate::index::Index;

/// The resource types the analysis knows, by their full name (`local.file`).
#[derive(Clone, Debug, Default)]
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

/// One file, parsed and indexed.
pub struct Analysis {
    text: String,
    root: rnix::SyntaxNode,
    errors: Vec<rnix::ParseError>,
    pub index: Index,
}

impl Analysis {
    pub fn new(text: &str) -> Analysis {
        let parse = rnix::Root::parse(text);
        let root = parse.syntax();
        let index = Index::build(&root);
        Analysis {
            text: text.to_owned(),
            errors: parse.errors().to_vec(),
            root,
            index,
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn root(&self) -> &rnix::SyntaxNode {
        &self.root
    }

    pub(crate) fn parse_errors(&self) -> &[rnix::ParseError] {
        &self.errors
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
    candidates
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| *distance <= 2.max(c.len() / 4) && *distance < c.len().max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}
